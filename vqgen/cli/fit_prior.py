"""``vqgen fit-prior``: train an autoregressive prior (stage 2) on pixels or VQ-VAE codes.

Train an autoregressive prior by maximum likelihood, class-conditional when the dataset has labels, and write the
checkpoint (config.json + model.safetensors), metrics.json (bits/dim per epoch), samples.png and the resumable
train_state/ to --output.

Examples::

    vqgen fit-prior --dataset mnist --codes-from runs/mnist-vqvae --max-seconds 300 --output runs/mnist-prior
    vqgen fit-prior --prior rnn --dataset mnist --epochs 5 --unconditional --output runs/mnist-pixels
    vqgen fit-prior --prior pixelcnn --prior-config '{"hidden_channels": 32}' --output runs/small

Without ``--codes-from`` the prior models the dataset's uint8 pixels (K = 256 categories per sub-pixel). With it, the
images are first encoded by the trained VQ-VAE saved in that directory (``vqgen fit-vqvae``), and the prior models
the ``(1, h, w)`` code grids (K = its codebook size). ``metrics.json`` holds the settings, including the grid shape and
the VQ-VAE directory that ``vqgen sample`` decodes with, and the per-epoch bits/dim; ``samples.png`` is left out with
``--num-samples 0``.
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
from .options import add_command, add_data_arguments, add_deprecated_alias, add_output_argument, add_progress_argument
from .runs import load_split
from .values import non_negative_int, positive_float, positive_int

__all__ = ["add_parser", "build_prior", "class_count", "run"]

logger = logging.getLogger(__name__)


def add_parser(subparsers: Any) -> None:
    names = ", ".join(registry("prior").names())
    parser = add_command(subparsers, __doc__)
    parser.add_argument("--prior", default="gated_pixelcnn", metavar="NAME", help=f"the prior, one of: {names}")
    parser.add_argument(
        "--prior-config",
        metavar="JSON",
        help="constructor options of the prior, as a JSON object or a .json file, e.g. '{\"hidden_channels\": 64}' "
        "(default: the prior's own)",
    )
    parser.add_argument("--tiny", action="store_true", help="start from the prior's tiny configuration (smoke tests)")
    parser.add_argument(
        "--unconditional", "--no-conditional", dest="conditional", action="store_false",
        help="ignore the dataset's class labels: by default the prior is conditioned on them when there are any "
        "(--conditional, which asked for that, is no longer needed)",
    )  # fmt: skip
    add_deprecated_alias(
        parser, "--conditional", new="it is no longer needed: a prior is class-conditional when the data has labels",
        dest="conditional", const=True,
    )  # fmt: skip
    data = add_data_arguments(parser)
    data.add_argument(
        "--codes-from",
        metavar="VQVAE_DIR",
        help="fit the code grids that this trained VQ-VAE checkpoint gives the images (default: the pixels)",
    )
    train = parser.add_argument_group("training")
    train.add_argument(
        "--epochs", type=positive_int, metavar="N",
        help="passes over the training data (default: 10, or no limit with --max-steps / --max-seconds)",
    )  # fmt: skip
    train.add_argument("--batch-size", type=positive_int, default=64, metavar="N", help="grids per step")
    train.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    train.add_argument("--max-steps", type=positive_int, metavar="N", help="stop after N steps (default: no limit)")
    train.add_argument(
        "--max-seconds", type=positive_float, metavar="S", help="stop after S seconds of training (default: no limit)"
    )
    add_deprecated_alias(
        train, "--max-minutes", new="--max-seconds", dest="max_seconds", type=positive_float, factor=60.0
    )
    train.add_argument("--seed", type=non_negative_int, default=0, help="random seed (same seed, same weights)")
    train.add_argument(
        "--keep",
        choices=["best", "last"],
        default="best",
        help="checkpoint kept: best held-out bits/dim, or the last epoch",
    )
    add_engine_arguments(train)
    add_progress_argument(train, default=True, what="a progress bar")
    output = parser.add_argument_group("output")
    add_output_argument(
        output, kind="DIR", required=True,
        help="folder to write the prior, metrics.json, samples.png and train_state/ to (required)",
    )  # fmt: skip
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
    group.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"], help="autocast precision, fp16 on CUDA only (default: fp32)"
    )
    group.add_argument(
        "--save-every", type=positive_int, metavar="N",
        help="also write a resumable training state every N steps (default: at each epoch end only)",
    )  # fmt: skip
    group.add_argument(
        "--resume", metavar="DIR",
        help="continue the interrupted run whose output directory is DIR, its train_state/ (default: a fresh run)",
    )  # fmt: skip
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


def class_count(prior: str, data: Any) -> int | None:
    """The classes to condition prior ``prior`` on: ``data``'s, when it has labels of two classes or more and the
    prior's constructor takes ``num_classes``; else ``None`` (unconditional)."""
    classes = getattr(data, "num_classes", None)
    takes = "num_classes" in inspect.signature(registry("prior").get(prior).__init__).parameters
    return int(classes) if takes and classes and classes > 1 else None


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
                f"prior {name!r} takes no num_classes, so it cannot be class-conditional; pass --unconditional"
            )
        config["num_classes"] = num_classes
    return build("prior", name, **(config | dict(options or {})))


def run(args: argparse.Namespace) -> int:
    """Train as the flags say; prints where the results went."""
    from ..images import save_grid
    from ..training.prior import encode_codes, fit_prior
    from ..training.runtime import seed_everything
    from ..training.state import run_artifacts
    from .sample import decode_samples

    check_output(args.output, resume=args.resume, overwrite=args.overwrite, found=run_artifacts(args.output))
    resume_state(args.resume)  # a wrong --resume fails before the data is loaded
    source = {"dataset": args.dataset, "data_root": args.data_root, "download": args.download}
    train = load_split(source, "train", args.train_subset)
    try:
        held_out = load_split(source, "test", args.eval_subset)
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
    conditional = args.conditional and class_count(args.prior, train) is not None
    seed_everything(args.seed)  # before building: the seed decides the initial weights too
    prior = build_prior(
        args.prior,
        num_categories=vqvae.num_codes if vqvae is not None else 256,
        channels=int(train_grids.shape[1]),
        num_classes=train.num_classes if conditional else None,
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
        cond=train.labels if conditional else None,
        eval_cond=held_out.labels if conditional and held_out is not None else None,
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
        cond = torch.arange(args.num_samples, device=device) % train.num_classes if conditional else None
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
