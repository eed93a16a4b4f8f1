"""``vqgen fit-vqvae``: train a VQ-VAE (stage 1) on a dataset.

Train encoder + quantizer + decoder (VQ-VAE, arXiv:1711.00937; by default the README's stage 1: an ``ema`` codebook
of 512 codes) and write the checkpoint (config.json + model.safetensors), metrics.json, reconstructions.png and the
resumable train_state/ to --output.

Examples::

    vqgen fit-vqvae --dataset mnist --max-seconds 300 --output runs/mnist-vqvae   # the README's stage 1
    vqgen fit-vqvae --dataset mnist --quantizer vq --num-codes 128 --epochs 5 --output runs/mnist-vq
    vqgen fit-vqvae --quantizer fsq --levels 8 5 5 5 --latent-dim 4 --output runs/fsq     # 1000 implicit codes

Options come from the flags, a ``--config`` file (keys: the long flag names) and
[`DEFAULTS`][vqgen.cli.fit_vqvae.DEFAULTS], in that order. ``metrics.json`` holds the settings and the per-epoch
history; ``reconstructions.png`` the held-out originals, each row above its reconstructions; ``train_state/`` the
resumable training state (``--resume``).
"""

from __future__ import annotations

import argparse
import inspect
import logging
from pathlib import Path
from typing import Any

import torch

from .. import build, registry
from .fit_prior import add_engine_arguments, check_output, engine_options, resume_state
from .options import add_command, add_data_arguments, add_deprecated_alias, add_output_argument, read_options_file
from .runs import DATA_DEFAULTS, load_split
from .values import non_negative_int, positive_float, positive_int

__all__ = ["DEFAULTS", "add_parser", "run"]

logger = logging.getLogger(__name__)

#: Every option's default; a ``--config`` file and then explicit flags override these.
DEFAULTS: dict[str, Any] = {
    **DATA_DEFAULTS,
    "autoencoder": "conv",
    "quantizer": "ema",  # the README's and the presets' (the EMA codebook of arXiv:1711.00937)
    "num_codes": None,  # 512 for the codebook quantizers; fsq's is the product of its levels
    "levels": None,
    "latent_dim": 16,
    "hidden": None,
    "num_downsamples": 2,
    "beta": None,
    "restart_after": None,
    "epochs": None,  # 10, or no limit with --max-steps / --max-seconds (TrainConfig.epoch_limit)
    "batch_size": 64,
    "lr": 1e-3,
    "max_steps": None,
    "max_seconds": None,
    "seed": 0,
    "device": None,
    "keep": "best",
    "precision": None,
    "save_every": None,
    "resume": None,
    "overwrite": None,
    "progress": True,
    "num_images": 16,
    "output": None,
}


def add_parser(subparsers: Any) -> None:
    parser = add_command(subparsers, __doc__)

    def add(group: Any, *flags: str, help: str, **kwargs: Any) -> None:
        dest = kwargs.get("dest") or flags[0].lstrip("-").replace("-", "_")
        # The parser's own default stays None, so that only the flags given override --config; the help shows the
        # effective default.
        if DEFAULTS.get(dest) is not None and kwargs.get("action") is None and "default" not in help:
            help += f" (default: {DEFAULTS[dest]})"
        group.add_argument(*flags, default=None, help=help, **kwargs)

    add_data_arguments(parser, default=None, shown=DEFAULTS["dataset"])
    model = parser.add_argument_group("model")
    add(model, "--autoencoder", help=f"encoder/decoder pair, one of: {', '.join(registry('encoder').names())}")
    add(model, "--quantizer", help=f"quantizer, one of: {', '.join(registry('quantizer').names())}")
    add(model, "--num-codes", type=positive_int, metavar="K", help="codebook size (default: 512; not for fsq)")
    add(
        model, "--levels", type=positive_int, nargs="+", metavar="L",
        help="fsq only: levels per latent dimension, e.g. 8 5 5 5 (1000 codes; default: fsq's 8 5 5 5)",
    )  # fmt: skip
    add(model, "--latent-dim", type=positive_int, metavar="D", help="dimension of the latents and codebook vectors")
    add(
        model,
        "--hidden",
        type=positive_int,
        metavar="N",
        help="autoencoder width (default: the pair's own, conv 64 channels, flat 256 features)",
    )
    add(
        model,
        "--num-downsamples",
        type=non_negative_int,
        metavar="N",
        help="stride-2 stages of conv (codes 2**N times smaller)",
    )
    add(model, "--beta", type=positive_float, help="commitment weight (default: the quantizer's, the paper's 0.25)")
    add(model, "--restart-after", type=non_negative_int, metavar="STEPS",
        help="restart codes unused for STEPS steps, 0 disables (default: the quantizer's)")  # fmt: skip
    train = parser.add_argument_group("training")
    add(train, "--epochs", type=positive_int, metavar="N",
        help="passes over the training data (default: 10, or no limit with --max-steps / --max-seconds)")  # fmt: skip
    add(train, "--batch-size", type=positive_int, metavar="N", help="images per step")
    add(train, "--lr", type=positive_float, help="Adam learning rate (paper: 2e-4 for 250k steps)")
    add(train, "--max-steps", type=positive_int, metavar="N", help="stop after N steps (default: no limit)")
    add(train, "--max-seconds", type=positive_float, metavar="S", help="stop after S seconds of training (default: "
        "no limit)")  # fmt: skip
    add(train, "--seed", type=non_negative_int, help="random seed (same seed, same weights)")
    add(train, "--keep", choices=["best", "last"], help="checkpoint kept: best held-out MSE, or last epoch")
    add_engine_arguments(train)  # --precision, --save-every, --resume, --overwrite: None, so --config may set them
    add(train, "--progress", action=argparse.BooleanOptionalAction, help="show a progress bar (default: on)")
    output = parser.add_argument_group("output")
    add_output_argument(
        output, kind="DIR", help="folder to write the VQ-VAE, metrics.json, reconstructions.png and train_state/ to "
        "(required, as a flag or in --config)",
    )  # fmt: skip
    add(output, "--num-images", type=positive_int, metavar="N", help="held-out images shown in reconstructions.png")
    add_deprecated_alias(output, "-n", new="--num-images", dest="num_images", type=positive_int)
    add(output, "--config", metavar="FILE", help="JSON or YAML file of options (keys: long flag names); flags override "
        "(default: none)")  # fmt: skip
    parser.set_defaults(func=run)


