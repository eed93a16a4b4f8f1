"""``vqgen fit``: train a whole two-stage model (VQ-VAE, then the prior) from a preset or a run file.

Train stage 1 and then the prior of a [`TwoStageModel`][vqgen.TwoStageModel] as the preset (``--preset``, by default
mnist-small, the README's configuration) and the run file (``--config``) say, and write the model (config.json +
model.safetensors) that vqgen sample, complete and evaluate accept, with stage1/, stage2/ and run.json. Flags override
the file, which overrides the preset; the prior is class-conditional when the data has labels. Works alone and under
torchrun (DistributedDataParallel).

Examples::

    vqgen fit --dataset mnist --output runs/mnist           # the README's configuration (preset mnist-small)
    vqgen fit --dataset mnist --prior rnn --quantizer vq --set model.prior.hidden_size=128 --output runs/mnist-rnn
    vqgen fit --config run.yaml --max-seconds 60 --output runs/quick   # a run file; flags override it

A run file, ``run.yaml``::

    dataset: digits                 # a name (digits, mnist, fashion-mnist, cifar10) or a folder / array file
    train_subset: 1000              # optional: the first N training images
    data: {}                        # optional loader options, e.g. for a folder of your own images:
                                    #   {stream: true, size: 32, mode: RGB, hflip: 0.5, skip_invalid: true}
    model:                          # TwoStageModel.from_config: each part a name or {name: ..., options}
      encoder: {name: conv, latent_dim: 16, num_downsamples: 2}
      quantizer: {name: ema, num_codes: 64}
      prior: {name: gated_pixelcnn, num_layers: 6}
    train:                          # TrainConfig options shared by both stages
      seed: 0
      precision: bf16
    stage1: {epochs: 5, batch_size: 64, lr: 1e-3}
    stage2: {epochs: 10, batch_size: 64, lr: 2e-3, max_seconds: 600}
    output: runs/digits

and more command lines::

    vqgen fit --config run.yaml --set stage2.lr=1e-3 --set model.quantizer.num_codes=128
    vqgen fit --config run.yaml --resume runs/digits                 # continue an interrupted run
    vqgen fit --config run.yaml --overwrite                          # start afresh where another run was
    torchrun --nproc_per_node 4 -m vqgen fit --config run.yaml       # DistributedDataParallel, one GPU a process

The output directory receives the TwoStageModel (``config.json`` + ``model.safetensors``: the weights of the last
step of each stage), which ``vqgen sample``, ``vqgen complete`` and ``vqgen evaluate`` accept, plus ``stage1/`` and
``stage2/``, each with ``metrics.json``, the stage's kept checkpoint and its resumable ``train_state/``, and
``run.json``, the resolved options. An output directory holding another run is refused unless ``--overwrite`` (which
deletes that run's model, states and metrics first) or ``--resume`` (which continues it); if stage 2 had not saved a
state yet when the run stopped, ``--resume`` continues stage 1 and starts stage 2 afresh.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
from pathlib import Path
from typing import Any

from .fit_prior import OVERWRITE_HELP, check_output, class_count, resume_state
from .options import add_command, add_data_arguments, add_output_argument, load_yaml, read_options_file
from .runs import DATA_DEFAULTS, load_split
from .values import non_negative_int, positive_float, positive_int

__all__ = ["add_parser", "fit_to_data", "resolve_run", "run", "swap_parts"]

logger = logging.getLogger(__name__)

#: The preset whose model and budget a run starts from: the README's configuration (``vqgen.presets``).
DEFAULT_PRESET = "mnist-small"

#: The keys of a run file; ``data``, ``model``, ``train``, ``stage1`` and ``stage2`` are mappings. ``model``,
#: ``stage1`` and ``stage2`` default to the ``preset``'s (a mapping given in the file replaces the preset's).
DEFAULTS: dict[str, Any] = {
    **DATA_DEFAULTS,
    "preset": DEFAULT_PRESET,
    "data": {},
    "model": None,
    "train": {},
    "stage1": None,
    "stage2": None,
    "output": None,
}

MAPPINGS = ("data", "model", "train", "stage1", "stage2")

#: Flags that set a training option of both stages (the same spelling as in ``vqgen fit-vqvae``/``fit-prior``).
SHARED_FLAGS = (
    "epochs", "batch_size", "lr", "max_steps", "max_seconds", "seed", "device", "precision", "save_every", "keep",
    "progress",
)  # fmt: skip


def _preset_seconds() -> str:
    """The default preset's time budget, for the help: ``300 s for stage 1, 900 s for stage 2 (mnist-small)``."""
    from .. import presets

    budget = presets.get(DEFAULT_PRESET).budget
    seconds = [f"{budget[stage].get('max_seconds', 'no limit')} s for stage {stage[-1]}" for stage in budget]
    return f"{', '.join(seconds)} ({DEFAULT_PRESET})"


