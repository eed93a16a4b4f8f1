"""``vqgen complete``: hide the bottom of held-out images and let a two-stage model fill it in.

Example::

    vqgen complete demo-output/model --dataset digits --num-images 16 --keep-fraction 0.5 --output completions.png

The PNG shows rows of the inputs (hidden part blacked out) above their completions.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from . import DefaultsHelpFormatter
from .options import add_deprecated_alias, fraction, positive_int
from .sample import add_sampling_arguments, sampling_options

__all__ = ["add_parser", "check_trained", "load_two_stage", "run"]


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
    parser.add_argument("--download", action="store_true", help="download a named dataset if it is missing")
    parser.add_argument(
        "--num-images", "-n", type=positive_int, default=16, metavar="N", help="number of test images to complete"
    )
    add_deprecated_alias(parser, "--n", new="--num-images", dest="num_images", type=positive_int)
    parser.add_argument(
        "--keep-fraction", type=fraction, default=0.5, metavar="F", help="fraction of rows kept from the top"
    )
    # --keep names the kept checkpoint (best|last) in the training commands; here it was the fraction of rows.
    add_deprecated_alias(parser, "--keep", new="--keep-fraction", dest="keep_fraction", type=fraction)
    parser.add_argument("--device", help="cpu, cuda, ... (default: CUDA when available, else cpu)")
    parser.add_argument("--output", "-o", default="completions.png", metavar="PNG", help="the PNG file to write")
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
    from .. import data
    from ..images import save_reconstructions
    from ..training.runtime import resolve_device

    device = resolve_device(args.device)
    model = load_two_stage(args.checkpoint, device)
    test = data.load_dataset(args.dataset, split="test", root=args.data_root, download=args.download)
    images = test.images[: args.num_images]
    if tuple(images.shape[1:]) != model.image_shape:
        raise ValueError(
            f"{args.dataset} has images {tuple(images.shape[1:])}, the model was fit on {model.image_shape}"
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
