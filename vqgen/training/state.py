"""Resumable training states, written so that a crash never destroys the last good one.

A training state is everything a run needs to continue exactly where it stopped: the model, the optimiser, the
learning-rate schedule, the gradient scaler, the weight average, the step, the epoch and the number of batches
already consumed in it, the random-number generators (Python, NumPy, torch, CUDA), the partial means of the current
epoch and the history so far. It is a directory::

    train_state/
      step-000000200/           one complete state per kept step (the newest ``keep`` of them)
        tensors.safetensors     every tensor, flat, by key (no pickle: loading never runs code)
        state.json              everything else, with {"__tensor__": key} where a tensor goes

A new state is written to a temporary directory beside the others (``.tmp-*``), each file flushed and ``fsync``-ed,
then renamed to ``step-NNNNNNNNN`` in one ``os.replace``; older states are deleted only afterwards. A process killed
while saving leaves a ``.tmp-*`` directory that is ignored (and removed by the next save), and the previous state
intact; a folder holding only such directories holds no state ([`has_state`][has_state]: the run had not saved yet).
``state.json`` records the size and SHA-256 of the tensor file, so a truncated or altered state is named in a clear
error instead of loading garbage. A write that fails (a full disk) is one ``OSError`` naming the state
(``could not write .../step-000000200: no space left on device``), and the states already there stay as they were.

``state.json`` also records the run that wrote it (``run_id``, made when a run starts afresh and kept when it is
resumed) and the ``vqgen_version``. Only the states of the saving run are pruned, so the steps of one run never delete
another's; resuming from a folder whose states belong to different runs is an error, and a state written by another
vqgen version loads with a warning (another ``format_version``: an error). [`run_artifacts`][run_artifacts] and
[`clear_run`][clear_run] say what an earlier run left in a checkpoint directory and delete it (``overwrite=True``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..atomic import file_sha256, sync_directory, sync_file, write_error

__all__ = [
    "FORMAT",
    "RUN_FILES",
    "STATE_DIR",
    "clear_run",
    "find_state",
    "has_state",
    "interrupted_saves",
    "load_state",
    "run_artifacts",
    "run_ids",
    "save_state",
]

FORMAT = "vqgen-train-state"
FORMAT_VERSION = 1
STATE_DIR = "train_state"
TENSORS_NAME = "tensors.safetensors"
JSON_NAME = "state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")
_STEP_GLOB = "step-[0-9]*"
#: What a run's kept model and history leave in its checkpoint directory besides ``train_state/`` (and
#: ``tensorboard/``, removed with them by [`clear_run`][clear_run]).
RUN_FILES = ("config.json", "model.safetensors", "metrics.json")
_UNREADABLE = object()  # the run id of a state whose state.json cannot be read


# ------------------------------------------------------------------------------------------ nested encoding


def _encode(obj: Any, tensors: dict[str, Tensor]) -> Any:
    """A JSON-able copy of ``obj`` with every tensor / array moved into ``tensors`` (keys are preserved exactly)."""
    if isinstance(obj, Tensor):
        key = f"t{len(tensors)}"
        tensors[key] = obj.detach().to("cpu").contiguous().clone()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = f"t{len(tensors)}"
        tensors[key] = torch.from_numpy(obj.astype(np.int64) if obj.dtype.kind in "ui" else obj.copy())
        return {"__ndarray__": key, "dtype": str(obj.dtype)}
    if isinstance(obj, Mapping):
        return {"__dict__": [[_encode(k, tensors), _encode(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return [_encode(v, tensors) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"a training state holds tensors, numbers, strings, lists and dicts; got {type(obj).__name__}")


def _decode(obj: Any, tensors: Mapping[str, Tensor]) -> Any:
    if isinstance(obj, list):
        return [_decode(v, tensors) for v in obj]
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy().astype(obj["dtype"])
        if "__tuple__" in obj:
            return tuple(_decode(v, tensors) for v in obj["__tuple__"])
        if "__dict__" in obj:
            return {_decode(k, tensors): _decode(v, tensors) for k, v in obj["__dict__"]}
    return obj


# ------------------------------------------------------------------------------------------------- RNG


# ------------------------------------------------------------------------------------------- save / load


def _restore_swaps(root: Path) -> None:
    """Put back a state that a same-step save moved aside (``.tmp-old-step-N``) and was killed before its new copy
    took the name ``step-N``; without this, a kill between those two renames would leave no state of that step."""
    for moved in root.glob(f".tmp-old-{_STEP_GLOB}"):
        original = root / moved.name.removeprefix(".tmp-old-")
        if moved.is_dir() and not original.exists():
            try:
                os.replace(moved, original)
            except OSError:  # a read-only folder: it stays aside, and the error of the reader names what is there
                pass


def _states(root: Path) -> list[tuple[int, Path]]:
    """The complete states under ``root``, oldest first (a state moved aside by an interrupted swap put back)."""
    if not root.is_dir():
        return []
    _restore_swaps(root)
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def _vqgen_version() -> str:
    from .. import __version__

    return __version__


def _run_id(path: Path) -> Any:
    """The ``run_id`` recorded in state ``path`` (``None`` for a state written before run ids were recorded)."""
    try:
        header = json.loads((path / JSON_NAME).read_text())
    except (OSError, ValueError):
        return _UNREADABLE
    return header.get("run_id") if isinstance(header, dict) else _UNREADABLE


def has_state(path: str | Path) -> bool:
    """Whether ``path`` holds a complete training state: it is one (a ``step-*`` directory with its ``state.json``),
    or ``path/train_state`` or ``path`` holds one. A folder with only ``.tmp-*`` directories (a process killed during
    its first save) holds none: that run had not saved yet."""
    path = Path(path)
    return (path / JSON_NAME).is_file() or any(_states(root) for root in (path / STATE_DIR, path))


def interrupted_saves(path: str | Path) -> list[Path]:
    """The ``.tmp-*`` directories that interrupted saves left in ``path/train_state`` or ``path``."""
    path = Path(path)
    return sorted(p for root in (path / STATE_DIR, path) if root.is_dir() for p in root.glob(".tmp-*"))


def save_state(
    root: str | Path, state: Mapping[str, Any], *, step: int, keep: int = 2, run_id: str | None = None
) -> Path:
    """Write ``state`` atomically as ``root/step-NNNNNNNNN``; keep the newest ``keep`` states of run ``run_id``
    (the states of other runs are left alone); returns the path.

    Raises:
        OSError: one line naming the state that could not be written (``no space left on device``, ...); the states
            already there are left as they were.
    """
    root = Path(root)
    final = root / f"step-{step:09d}"
    tensors: dict[str, Tensor] = {}
    body = _encode(dict(state), tensors)
    try:
        root.mkdir(parents=True, exist_ok=True)
        _restore_swaps(root)
        for stale in root.glob(".tmp-*"):  # left by a process killed while saving
            shutil.rmtree(stale, ignore_errors=True)
        temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError as error:
        raise write_error(final, error) from error
    old = root / f".tmp-old-{final.name}"
    try:
        save_file(tensors, str(temporary / TENSORS_NAME), metadata={"format": FORMAT})
        sync_file(temporary / TENSORS_NAME)
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "vqgen_version": _vqgen_version(),
            "run_id": run_id,
            "tensors_bytes": (temporary / TENSORS_NAME).stat().st_size,
            "tensors_sha256": file_sha256(temporary / TENSORS_NAME),
            "state": body,
        }
        with open(temporary / JSON_NAME, "w") as file:
            file.write(json.dumps(header) + "\n")
            file.flush()
            os.fsync(file.fileno())
        sync_directory(temporary)
        if final.exists():  # the same step saved again (e.g. at an epoch end after a periodic save): swap it
            os.replace(final, old)
            os.replace(temporary, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, final)
        sync_directory(root)
    except BaseException as error:
        shutil.rmtree(temporary, ignore_errors=True)
        if old.is_dir() and not final.exists():  # failed inside the swap: put the state that was there back
            try:
                os.replace(old, final)
            except OSError:
                pass  # it stays as .tmp-old-step-*; the error below names the step
        if isinstance(error, (SafetensorError, OSError)):
            raise write_error(final, error) from error
        raise
    for old_state in [path for _, path in _states(root) if _run_id(path) == run_id][:-keep]:
        doomed = root / f".tmp-pruned-{old_state.name}"  # out of step-* first: a kill while deleting leaves no half
        try:
            os.replace(old_state, doomed)
        except OSError:
            continue
        shutil.rmtree(doomed, ignore_errors=True)
    return final


def find_state(path: str | Path) -> Path:
    """The state directory to resume from: ``path`` itself (a ``step-*`` directory), or the newest state under
    ``path`` or ``path/train_state`` (a run's ``checkpoint_dir``)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"resume: {path} does not exist")
    if (path / JSON_NAME).exists() or (path / TENSORS_NAME).exists():
        return path
    for root in (path / STATE_DIR, path):
        states = _states(root)
        if states:
            _check_one_run(root, [state for _, state in states])
            return states[-1][1]
    interrupted = interrupted_saves(path)
    if interrupted:
        raise FileNotFoundError(
            f"resume: no complete training state in {path}, only an interrupted first save ({interrupted[0].name}): "
            "the run had not saved yet; start it afresh (overwrite=True) instead of resuming"
        )
    raise FileNotFoundError(
        f"resume: no training state in {path} (expected {STATE_DIR}/step-NNNNNNNNN directories, written during "
        "training with checkpoint_dir set)"
    )


def _check_one_run(root: Path, states: list[Path]) -> None:
    """Raise unless the readable ``states`` under ``root`` were all written by one run."""
    runs: dict[Any, list[str]] = {}
    for state in states:
        run = _run_id(state)
        if run is not _UNREADABLE:
            runs.setdefault(run, []).append(state.name)
    if len(runs) > 1:
        listing = "; ".join(
            f"run {run[:8] if run else '(unrecorded)'}: {', '.join(names)}" for run, names in runs.items()
        )
        raise ValueError(
            f"resume: {root} holds the states of {len(runs)} different runs ({listing}); resume from one step-* "
            "directory of the run you mean, or delete the other run's states"
        )


def _others(path: Path) -> str:
    older = [p for _, p in _states(path.parent) if p != path]
    if not older:
        return ""
    return f"; an earlier state is still there: resume from {older[-1]}"


def load_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by [`save_state`][save_state] (``path`` as for [`find_state`][find_state]).

    Raises:
        ValueError: the state is truncated, altered, or not a vqgen training state (the message names the file and
            an earlier state to resume from, when there is one).
    """
    path = find_state(path)
    json_path, tensors_path = path / JSON_NAME, path / TENSORS_NAME
    try:
        header = json.loads(json_path.read_text())
    except FileNotFoundError:
        raise ValueError(f"{path} is not a complete training state: {JSON_NAME} is missing{_others(path)}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{json_path} is truncated or corrupt ({error}){_others(path)}") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ValueError(f"{json_path} is not a vqgen training state (no format {FORMAT!r}){_others(path)}")
    written, running = header.get("vqgen_version"), _vqgen_version()
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{json_path} has training-state format {header.get('format_version')} (written by vqgen "
            f"{written or 'of unrecorded version'}), but this vqgen ({running}) reads format {FORMAT_VERSION}: "
            "resume with the vqgen that wrote it, or start the run afresh (overwrite=True)"
        )
    if written != running:
        warnings.warn(
            f"{json_path} was written by vqgen {written or '(a version that did not record it)'}, this is vqgen "
            f"{running}; the state format ({FORMAT_VERSION}) is the same, so it loads, but the training may not "
            "continue exactly as it would have",
            UserWarning,
            stacklevel=2,
        )
    if not tensors_path.is_file():
        raise ValueError(f"{path} is not a complete training state: {TENSORS_NAME} is missing{_others(path)}")
    size = tensors_path.stat().st_size
    if size != header["tensors_bytes"] or file_sha256(tensors_path) != header["tensors_sha256"]:
        raise ValueError(
            f"{tensors_path} is truncated or altered ({size} bytes, expected {header['tensors_bytes']} with the "
            f"recorded SHA-256){_others(path)}"
        )
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{tensors_path} cannot be read: {error}{_others(path)}") from None
    state = _decode(header["state"], tensors)
    state["path"], state["run_id"], state["vqgen_version"] = str(path), header.get("run_id"), written
    return state


# ------------------------------------------------------------------------------------------ output folders


def run_artifacts(directory: str | Path) -> list[str]:
    """What a training run left in ``directory``: its complete states (``train_state/``), kept model and
    ``metrics.json``, as names; ``[]`` for a missing or empty folder, or one with only an interrupted first save."""
    directory = Path(directory)
    found = [name for name in RUN_FILES if (directory / name).exists()]
    states = _states(directory / STATE_DIR)
    if states:
        found.append(f"{STATE_DIR}/ ({len(states)} state{'s' if len(states) > 1 else ''})")
    return found


def run_ids(directory: str | Path) -> set[Any]:
    """The run ids of the complete states in ``directory/train_state`` (``None`` for unrecorded ones)."""
    ids = {_run_id(path) for _, path in _states(Path(directory) / STATE_DIR)}
    return ids - {_UNREADABLE}  # a state without a readable state.json belongs to no run (load_state names it)


def clear_run(directory: str | Path) -> None:
    """Delete what an earlier run left in ``directory``: ``train_state/``, the kept model (``config.json``,
    ``model.safetensors``), ``metrics.json`` and ``tensorboard/``. Other files stay."""
    directory = Path(directory)
    for name in (STATE_DIR, "tensorboard"):
        shutil.rmtree(directory / name, ignore_errors=True)
    for name in RUN_FILES:
        (directory / name).unlink(missing_ok=True)
