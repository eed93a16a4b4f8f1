"""Is an output folder writable? Asked once, before the first training step, not after an epoch of training.

[`check_writable`][check_writable] creates the folder if it is missing and writes (and removes) a small hidden probe
file in it: the question the first checkpoint would ask, asked at once. ``os.access`` is not enough: it answers
"yes" to root on a read-only folder and knows nothing of read-only mounts or quotas.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["check_writable"]


def check_writable(directory: str | os.PathLike[str] | None, *, name: str = "checkpoint_dir") -> Path | None:
    """``directory`` as a ``Path`` (created if missing) once a file could be written in it; ``None`` for ``None``.

    Args:
        directory: the folder a run will write to.
        name: what the caller calls it, for the message (``"checkpoint_dir"``, ``"--output"``).

    Raises:
        NotADirectoryError: ``directory``, or a folder above it, is a file.
        OSError: the folder cannot be created or written (``PermissionError`` for a read-only folder), with a
            one-line message naming ``name`` and the folder.
    """
    if directory is None:
        return None
    path = Path(directory)
    blocker = next((p for p in (path, *path.parents) if p.exists() and not p.is_dir()), None)
    if blocker is not None:
        raise NotADirectoryError(f"{name} {path} is not a writable folder: {blocker} is a file; choose another {name}")
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path, prefix=".vqgen-write-test-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or str(error)
        raise type(error)(
            f"{name} {path} is not a writable folder ({reason}); choose another {name}, or make it writable"
        ) from None
    return path
