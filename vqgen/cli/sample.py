"""``vqgen sample``: draw samples from a trained prior into a PNG grid.

Sample a prior checkpoint (vqgen fit-prior) or a two-stage model (vqgen fit) one value at a time in raster order;
pixel priors are drawn as images, code priors are decoded by their VQ-VAE. A model written by vqgen fit is sampled at
its preset's temperature unless --temperature says otherwise.

Examples::

    vqgen sample runs/mnist --num-samples 64 --output samples.png     # a vqgen fit run, at its preset's temperature
    vqgen sample runs/mnist --label 3 --top-p 0.95 --seed 1 --output threes.png
    vqgen sample runs/mnist-prior --temperature 1.0 --method naive --output reference.png   # the reference sampler

The grid shape and, for priors over VQ-VAE codes, the VQ-VAE that decodes the codes into images are read from the
checkpoint's ``metrics.json`` (written by ``vqgen fit-prior``); ``--shape`` and ``--vqvae`` override them. A
[`TwoStageModel`][vqgen.two_stage.TwoStageModel] checkpoint brings its own prior, code-grid shape and VQ-VAE.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..sampling import METHODS, SamplingOptions
from .options import add_command, add_deprecated_alias, add_output_argument, add_progress_argument
from .runs import read_run, temperature
from .values import non_negative_int, positive_float, positive_int, probability

__all__ = ["add_parser", "add_sampling_arguments", "decode_samples", "run", "sampling_options"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, __doc__)
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="checkpoint directory of a prior or a two-stage model")
    parser.add_argument("--num-samples", "-n", type=positive_int, default=16, metavar="N", help="samples to draw")
    add_deprecated_alias(parser, "--n", new="--num-samples", dest="num_samples", type=positive_int)
    add_output_argument(parser, kind="PNG", default="samples.png", help="the PNG file to write the grid to")
    add_sampling_arguments(parser)
    parser.add_argument(
        "--label",
        type=int,
        nargs="+",
        metavar="L",
        help="class label(s) for a class-conditional prior, cycled over the samples (default: 0, 1, 2, ... cycled)",
    )
    parser.add_argument(
        "--shape",
        type=positive_int,
        nargs=2,
        metavar=("H", "W"),
        help="grid size (default: the training grids', from metrics.json)",
    )
    parser.add_argument("--vqvae", metavar="DIR", help="VQ-VAE that decodes code samples (default: from metrics.json)")
    parser.add_argument("--ncols", type=positive_int, default=8, help="images per row of the grid")
    parser.add_argument(
        "--scale", type=positive_int, help="enlarge each pixel to SCALE x SCALE (default: to >= 400 px wide)"
    )
    parser.set_defaults(func=run)


def add_sampling_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of [`SamplingOptions`][vqgen.sampling.SamplingOptions], shared by every command that samples."""
    group = parser.add_argument_group("sampling")
    group.add_argument(
        "--temperature",
        type=positive_float,
        metavar="T",
        help="divide the logits by T, < 1: more typical (default: the preset's when CHECKPOINT is a vqgen fit run, "
        "e.g. 0.8 for mnist-small, else 1.0)",
    )
    group.add_argument(
        "--top-k", type=positive_int, metavar="K", help="sample among the K most likely values only (default: all)"
    )
    group.add_argument(
        "--top-p", type=probability, metavar="P", help="nucleus sampling: the smallest set with mass >= P (default: 1)"
    )
    group.add_argument(
        "--method",
        choices=list(METHODS),
        default="cached",
        help="cached (incremental, fast) or naive (a full forward pass per value, the reference)",
    )
    group.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same samples)")
    add_progress_argument(group, default=False, what="a progress bar over rows")


def sampling_options(args: argparse.Namespace, device: Any) -> SamplingOptions:
    """The [`SamplingOptions`][vqgen.sampling.SamplingOptions] that the flags of
    [`add_sampling_arguments`][add_sampling_arguments] say, at the temperature of the preset that trained
    ``args.checkpoint`` when ``--temperature`` is not given ([`temperature`][vqgen.cli.runs.temperature])."""

    return SamplingOptions(
        temperature=temperature(args.temperature, read_run(args.checkpoint)),
        top_k=args.top_k,
        top_p=args.top_p,
        method=args.method,
        generator=torch.Generator(device=device).manual_seed(args.seed),
        progress=args.progress,
    )


def decode_samples(values: Tensor, prior: Any, vqvae: Any = None) -> Tensor:
    """Sampled values ``(n, C, H, W)`` → images for a PNG grid.

    With a VQ-VAE the values are code grids ``(n, 1, h, w)``, decoded to float images ``(n, C, H, W)``. Without one,
    256-category values are uint8 pixels; other values (codes without their decoder) are drawn as grey levels
    ``value / (K - 1)``.
    """
    if vqvae is not None:
        device = vqvae.device
        return vqvae.decode(values[:, 0].to(device)).cpu()  # (n, C, H, W) floats
    if prior.num_categories == 256:
        return values.to(torch.uint8).cpu()
    logger.warning("no VQ-VAE to decode the codes with: drawing the code indices as grey levels")
    return values.float().cpu() / (prior.num_categories - 1)


def _training_settings(checkpoint: Path) -> dict[str, Any]:
    path = checkpoint / "metrics.json"
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text()).get("settings", {})
    except json.JSONDecodeError:
        logger.warning("%s is not valid JSON; ignoring it", path)
        return {}


def run(args: argparse.Namespace) -> int:
    """Sample as the flags say; prints where the grid went."""
    from .. import AutoregressivePrior, from_pretrained
    from ..images import save_grid
    from ..training.runtime import resolve_device
    from ..two_stage import TwoStageModel
    from .complete import check_trained

    checkpoint = Path(args.checkpoint)
    device = resolve_device(args.device)
    loaded = from_pretrained(checkpoint, device=device)
    if isinstance(loaded, TwoStageModel):  # its own prior, code-grid shape and VQ-VAE
        prior, vqvae = check_trained(loaded, checkpoint).prior, loaded.vqvae
        shape = args.shape or loaded.code_shape
    elif isinstance(loaded, AutoregressivePrior):
        prior, settings = loaded, _training_settings(checkpoint)
        shape = args.shape or settings.get("grid_shape", [None, None, None])[1:]
        if shape[0] is None:
            raise ValueError(f"{checkpoint} has no metrics.json with the grid shape; pass --shape H W")
        vqvae_dir = args.vqvae or settings.get("metadata", {}).get("codes_from")
        vqvae = from_pretrained(vqvae_dir, device=device) if vqvae_dir else None
    else:
        raise ValueError(
            f"{checkpoint} holds a {type(loaded).__name__}, not a prior or a two-stage model; "
            "train a prior with vqgen fit-prior"
        )
    cond = None
    if prior.num_classes is not None:
        labels = torch.tensor(args.label if args.label else range(prior.num_classes), device=device)
        cond = labels.repeat((args.num_samples + len(labels) - 1) // len(labels))[: args.num_samples]  # (n,)
    elif args.label:
        raise ValueError(f"--label was given, but the prior in {checkpoint} is not class-conditional")
    values = prior.sample(args.num_samples, tuple(int(s) for s in shape), cond, options=sampling_options(args, device))
    path = save_grid(
        args.output,
        decode_samples(values, prior, vqvae),
        ncols=min(args.ncols, args.num_samples),
        scale=args.scale,
        title="samples (class under each)" if cond is not None else "samples",
        captions=None if cond is None else [str(c) for c in cond.tolist()],
    )
    print(f"wrote {args.num_samples} samples to {path}")
    return 0
