"""``vqgen evaluate``: held-out NLL, reconstruction and classifier-feature FID of a two-stage model vs. baselines.

Evaluate a TwoStageModel on a dataset's test split (by default the one run.json of a vqgen fit folder names) against
the independent-position and uniform-code baselines and real images (the floor); print the JSON and write it to
--output. With --num-samples 1000, --fid-reference all and the quality benchmark's classifier (--classifier-subset
30000 --classifier-epochs 2), on a vqgen fit run of the README's preset, these are the README's figures.

Examples::

    vqgen evaluate runs/mnist --output metrics.json          # the run's dataset and its preset's temperature
    vqgen evaluate runs/mnist -n 1000 --fid-reference all --classifier-subset 30000 --classifier-epochs 2 -o readme.json

Reported: the reconstruction MSE and codebook usage, held-out bits per code for the prior and the baselines, the FID
with classifier features (a classifier trained on the dataset's labels, see [`vqgen.classifier`][vqgen.classifier])
of samples from the prior, the independent-position baseline and uniform codes, the fraction of a class-conditional
prior's samples recognised as the class asked for, and the floor (the FID of as many real training images, and of
their reconstructions); see [`evaluate_two_stage`][vqgen.evaluation.evaluate_two_stage].
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .complete import DATASET_OF_RUN
from .options import add_command, add_data_arguments, add_output_argument
from .runs import data_source, load_split, read_run, temperature
from .sample import add_sampling_arguments, sampling_options
from .values import non_negative_int, positive_int

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, __doc__)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a TwoStageModel directory (vqgen fit's --output)")
    add_data_arguments(parser, default=None, shown=DATASET_OF_RUN, subsets=())
    parser.add_argument(
        "--num-samples", "-n", type=positive_int, default=500, metavar="N",
        help="samples drawn from the prior and from each baseline, and real images per floor draw, for FID",
    )  # fmt: skip
    parser.add_argument(
        "--fid-reference", choices=["first", "all"], default="first",
        help="the real images each FID compares with: the first N of the test split, or all of it (the README's)",
    )  # fmt: skip
    parser.add_argument(
        "--floor-draws", type=non_negative_int, default=5, metavar="K",
        help="the floor: FID of N random training images over K draws, and of the first draw's reconstructions "
        "(0: none)",
    )  # fmt: skip
    classifier = parser.add_argument_group("FID classifier")
    classifier.add_argument("--classifier", metavar="DIR", help="a saved FeatureClassifier (default: train one now)")
    classifier.add_argument(
        "--classifier-subset", type=positive_int, metavar="N",
        help="train it on the first N training images (default: all)",
    )  # fmt: skip
    classifier.add_argument(
        "--classifier-epochs", type=positive_int, default=3, metavar="N", help="train it for N epochs"
    )
    add_output_argument(parser, kind="JSON", help="also write the metrics to this JSON file (default: print only)")
    add_sampling_arguments(parser)
    parser.set_defaults(func=run)


def _classifier(args: argparse.Namespace, train: Any, test: Any, device: Any) -> Any:
    """``--classifier``, or one trained on ``train`` as ``--classifier-subset`` and ``--classifier-epochs`` say."""
    from .. import from_pretrained
    from ..classifier import FeatureClassifier
    from ..training.classifier import train_classifier

    if args.classifier:
        classifier = from_pretrained(args.classifier, device=device)
        if not isinstance(classifier, FeatureClassifier):
            raise ValueError(f"{args.classifier} holds a {type(classifier).__name__}, not a FeatureClassifier")
        return classifier
    n = args.classifier_subset
    images, labels = (train.images[:n], train.labels[:n]) if n else (train.images, train.labels)
    return train_classifier(
        images, labels, test=test, epochs=args.classifier_epochs, seed=args.seed, device=device, progress=args.progress
    ).model


def run(args: argparse.Namespace) -> int:
    from ..evaluation import evaluate_two_stage
    from ..training.runtime import resolve_device
    from .complete import load_two_stage

    device = resolve_device(args.device)
    model = load_two_stage(args.checkpoint, device)
    run_file = read_run(args.checkpoint)
    source = data_source(args, run_file)
    train, test = load_split(source, "train"), load_split(source, "test")
    metrics = evaluate_two_stage(
        model,
        train,
        test,
        classifier=_classifier(args, train, test, device),
        num_samples=args.num_samples,
        seed=args.seed,
        progress=args.progress,
        options=sampling_options(args, device),
        fid_reference=args.fid_reference,
        floor_draws=args.floor_draws,
    )
    metrics.update(dataset=str(source["dataset"]), temperature=temperature(args.temperature, run_file))
    text = json.dumps(metrics, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
