"""The checks before a run starts: may it resume this state, and may it write into this checkpoint folder?

[`check_resumable`][check_resumable] refuses a state of another kind of fit, of another model or settings, or of
another number of processes, naming only what differs (``model.prior.config.num_layers: 6 -> 8``);
[`claim_checkpoint_dir`][claim_checkpoint_dir] refuses a fresh run a folder that holds another run unless
``overwrite=True`` (a folder never mixes two runs).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from torch import nn

from .config import TrainConfig
from .distributed import DistContext
from .state import run_artifacts, run_ids

if TYPE_CHECKING:
    from .task import Task

__all__ = ["RESUMABLE_CHANGES", "check_resumable", "claim_checkpoint_dir", "model_identity"]

#: Options that may change when resuming (budgets, output, display); every other TrainConfig field must match.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "max_steps", "max_seconds", "checkpoint_dir", "progress", "save_every", "save_states", "keep_states",
     "device", "num_workers", "tensorboard", "compile", "eval_batch_size", "keep", "backend", "overwrite"}
)  # fmt: skip


def model_identity(model: nn.Module) -> Any:
    """What a state records of the model it was written by: its spec (``to_spec()``), else its class name."""
    to_spec = getattr(model, "to_spec", None)
    return to_spec() if callable(to_spec) else type(model).__qualname__


_ABSENT = "(absent)"


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """``"path.key: old -> new"`` for every leaf where two JSON-like values differ (mappings by key, sequences of
    one length by index), e.g. ``model.quantizer.config.num_codes: 16 -> 8``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = sorted(set(old) | set(new), key=str)
        return [d for k in keys for d in _differences(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{path}.{k}")]
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{path}.{i}")]
    if old == new:
        return []
    show = [value if value is _ABSENT else repr(value) for value in (old, new)]
    return [f"{path.lstrip('.')}: {show[0]} -> {show[1]}"]


def _model_differences(old: Any, new: Any) -> list[str]:
    """The differences of two model identities (specs ``{"kind", "name", "config"}``), the spec's own ``config``
    level left out of the paths: ``model.prior.config.num_layers: 6 -> 8`` for a TwoStageModel."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return _differences(old, new, "model")
    outer = _differences({k: v for k, v in old.items() if k != "config"},
                         {k: v for k, v in new.items() if k != "config"}, "model")  # fmt: skip
    return outer + _differences(old.get("config"), new.get("config"), "model")


def _listed(differences: list[str], most: int = 4) -> str:
    shown = ", ".join(differences[:most])
    return shown + (f" and {len(differences) - most} more" if len(differences) > most else "")


def check_resumable(state: Mapping[str, Any], *, task: Task, model: nn.Module, config: TrainConfig,
                     ctx: DistContext) -> None:  # fmt: skip
    """Raise a one-line ``ValueError`` naming what differs unless ``state`` was written by this kind of fit
    (``task``), this ``model``, these settings (but for ``RESUMABLE_CHANGES``) and this number of
    processes."""
    where = state["path"]
    if state["task"] != task.name:
        raise ValueError(f"resume: {where} is a state of a {state['task']!r} fit, not of {task.name!r}")
    identity = model_identity(model)
    if state["model_identity"] != identity:
        raise ValueError(
            f"resume: {where} holds another model ({_listed(_model_differences(state['model_identity'], identity))}); "
            "resume with the model (and config) the state was written by"
        )
    saved = {k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}
    now = {k: v for k, v in config.to_dict().items() if k in saved}
    changed = _differences(saved, now, "")
    if changed:
        raise ValueError(
            f"resume: {where} was trained with other settings ({_listed(changed)}); resume with those (only budgets, "
            "output and display options may change)"
        )
    if state["world_size"] != ctx.world_size:
        raise ValueError(
            f"resume: {where} was written by {state['world_size']} process(es), but this run has {ctx.world_size}; "
            f"the data position and shuffling are per rank, so resume with --nproc_per_node {state['world_size']}"
        )


def claim_checkpoint_dir(config: TrainConfig, *, run_id: str | None, resumed: bool) -> bool:
    """Check ``config.checkpoint_dir`` before training; returns whether another run must be cleared out of it first.

    A folder holding nothing of a run, or (resuming) only this run's states, is taken as it is; one holding another
    run's states or model is refused unless ``config.overwrite``.
    """
    if config.checkpoint_dir is None:
        return False
    directory = Path(config.checkpoint_dir)
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"checkpoint_dir {directory} is a file, not a folder; give the folder to write the model, metrics.json and "
            "train_state/ to"
        )
    found = run_artifacts(directory)
    if not found or (resumed and run_ids(directory) == {run_id}):
        return False
    if config.overwrite:
        return True
    raise ValueError(
        f"checkpoint_dir {directory} already holds another run ({', '.join(found)}); continue it with resume=, write "
        "to another folder, or pass overwrite=True to delete that run first"
    )
