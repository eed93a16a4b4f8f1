"""``vqgen complete``: hide the bottom of held-out images and let a two-stage model fill it in.

Example::

    vqgen complete demo-output/model --dataset digits --n 16 --keep 0.5 --output completions.png

The PNG shows rows of the inputs (hidden part blacked out) above their completions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from . import DefaultsHelpFormatter
from .sample import add_sampling_arguments, sampling_options

__all__ = ["add_parser", "load_two_stage", "run"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "complete",
        help="fill the hidden bottom part of images with a two-stage model",
        description=(
            "Keep the top rows of held-out images, sample the codes of the rest from the prior (given the kept "
            "codes before them) and decode. Writes inputs above completions as a PNG grid."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a TwoStageModel directory (e.g. demo-output/model)")
    parser.add_argument("--dataset", default="digits", help="digits, mnist, fashion-mnist, cifar10, or a folder/.npz")
    parser.add_argument("--data-root", metavar="DIR", help="where the dataset files are (default: $VQGEN_DATA)")
    parser.add_argument("--n", "-n", type=int, default=16, help="number of test images to complete")
    parser.add_argument("--keep", type=float, default=0.5, help="fraction of rows kept from the top, in (0, 1)")
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available, else cpu)")
    parser.add_argument("--output", "-o", default="completions.png", metavar="PNG", help="the PNG file to write")
    parser.add_argument("--scale", type=int, default=3, help="enlarge each pixel to SCALE x SCALE")
    add_sampling_arguments(parser)
    parser.set_defaults(func=run)


def load_two_stage(checkpoint: str | Path, device: Any = None) -> Any:
    """Load a [`TwoStageModel`][vqgen.TwoStageModel] directory, with a clear error for any other checkpoint."""
    from .. import TwoStageModel, from_pretrained

    model = from_pretrained(checkpoint, device=device)
    if not isinstance(model, TwoStageModel):
        raise ValueError(
            f"{checkpoint} holds a {type(model).__name__}, not a TwoStageModel; create one with vqgen demo "
            "or TwoStageModel.fit(...).save_pretrained(...)"
        )
    return model


def run(args: argparse.Namespace) -> int:
    from .. import checks, data
    from ..images import save_reconstructions
    from ..training.common import resolve_device

    checks.check_probability(args.keep, name="--keep", allow_one=False)
    checks.check_positive(args.n, name="--n", integer=True)
    device = resolve_device(args.device)
    model = load_two_stage(args.checkpoint, device)
    test = data.load_dataset(args.dataset, split="test", root=args.data_root)
    images = test.images[: args.n]
    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(
            f"{args.dataset} has images {tuple(images.shape[1:])}, the model was fit on {model.image_shape}"
        )
    mask = torch.zeros(images.shape[2:], dtype=torch.bool)
    mask[: max(1, round(args.keep * images.shape[2]))] = True
    cond = test.labels[: args.n].to(device) if model.prior.num_classes is not None else None
    completed = model.complete(images, mask, cond, options=sampling_options(args, device))
    path = save_reconstructions(
        args.output, images * mask, completed.cpu(), scale=args.scale, labels=("given", "completed")
    )
    print(f"wrote {path}: {len(images)} inputs (top {args.keep:.0%} kept) above their completions")
    return 0