def add_parser(subparsers: Any) -> None:
    from .. import presets
    from ..training.config import TrainConfig

    parser = add_command(subparsers, __doc__)
    parser.add_argument(
        "--config", metavar="FILE", help="YAML or JSON run file, see 'vqgen fit' in the docs (default: none)"
    )
    add_data_arguments(parser, default=None, shown="the run file's, else digits")
    add_output_argument(
        parser, kind="DIR", help="folder to write the model, run.json, stage1/ and stage2/ to (required, as a flag or "
        "in the run file)",
    )  # fmt: skip
    model = presets.get(DEFAULT_PRESET).model
    parts = parser.add_argument_group("model (options of a part: --set model.prior.KEY=VALUE)")
    parts.add_argument(
        "--preset", metavar="NAME",
        help=f"the model and budget to start from, one of {', '.join(presets.names())}; the run file's model, "
        f"stage1 and stage2 replace the preset's (default: {DEFAULT_PRESET}, the README's configuration)",
    )  # fmt: skip
    parts.add_argument(
        "--quantizer", metavar="NAME",
        help=f"the quantizer, by name, with its own defaults and the model's codebook size (default: the preset's, "
        f"{model['quantizer']['name']})",
    )  # fmt: skip
    parts.add_argument(
        "--prior", metavar="NAME",
        help=f"the prior, by name, with its own defaults (default: the preset's, {model['prior']['name']}, "
        "class-conditional when the data has labels)",
    )  # fmt: skip
    group = parser.add_argument_group("training (both stages; one stage with --set stage1.KEY=VALUE)")
    file_else = "the run file's, else"
    group.add_argument(
        "--epochs", type=positive_int, metavar="N",
        help=f"passes over the training data (default: {file_else} the preset's; with neither, no limit under a step "
        "or time budget, else 10)",
    )  # fmt: skip
    group.add_argument(
        "--batch-size", type=positive_int, metavar="N",
        help=f"examples per step and process (default: {file_else} {TrainConfig.batch_size})",
    )  # fmt: skip
    group.add_argument(
        "--lr", type=positive_float, help=f"Adam learning rate (default: {file_else} {TrainConfig.lr:g})"
    )
    group.add_argument(
        "--max-steps", type=positive_int, metavar="N", help=f"stop each stage after N steps (default: {file_else} "
        "no limit)",
    )  # fmt: skip
    group.add_argument(
        "--max-seconds", type=positive_float, metavar="S",
        help=f"stop each stage after S seconds of training (default: {file_else} the preset's: "
        f"{_preset_seconds()})",
    )  # fmt: skip
    group.add_argument(
        "--seed", type=non_negative_int, help=f"random seed, same seed same weights (default: {file_else} "
        f"{TrainConfig.seed})",
    )  # fmt: skip
    group.add_argument(
        "--precision", choices=["fp32", "bf16", "fp16"],
        help=f"autocast precision, fp16 on CUDA only (default: {file_else} {TrainConfig.precision})",
    )  # fmt: skip
    group.add_argument(
        "--save-every", type=positive_int, metavar="N",
        help=f"also write a resumable training state every N steps (default: {file_else} at each epoch end only)",
    )  # fmt: skip
    group.add_argument(
        "--resume", metavar="DIR", help="continue the run whose output folder is DIR (default: a fresh run)"
    )
    group.add_argument("--overwrite", action="store_true", help=OVERWRITE_HELP)
    group.add_argument(
        "--keep", choices=["best", "last"],
        help=f"checkpoint kept in stage1/ and stage2/ (default: {file_else} {TrainConfig.keep} held-out)",
    )  # fmt: skip
    group.add_argument(
        "--progress", action=argparse.BooleanOptionalAction, help=f"show progress bars (default: {file_else} on)"
    )
    group.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override any key of the run file by its dotted path, e.g. stage2.lr=1e-3; VALUE is read as YAML "
        "(default: none)",
    )  # fmt: skip
    parser.set_defaults(func=run)


