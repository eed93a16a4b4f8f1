"""``vqgen complete``: fill the hidden bottom part of held-out images with a two-stage model.

Keep the top rows of held-out images, sample the codes of the rest from the prior (given the kept codes before them)
and decode. Writes the inputs (hidden part blacked out) above their completions as a PNG grid. A model written by
vqgen fit brings its dataset and data options (run.json), used when --dataset is not given.

Examples::

    vqgen complete runs/mnist --output completions.png       # the run's dataset and data options (run.json)
    vqgen complete runs/mnist --num-images 8 --keep-fraction 0.25 --temperature 1.0 --output quarter.png
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from .options import add_command, add_data_arguments, add_deprecated_alias, add_output_argument
from .runs import data_source, load_split, read_run
from .sample import add_sampling_arguments, sampling_options
from .values import fraction, positive_int

__all__ = ["add_parser", "check_trained", "load_two_stage", "run"]


#: ``--dataset``'s default, in the help of the commands that read held-out images with a trained model.
DATASET_OF_RUN = "the run's, from CHECKPOINT/run.json of a vqgen fit folder, with its data options; else digits"


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, __doc__)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a TwoStageModel directory (vqgen fit's --output)")
    add_data_arguments(parser, default=None, shown=DATASET_OF_RUN, subsets=())
    parser.add_argument("--num-images", type=positive_int, default=16, metavar="N", help="held-out images to complete")
    for old in ("--n", "-n"):  # -n is --num-samples wherever a command draws samples
        add_deprecated_alias(parser, old, new="--num-images", dest="num_images", type=positive_int)
    parser.add_argument(
        "--keep-fraction", type=fraction, default=0.5, metavar="F", help="fraction of rows kept from the top"
    )
    # --keep names the kept checkpoint (best|last) in the training commands; here it was the fraction of rows.
    add_deprecated_alias(parser, "--keep", new="--keep-fraction", dest="keep_fraction", type=fraction)
    add_output_argument(parser, kind="PNG", default="completions.png", help="the PNG file to write")
    parser.add_argument(
        "--scale", type=positive_int, help="enlarge each pixel to SCALE x SCALE (default: to >= 400 px wide)"
    )
    add_sampling_arguments(parser)
    parser.set_defaults(func=run)


def load_two_stage(checkpoint: str | Path, device: Any = None) -> Any:
    """Load a [`TwoStageModel`][vqgen.TwoStageModel] directory, with a clear error for any other checkpoint."""
    from .. import TwoStageModel, from_pretrained

    model = from_pretrained(checkpoint, device=device)
    if not isinstance(model, TwoStageModel):
        raise ValueError(
            f"{checkpoint} holds a {type(model).__name__}, not a TwoStageModel; train one with vqgen fit "
            "(or vqgen demo), or in Python with TwoStageModel.fit(...) and then model.save_pretrained(...)"
        )
    return check_trained(model, checkpoint)


def check_trained(model: Any, checkpoint: str | Path) -> Any:
    """``model`` unchanged if both its stages are trained, else a ``ValueError`` saying to train it with vqgen fit
    (the model's own error would name its Python methods)."""
    stages = ("autoencoder (stage 1)", "prior (stage 2)")
    untrained = [stage for stage, done in zip(stages, model.fitted_.tolist()) if not done]
    if untrained:
        raise ValueError(
            f"{checkpoint} holds a TwoStageModel whose {' and '.join(untrained)} "
            f"{'is' if len(untrained) == 1 else 'are'} not trained yet; train it with "
            f"vqgen fit --config RUN.yaml --output {checkpoint}"
        )
    return model


def run(args: argparse.Namespace) -> int:
    from ..images import save_reconstructions
    from ..training.runtime import resolve_device

    device = resolve_device(args.device)
    model = load_two_stage(args.checkpoint, device)
    source = data_source(args, read_run(args.checkpoint))
    test = load_split(source, "test")
    images = test.images[: args.num_images]
    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(
            f"{source['dataset']} has images {tuple(images.shape[1:])}, the model was fit on {model.image_shape}"
        )
    mask = torch.zeros(images.shape[2:], dtype=torch.bool)
    mask[: max(1, round(args.keep_fraction * images.shape[2]))] = True
    cond = test.labels[: args.num_images].to(device) if model.prior.num_classes is not None else None
    completed = model.complete(images, mask, cond, options=sampling_options(args, device))
    path = save_reconstructions(
        args.output, images * mask, completed.cpu(), scale=args.scale, labels=("given", "completed")
    )
    print(f"wrote {path}: {len(images)} inputs (top {args.keep_fraction:.0%} kept) above their completions")
    return 0
