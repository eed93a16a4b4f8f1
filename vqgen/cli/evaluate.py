"""``vqgen evaluate``: held-out metrics of a two-stage model and of the baselines, as JSON.

Example::

    vqgen evaluate demo-output/model --dataset digits --num-samples 500 --output metrics.json

Reports the reconstruction MSE and codebook usage, held-out bits per code for the prior and the independent
baseline, and the FID with classifier features (a classifier trained on the dataset's labels, see
[`vqgen.classifier`][vqgen.classifier]) of samples from the prior, the independent-position baseline and uniform codes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from . import DefaultsHelpFormatter
from .options import positive_int
from .sample import add_sampling_arguments, sampling_options

__all__ = ["add_parser", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="held-out NLL, reconstruction and classifier-feature FID of a two-stage model vs. baselines (JSON)",
        description=(
            "Evaluate a TwoStageModel on a dataset's test split and compare it with the independent-position and "
            "uniform-code baselines. Prints the JSON and writes it to --output."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a TwoStageModel directory (e.g. demo-output/model)")
    parser.add_argument("--dataset", default="digits", help="digits, mnist, fashion-mnist, cifar10, or a folder/.npz")
    parser.add_argument("--data-root", metavar="DIR", help="where the dataset files are (default: $VQGEN_DATA)")
    parser.add_argument("--download", action="store_true", help="download a named dataset if it is missing")
    parser.add_argument("--classifier", metavar="DIR", help="a saved FeatureClassifier (default: train one now)")
    parser.add_argument(
        "--num-samples", "-n", type=positive_int, default=500, metavar="N", help="samples per model for FID"
    )
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available, else cpu)")
    parser.add_argument("--output", "-o", metavar="JSON", help="also write the metrics to this file")
    add_sampling_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from .. import data, from_pretrained
    from ..classifier import FeatureClassifier
    from ..evaluation import evaluate_two_stage
    from ..training.runtime import resolve_device
    from .complete import load_two_stage

    device = resolve_device(args.device)
    model = load_two_stage(args.checkpoint, device)
    train = data.load_dataset(args.dataset, split="train", root=args.data_root, download=args.download)
    test = data.load_dataset(args.dataset, split="test", root=args.data_root, download=args.download)
    classifier = None
    if args.classifier:
        classifier = from_pretrained(args.classifier, device=device)
        if not isinstance(classifier, FeatureClassifier):
            raise ValueError(f"{args.classifier} holds a {type(classifier).__name__}, not a FeatureClassifier")
    metrics = evaluate_two_stage(
        model,
        train,
        test,
        classifier=classifier,
        num_samples=args.num_samples,
        seed=args.seed,
        progress=args.progress,
        options=sampling_options(args, device),
    )
    metrics["dataset"] = args.dataset
    text = json.dumps(metrics, indent=2)
    if args.output:
        Path(args.output).write_text(text + "\n")
    print(text)
    return 0