def _load_file(path: str | Path) -> dict[str, Any]:
    options = read_options_file(path, DEFAULTS, noun="keys")
    for key in MAPPINGS:
        if options.get(key) is not None and not isinstance(options[key], dict):
            raise ValueError(f"--config file {path}: {key!r} must be a mapping, got {options[key]!r}")
    return options


def _set(options: dict[str, Any], assignment: str) -> None:
    key, sep, text = assignment.partition("=")
    if not sep or not key:
        raise ValueError(f"--set takes KEY=VALUE (e.g. stage2.lr=1e-3), got {assignment!r}")
    path = key.replace("-", "_").split(".")
    if path[0] not in DEFAULTS:
        raise ValueError(f"--set {key}: unknown key {path[0]!r}; known keys: {sorted(DEFAULTS)}")
    target = options
    for part in path[:-1]:
        target = target.setdefault(part, {})
        if not isinstance(target, dict):
            raise ValueError(f"--set {key}: {part!r} is not a mapping")
    target[path[-1]] = load_yaml(text)


def resolve_run(args: argparse.Namespace) -> dict[str, Any]:
    """The preset's model and budget, overridden by the ``--config`` file, by the parts ``--quantizer`` and
    ``--prior`` name, by ``--set`` and then by the other flags given."""
    from .. import presets

    given = _load_file(args.config) if args.config else {}
    preset = presets.get(args.preset or given.get("preset") or DEFAULT_PRESET)
    model = preset.config()
    model["encoder"].pop("in_channels", None)  # the data's: its channels, and its classes for the prior
    model["prior"].pop("num_classes", None)
    options = {**copy.deepcopy(DEFAULTS), "model": model, **preset.budget}
    for key, value in given.items():
        options[key] = value if value is not None or key not in MAPPINGS else {}
    options["preset"] = preset.name
    options["model"] = swap_parts(options["model"], quantizer=args.quantizer, prior=args.prior)
    for assignment in args.set:
        _set(options, assignment)
    for key in ("dataset", "data_root", "download", "train_subset", "eval_subset", "output"):
        if getattr(args, key) is not None:
            options[key] = getattr(args, key)
    for key in SHARED_FLAGS:
        if getattr(args, key) is not None:
            for stage in ("stage1", "stage2"):
                options[stage][key] = getattr(args, key)
    if not options["output"]:
        raise ValueError("--output is required (the directory to write the model to), as a flag or in --config")
    return options


def _check_same_channels(options: dict[str, Any], train: Any, held_out: Any) -> None:
    """Both splits must have the same channels; a folder's splits are each read as greyscale unless they hold a
    colour image, so a folder that mixes them can differ, which the run file's ``data.mode`` settles."""
    if held_out is None or train.image_shape[0] == held_out.image_shape[0]:
        return
    raise ValueError(
        f"{options['dataset']}: the train split has {train.image_shape[0]}-channel images but the test split "
        f"{held_out.image_shape[0]}-channel ones (a folder's split is read as greyscale unless it holds colour "
        "images); read both as colour with data: {mode: RGB} in the run file (or --set data.mode=RGB), or both as "
        "greyscale with mode: L"
    )


def swap_parts(model: dict[str, Any], *, quantizer: str | None = None, prior: str | None = None) -> dict[str, Any]:
    """``model`` (a ``TwoStageModel.from_config`` mapping) with the quantizer and the prior named instead: a part
    named as it already is keeps its options; another takes its own defaults, and a quantizer that has a codebook
    keeps the model's codebook size."""
    import inspect

    from ..registry import registry

    model = copy.deepcopy(model)
    for kind, name in (("quantizer", quantizer), ("prior", prior)):
        spec = model.get(kind)
        spec = {"name": spec} if isinstance(spec, str) else dict(spec or {})
        if name is None or spec.get("name") == name:
            continue
        new = {"name": name}
        takes = inspect.signature(registry(kind).get(name).__init__).parameters
        if kind == "quantizer" and "num_codes" in takes and "num_codes" in spec:
            new["num_codes"] = spec["num_codes"]
        model[kind] = new
    return model


