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
intact. ``state.json`` records the size and SHA-256 of the tensor file, so a truncated or altered state is named in
a clear error instead of loading garbage. A write that fails (a full disk) is one ``OSError`` naming the state
(``could not write .../step-000000200: no space left on device``), and the states already there stay as they were.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor

from ..atomic import write_error

__all__ = ["FORMAT", "STATE_DIR", "capture_rng", "find_state", "load_state", "restore_rng", "save_state"]

FORMAT = "vqgen-train-state"
FORMAT_VERSION = 1
STATE_DIR = "train_state"
TENSORS_NAME = "tensors.safetensors"
JSON_NAME = "state.json"
_STEP_DIR = re.compile(r"^step-(\d+)$")


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


def capture_rng() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global generators (and CUDA's, when initialised)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),  # noqa: NPY002  (the legacy global generator that libraries still use)
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    """Put back what [`capture_rng`][capture_rng] returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np.random.set_state(state["numpy"])  # noqa: NPY002
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(list(state["cuda"]))


# ------------------------------------------------------------------------------------------- save / load


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _states(root: Path) -> list[tuple[int, Path]]:
    """The complete states under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]
    return sorted(found)


def save_state(root: str | Path, state: Mapping[str, Any], *, step: int, keep: int = 2) -> Path:
    """Write ``state`` atomically as ``root/step-NNNNNNNNN``; keep the newest ``keep`` states; returns the path.

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
        for stale in root.glob(".tmp-*"):  # left by a process killed while saving
            shutil.rmtree(stale, ignore_errors=True)
        temporary = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    except OSError as error:
        raise write_error(final, error) from error
    old = root / f".tmp-old-{final.name}"
    try:
        save_file(tensors, str(temporary / TENSORS_NAME), metadata={"format": FORMAT})
        _fsync(temporary / TENSORS_NAME)
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "tensors_bytes": (temporary / TENSORS_NAME).stat().st_size,
            "tensors_sha256": _sha256(temporary / TENSORS_NAME),
            "state": body,
        }
        with open(temporary / JSON_NAME, "w") as file:
            file.write(json.dumps(header) + "\n")
            file.flush()
            os.fsync(file.fileno())
        _fsync(temporary)
        if final.exists():  # the same step saved again (e.g. at an epoch end after a periodic save): swap it
            os.replace(final, old)
            os.replace(temporary, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(temporary, final)
        _fsync(root)
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
    for _, old_state in _states(root)[:-keep]:
        shutil.rmtree(old_state, ignore_errors=True)
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
            return states[-1][1]
    raise FileNotFoundError(
        f"resume: no training state in {path} (expected {STATE_DIR}/step-NNNNNNNNN directories, written during "
        "training with checkpoint_dir set)"
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
    if header.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{json_path} has training-state format {header.get('format_version')}, this vqgen reads {FORMAT_VERSION}"
        )
    if not tensors_path.is_file():
        raise ValueError(f"{path} is not a complete training state: {TENSORS_NAME} is missing{_others(path)}")
    size = tensors_path.stat().st_size
    if size != header["tensors_bytes"] or _sha256(tensors_path) != header["tensors_sha256"]:
        raise ValueError(
            f"{tensors_path} is truncated or altered ({size} bytes, expected {header['tensors_bytes']} with the "
            f"recorded SHA-256){_others(path)}"
        )
    try:
        tensors = load_file(str(tensors_path))
    except (SafetensorError, OSError) as error:
        raise ValueError(f"{tensors_path} cannot be read: {error}{_others(path)}") from None
    state = _decode(header["state"], tensors)
    state["path"] = str(path)
    return state
