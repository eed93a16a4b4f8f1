"""``vqgen fit-prior``: train an autoregressive prior (stage 2) on pixels or on a VQ-VAE's code grids.

Examples::

    vqgen fit-prior --prior gated_pixelcnn --dataset mnist --epochs 5 --output runs/mnist-pixels
    vqgen fit-prior --prior rnn --dataset mnist --codes-from runs/mnist-vqvae --conditional --output runs/codes-rnn
    vqgen fit-prior --prior pixelcnn --prior-config '{"hidden_channels": 32}' --max-seconds 300 --output runs/small
    vqgen fit-prior --dataset mnist --save-every 500 --output runs/long     # interrupted? add --resume runs/long

Without ``--codes-from`` the prior models the dataset's uint8 pixels (K = 256 categories per sub-pixel). With it, the
images are first encoded by the trained VQ-VAE saved in that directory (``vqgen fit-vqvae``), and the prior models
the ``(1, h, w)`` code grids (K = its codebook size). The output directory receives the prior (``config.json`` +
``model.safetensors``), ``metrics.json`` (settings, including the grid shape and the VQ-VAE directory that
``vqgen sample`` decodes with, and the per-epoch bits/dim) and, unless ``--num-samples 0``, ``samples.png``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
from pathlib import Path
from typing import Any

from .. import build, registry
from ..priors.code_prior import build_code_prior
from . import DefaultsHelpFormatter
from .options import add_deprecated_alias, add_progress_argument, non_negative_int, positive_float, positive_int

__all__ = ["add_parser", "build_prior", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    names = ", ".join(registry("prior").names())
    parser = subparsers.add_parser(
        "fit-prior",
        help="train an autoregressive prior (stage 2) on pixels or VQ-VAE codes",
        description=(
            "Train an autoregressive prior by maximum likelihood and write the checkpoint (config.json + "
            "model.safetensors), metrics.json (bits/dim per epoch) and samples.png to --output."
        ),
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--prior", default="gated_pixelcnn", help=f"the prior, one of: {names}")
    parser.add_argument(
        "--prior-config",
        metavar="JSON",
        default=None,
        help="constructor options of the prior, as a JSON object or a .json file, e.g. '{\"hidden_channels\": 64}'",
    )
    parser.add_argument("--tiny", action="store_true", help="start from the prior's tiny configuration (smoke tests)")
    parser.add_argument("--conditional", action="store_true", help="condition the prior on the dataset's class labels")
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset",
        default="digits",
        help="digits, mnist, fashion-mnist, cifar10, or a path to an image folder / array file",
    )
    data.add_argument(
        "--data-root", metavar="DIR", help="folder holding the datasets (default: $VQGEN_DATA, else the cache)"
    )
    data.add_argument("--download", action="store_true", help="download a named dataset if it is missing")
    data.add_argument(
        "--train-subset", type=positive_int, metavar="N", help="train on the first N training images only"
    )
    data.add_argument(
        "--eval-subset", type=positive_int, metavar="N", help="evaluate on the first N held-out images only"
    )
    data.add_argument(
        "--codes-from",
        metavar="VQVAE_DIR",
        help="fit the code grids that this trained VQ-VAE checkpoint gives the images",
    )
    train = parser.add_argument_group("training")
    train.add_argument(
        "--epochs", type=positive_int, metavar="N",
        help="passes over the training data (default: 10, or no limit with --max-steps / --max-seconds)",
    )  # fmt: skip
    train.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="grids per step")
    train.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    train.add_argument("--max-steps", type=positive_int, metavar="N", help="stop after N steps in total")
    train.add_argument("--max-seconds", type=positive_float, metavar="S", help="stop after S seconds of training")
    add_deprecated_alias(
        train, "--max-minutes", new="--max-seconds", dest="max_seconds", type=positive_float, factor=60.0
    )
    train.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same weights)")
    train.add_argument("--device", help="cpu, cuda, cuda:1, ... (default: CUDA when available, else cpu)")
    train.add_argument(
        "--keep",
        choices=["best", "last"],
        default="best",
        help="checkpoint kept: best held-out bits/dim, or the last epoch",
    )
    add_engine_arguments(train)
    add_progress_argument(train, default=True, what="a progress bar")
    output = parser.add_argument_group("output")
    output.add_argument("--output", "-o", metavar="DIR", required=True, help="output directory")
    output.add_argument(
        "--num-samples",
        "-n",
        type=non_negative_int,
        default=16,
        metavar="N",
        help="samples drawn into samples.png after training (0: none)",
    )
    parser.set_defaults(func=run)


#: ``--overwrite``'s help, the same for every training command.
OVERWRITE_HELP = "a fresh run into an --output that holds another run: delete that run's states and model first"


def add_engine_arguments(group: Any) -> None:
    """The training-engine flags that ``fit-vqvae`` and ``fit-prior`` share with ``vqgen fit``, spelt the same."""
    group.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="autocast precision (fp16: CUDA only)")
    group.add_argument(
        "--save-every", type=positive_int, metavar="N", help="write a resumable training state every N steps too"
    )
    group.add_argument(
        "--resume", metavar="DIR", help="continue the interrupted run whose output directory is DIR (its train_state/)"
    )
    group.add_argument("--overwrite", action="store_true", default=None, help=OVERWRITE_HELP)


def engine_options(args: argparse.Namespace) -> dict[str, Any]:
    """``TrainConfig`` options from the flags of [`add_engine_arguments`][vqgen.cli.fit_prior.add_engine_arguments].

    Training states are always written (``save_states``), so that every run can be resumed, as with ``vqgen fit``.
    """
    options: dict[str, Any] = {"save_states": True}
    if args.precision is not None:
        options["precision"] = args.precision
    if args.save_every is not None:
        options["save_every"] = args.save_every
    if args.overwrite:
        options["overwrite"] = True
    return options


def check_output(output: str | Path, *, resume: str | None, overwrite: bool | None, found: list[str]) -> None:
    """Refuse, before any data is loaded, an ``--output`` that cannot take this run: a file, or (a fresh run without
    ``--overwrite``) a folder holding another run, whose leftovers ``found`` lists; and ``--overwrite`` with
    ``--resume``."""
    if Path(output).exists() and not Path(output).is_dir():
        raise ValueError(f"--output {output} is a file, not a folder; give the folder to write the run to")
    if resume and overwrite:
        raise ValueError("--overwrite starts a fresh run and --resume continues one; give one of them")
    if found and not resume and not overwrite:
        raise ValueError(
            f"--output {output} already holds another run ({', '.join(found)}); continue it with --resume {output}, "
            "choose another --output, or pass --overwrite to delete that run first"
        )


def resume_state(resume: str | None, *, stage: str = "") -> str | None:
    """The ``train_state/`` directory of ``--resume DIR`` (``DIR/stage/train_state`` for a stage of ``vqgen fit``),
    with a clear error when it holds no complete state."""
    from ..training.state import has_state, interrupted_saves

    if resume is None:
        return None
    state = Path(resume, stage, "train_state")
    what = "stage-1 training state" if stage == "stage1" else "training state"
    if not has_state(state):
        interrupted = interrupted_saves(state)
        if interrupted:
            raise FileNotFoundError(
                f"--resume {resume}: no complete {what} in {state}, only an interrupted first save "
                f"({interrupted[0].name}): the run had not saved yet; start it afresh with --overwrite instead of "
                "--resume"
            )
        raise FileNotFoundError(f"--resume {resume}: no {what} in {state} (is it the output of a run?)")
    return str(state)


def _prior_options(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    path = Path(text)
    try:
        options = json.loads(path.read_text() if text.endswith(".json") and path.is_file() else text)
    except json.JSONDecodeError as error:
        raise ValueError(f"--prior-config must be a JSON object or a .json file, got {text!r}: {error}") from None
    if not isinstance(options, dict):
        raise ValueError(f"--prior-config must be a JSON object, got {type(options).__name__}")
    return options


def build_prior(
    name: str,
    *,
    num_categories: int,
    channels: int,
    num_classes: int | None = None,
    codes: bool = False,
    grid_shape: tuple[int, int] | None = None,
    tiny: bool = False,
    options: dict[str, Any] | None = None,
) -> Any:
    """Build prior ``name`` for the data: K, C and the class count set from it, then ``options`` (which win).

    A prior over code grids (``codes=True``) is built by
    [`vqgen.priors.build_code_prior`][vqgen.priors.build_code_prior], exactly as
    [`vqgen.TwoStageModel.from_config`][vqgen.TwoStageModel.from_config] builds one (``num_categories`` = codebook size,
    ``channels=1``, ``input_mode="embed"``); a pixel prior gets ``num_categories`` and ``channels`` from the images.
    """
    spec = {"name": name, **dict(options or {})}
    if codes:
        return build_code_prior(
            spec, num_codes=num_categories, num_classes=num_classes, grid_shape=grid_shape, tiny=tiny
        )
    cls = registry("prior").get(name)
    config = dict(cls.tiny_config()) if tiny else {}
    config |= {"num_categories": num_categories, "channels": channels}
    if num_classes is not None:
        if "num_classes" not in inspect.signature(cls.__init__).parameters:
            raise ValueError(
                f"prior {name!r} takes no num_classes, so it cannot be class-conditional; drop --conditional"
            )
        config["num_classes"] = num_classes
    return build("prior", name, **(config | dict(options or {})))


def _load(args: argparse.Namespace, split: str, subset: int | None) -> Any:
    from ..data import load_dataset

    dataset = load_dataset(args.dataset, split=split, root=args.data_root, download=args.download)
    if subset:
        dataset = type(dataset)(dataset.images[:subset], dataset.labels[:subset], num_classes=dataset.num_classes)
    return dataset


def run(args: argparse.Namespace) -> int:
    """Train as the flags say; prints where the results went."""
    from ..images import save_grid
    from ..training.prior import encode_codes, fit_prior
    from ..training.runtime import seed_everything
    from ..training.state import run_artifacts
    from .sample import decode_samples

    check_output(args.output, resume=args.resume, overwrite=args.overwrite, found=run_artifacts(args.output))
    resume_state(args.resume)  # a wrong --resume fails before the data is loaded
    train = _load(args, "train", args.train_subset)
    try:
        held_out = _load(args, "test", args.eval_subset)
    except ValueError as error:  # a folder or array file without a test split
        logger.warning("no held-out split (%s); the checkpoint kept is judged on training bits/dim", error)
        held_out = None
    vqvae, train_grids, eval_grids = None, train.images, held_out.images if held_out is not None else None
    metadata: dict[str, Any] = {"dataset": str(args.dataset), "codes_from": None}
    if args.codes_from:
        from .. import from_pretrained

        vqvae = from_pretrained(args.codes_from, device=args.device)
        if not hasattr(vqvae, "encode") or not hasattr(vqvae, "num_codes"):
            raise ValueError(f"--codes-from {args.codes_from} holds a {type(vqvae).__name__}, not a VQ-VAE")
        logger.info("encoding the images with the VQ-VAE in %s", args.codes_from)
        train_grids = encode_codes(vqvae, train.images)  # (N, 1, h, w)
        eval_grids = encode_codes(vqvae, held_out.images) if held_out is not None else None
        metadata["codes_from"] = str(Path(args.codes_from).resolve())
    seed_everything(args.seed)  # before building: the seed decides the initial weights too
    prior = build_prior(
        args.prior,
        num_categories=vqvae.num_codes if vqvae is not None else 256,
        channels=int(train_grids.shape[1]),
        num_classes=train.num_classes if args.conditional else None,
        codes=vqvae is not None,
        grid_shape=tuple(train_grids.shape[2:]),
        tiny=args.tiny,
        options=_prior_options(args.prior_config),
    )
    output = Path(args.output)
    history = fit_prior(
        prior,
        train_grids,
        eval_data=eval_grids,
        cond=train.labels if args.conditional else None,
        eval_cond=held_out.labels if args.conditional and held_out is not None else None,
        max_seconds=args.max_seconds,
        metadata=metadata,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        max_steps=args.max_steps,
        seed=args.seed,
        device=args.device,
        keep=args.keep,
        progress=args.progress,
        checkpoint_dir=str(output),
        resume=resume_state(args.resume),
        **engine_options(args),
    )
    split = "eval" if "eval" in history[-1] else "train"
    print(f"{split} bits/dim: {history[-1][split]['bits_per_dim']:.4f} after {history[-1]['step']} steps")
    written = "config.json, model.safetensors, metrics.json"
    if args.num_samples > 0:
        import torch

        from .. import from_pretrained
        from ..training.runtime import resolve_device

        device = resolve_device(args.device)
        saved = from_pretrained(output, device=device)  # the kept (best or last) checkpoint
        cond = torch.arange(args.num_samples, device=device) % train.num_classes if args.conditional else None
        generator = torch.Generator(device=device).manual_seed(args.seed)
        values = saved.sample(args.num_samples, tuple(train_grids.shape[2:]), cond, generator=generator)
        save_grid(
            output / "samples.png",
            decode_samples(values, saved, vqvae),
            ncols=min(8, args.num_samples),
            title="prior samples" if cond is None else "prior samples (class under each)",
            captions=None if cond is None else [str(c) for c in cond.tolist()],
        )
        written += " and samples.png"
    print(f"wrote {output}/{written}")
    return 0