def fit_to_data(model: dict[str, Any], train: Any) -> dict[str, Any]:
    """``model`` with the encoder's ``in_channels`` those of ``train``'s images, and the prior conditioned on
    ``train``'s classes (see [`class_count`][vqgen.cli.fit_prior.class_count]) unless the spec says otherwise
    (``num_classes: null`` for an unconditional prior)."""
    model = copy.deepcopy(model)
    encoder = model.get("encoder", "conv")
    encoder = {"name": encoder} if isinstance(encoder, str) else dict(encoder)
    encoder.setdefault("in_channels", train[0][0].shape[0])  # the dataset's channels (of its first image)
    prior = model.get("prior", "gated_pixelcnn")
    prior = {"name": prior} if isinstance(prior, str) else dict(prior)
    classes = class_count(prior.get("name", "gated_pixelcnn"), train)
    if classes and "cond_dim" not in prior:
        prior.setdefault("num_classes", classes)
    return {**model, "encoder": encoder, "prior": prior}


#: What a run of ``vqgen fit`` writes into its output directory besides each stage's folder.
TOP_FILES = ("config.json", "model.safetensors", "run.json")


def _earlier_run(output: Path) -> list[str]:
    """What an earlier run left in ``output``: the two-stage model, ``run.json``, and the stage folders holding a
    model or training states."""
    from ..training.state import run_artifacts

    found = [name for name in TOP_FILES if (output / name).exists()]
    return found + [f"{stage}/" for stage in ("stage1", "stage2") if run_artifacts(output / stage)]


def _clear_earlier_run(output: Path) -> None:
    """``--overwrite``: delete the earlier run's model, ``run.json`` and both stages' models, states and metrics, all
    before stage 1 starts (a run stopped in stage 1 must not resume the old stage 2). Rank 0 alone deletes."""
    import os

    from ..training.state import clear_run

    if int(os.environ.get("RANK", "0")) != 0:
        return
    logger.info("--overwrite: deleting the earlier run in %s", output)
    for name in TOP_FILES:
        (output / name).unlink(missing_ok=True)
    for stage in ("stage1", "stage2"):
        clear_run(output / stage)


def _stage_resume(args: argparse.Namespace, stage: str) -> dict[str, Any]:
    """The options that make ``stage`` continue ``--resume``'s run: its state; stage 2 without a complete state (the
    run stopped before or during its first save) starts afresh in its folder instead."""
    from ..training.state import has_state

    if not args.resume:
        return {}
    state = Path(args.resume) / stage / "train_state"
    if stage == "stage1" or has_state(state):
        return {"resume": resume_state(args.resume, stage=stage)}
    logger.info("--resume: stage 2 had not saved a training state in %s yet; it starts from scratch", state)
    return {"overwrite": True}  # whatever stage 2 left before its first save goes


def run(args: argparse.Namespace) -> int:
    """Train as the run file and flags say; prints where the model went."""
    import torch.distributed as dist

    from ..atomic import write_atomic
    from ..training.config import TrainConfig
    from ..training.runtime import seed_everything
    from ..training.writable import check_writable
    from ..two_stage import TwoStageModel

    options = resolve_run(args)
    output = Path(options["output"])
    found = _earlier_run(output)
    check_output(output, resume=args.resume, overwrite=args.overwrite, found=found)
    resumes = {stage: _stage_resume(args, stage) for stage in ("stage1", "stage2")}  # before the data is loaded
    if found and args.overwrite:
        _clear_earlier_run(output)
    check_writable(output, name="--output")  # before any data is read or training starts
    train = load_split(options, "train", options["train_subset"])
    try:
        held_out = load_split(options, "test", options["eval_subset"])
    except ValueError as error:  # a folder or array file without a test split
        logger.warning("no held-out split (%s); training without evaluation", error)
        held_out = None
    _check_same_channels(options, train, held_out)
    model_config = fit_to_data(options["model"], train)
    # Seeded before building, as the engine seeds before training: the seed decides the initial weights too.
    seed_everything({"seed": TrainConfig.seed, **options["train"], **options["stage1"]}["seed"])
    model = TwoStageModel.from_config(model_config)
    stages = {}
    for stage in ("stage1", "stage2"):
        stage_options = {"progress": True, **options["train"], **options[stage]}
        stage_options["checkpoint_dir"] = str(output / stage)
        stage_options.setdefault("save_states", True)
        stages[stage] = {**stage_options, **resumes[stage]}
    model.fit(train, eval_data=held_out, stage1=stages["stage1"], stage2=stages["stage2"])
    if not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0:
        model.save_pretrained(output)
        write_atomic(output / "run.json", json.dumps(options, indent=2, sort_keys=True, default=str) + "\n")
        print(f"wrote the two-stage model to {output} (config.json, model.safetensors; stage1/, stage2/, run.json)")
    return 0