def load_options(path: str | Path) -> dict[str, Any]:
    """Read a JSON or YAML options file; keys are the long flag names (``batch-size`` or ``batch_size``)."""
    return read_options_file(path, DEFAULTS)


def resolve_options(args: argparse.Namespace) -> dict[str, Any]:
    """Defaults, overridden by the ``--config`` file, overridden by the flags given on the command line."""
    options = dict(DEFAULTS)
    if getattr(args, "config", None):
        options.update(load_options(args.config))
    options.update({key: value for key, value in vars(args).items() if key in DEFAULTS and value is not None})
    if not options["output"]:
        raise ValueError("--output is required (the directory to write the checkpoint to)")
    return options


def _accepted(kind: str, name: str, candidates: dict[str, Any]) -> dict[str, Any]:
    """The ``candidates`` that the constructor of ``kind``/``name`` accepts (so one flag set fits every pair)."""
    params = inspect.signature(registry(kind).get(name).__init__).parameters
    return {key: value for key, value in candidates.items() if key in params and value is not None}


def _quantizer_options(name: str, given: dict[str, Any]) -> dict[str, Any]:
    """The quantizer's options; an option given that quantizer ``name`` does not take is an error, not dropped."""
    params = inspect.signature(registry("quantizer").get(name).__init__).parameters
    if "num_codes" in params and given.get("num_codes") is None:
        given = {**given, "num_codes": 512}
    for key, value in given.items():
        if value is not None and key not in params:
            flag = "--" + key.replace("_", "-")
            hint = " (its codebook size is the product of --levels, e.g. --levels 8 5 5 5 = 1000 codes)"
            raise ValueError(
                f"--quantizer {name} takes no {flag}{hint if name == 'fsq' and key == 'num_codes' else ''}; "
                f"its options: {sorted(p for p in params if p != 'self')}"
            )
    return _accepted("quantizer", name, given)


def build_vqvae(options: dict[str, Any], image_shape: tuple[int, int, int]) -> torch.nn.Module:
    """A VQVAE for images of ``image_shape`` ``(C, H, W)`` from the resolved options."""
    channels, height, width = image_shape
    shared = {"latent_dim": options["latent_dim"], "hidden_channels": options["hidden"]}
    shared |= {"hidden_features": options["hidden"], "num_downsamples": options["num_downsamples"]}
    if height == width:
        shared["image_size"] = height
    name = options["autoencoder"]
    encoder = build("encoder", name, **_accepted("encoder", name, {**shared, "in_channels": channels}))
    decoder = build("decoder", name, **_accepted("decoder", name, {**shared, "out_channels": channels}))
    quantizer_options = {"num_codes": options["num_codes"], "levels": options["levels"], "beta": options["beta"]}
    quantizer_options["restart_after"] = options["restart_after"]
    name = options["quantizer"]
    quantizer_options = _quantizer_options(name, quantizer_options)
    quantizer_options |= _accepted("quantizer", name, {"dim": options["latent_dim"]})
    quantizer = build("quantizer", name, **quantizer_options)
    return build("model", "vqvae", encoder=encoder, quantizer=quantizer, decoder=decoder)


def run(args: argparse.Namespace) -> int:
    """Train as the options say; prints where the results went."""
    from ..images import save_reconstructions
    from ..training import fit_vqvae, seed_everything
    from ..training.state import run_artifacts

    options = resolve_options(args)
    output = Path(options["output"])
    check_output(output, resume=options["resume"], overwrite=options["overwrite"], found=run_artifacts(output))
    resume = resume_state(options["resume"])  # a wrong --resume fails before the data is loaded
    train = load_split(options, "train", options["train_subset"]).images
    try:
        held_out = load_split(options, "test", options["eval_subset"]).images
    except ValueError as error:  # a folder or array file without a test split
        logger.warning("no held-out split (%s); using the first training images for the grid", error)
        held_out = None
    seed_everything(options["seed"])  # before building: the seed decides the initial weights too
    model = build_vqvae(options, tuple(train.shape[1:]))
    fit_vqvae(
        model,
        train,
        eval_data=held_out,
        epochs=options["epochs"],
        batch_size=options["batch_size"],
        lr=options["lr"],
        max_steps=options["max_steps"],
        max_seconds=options["max_seconds"],
        seed=options["seed"],
        device=options["device"],
        keep=options["keep"],
        progress=options["progress"],
        checkpoint_dir=str(output),
        resume=resume,
        **engine_options(argparse.Namespace(**options)),
    )
    from .. import from_pretrained

    saved = from_pretrained(output)  # the kept (best or last) checkpoint, in eval mode
    originals = (held_out if held_out is not None else train)[: options["num_images"]]
    device = model.device
    reconstructions = saved.to(device).reconstruct(originals.to(device))
    ncols = min(8, len(originals))
    save_reconstructions(output / "reconstructions.png", originals, reconstructions.cpu(), ncols=ncols)
    print(f"wrote {output}/config.json, model.safetensors, metrics.json and reconstructions.png")
    return 0
