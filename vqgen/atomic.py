"""Atomic file writes: a file holds either its old or its new complete content, whenever the process is killed.

[`write_atomic`][write_atomic] writes the new content to a temporary name beside the file (``NAME.tmp-PID-XXXXXXXX``),
flushes it to disk (``fsync``), renames it over the file with ``os.replace`` (atomic on POSIX and Windows) and then
syncs the directory, so that the rename itself survives a power cut. Temporary files left by an earlier write of the
same file that was killed are removed first. ``metrics.json`` and ``run.json`` are written this way; a checkpoint,
whose two files must change together, is built from the same pieces (see [`vqgen.persistence`][vqgen.persistence]).

Every failure is an ``OSError`` with a one-line message naming the file and what happened
([`write_error`][write_error]): ``could not write runs/a/model.safetensors: no space left on device``. Writers of
other libraries that report I/O failures in their own exception (safetensors' ``SafetensorError``) are converted too,
with the operating system's error number recovered from their message.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from safetensors import SafetensorError

__all__ = [
    "TEMPORARY_MARK",
    "file_sha256",
    "remove_temporaries",
    "replace",
    "sync_directory",
    "sync_file",
    "write_atomic",
    "write_error",
    "write_temporary",
]

#: What a temporary file's name adds to the name of the file it will replace.
TEMPORARY_MARK = ".tmp-"
_OS_ERROR_NUMBER = re.compile(r"os error (\d+)")
#: Filesystems that cannot sync a directory answer with these; the data files themselves are synced regardless.
_NO_DIRECTORY_SYNC = (errno.EINVAL, errno.ENOTSUP, errno.EBADF)

Content = bytes | str | Callable[[Path], None]


def write_error(path: str | Path, error: BaseException, *, action: str = "write") -> OSError:
    """An ``OSError`` whose one-line message names ``path`` and says what went wrong (its ``errno`` is kept).

    ``error`` is an ``OSError`` or a writer's own error (``SafetensorError: ... (os error 28)``); ENOSPC reads
    ``no space left on device``.
    """
    number = getattr(error, "errno", None)
    if number is None and (found := _OS_ERROR_NUMBER.search(str(error))):
        number = int(found.group(1))
    if number == errno.ENOSPC:
        reason = "no space left on device"
    elif number is not None and getattr(error, "strerror", None):
        reason = error.strerror[:1].lower() + error.strerror[1:]
    elif number is not None:
        reason = os.strerror(number)[:1].lower() + os.strerror(number)[1:]
    else:
        reason = str(error) or type(error).__name__
    converted = OSError(f"could not {action} {path}: {' '.join(reason.split())}")
    converted.errno = number
    return converted


def _temporaries(path: Path) -> list[Path]:
    return sorted(path.parent.glob(glob.escape(path.name) + TEMPORARY_MARK + "*"))


def remove_temporaries(path: str | Path) -> list[Path]:
    """Delete the temporary files of earlier writes of ``path`` (``NAME.tmp-*``), as far as possible; returns them.

    Call it only where no other process writes ``path`` at the same time.
    """
    stale = _temporaries(Path(path))
    for temporary in stale:
        with contextlib.suppress(OSError):  # best effort: a file that stays is retried by the next write
            temporary.unlink()
    return stale


def _write_bytes(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def file_sha256(path: str | Path) -> str:
    """SHA-256 (hex) of a file, read in 1 MiB blocks; an unreadable file is an ``OSError`` naming it."""
    digest = hashlib.sha256()
    try:
        with Path(path).open("rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
    except OSError as error:
        raise OSError(f"{path} could not be read: {error}") from error
    return digest.hexdigest()


def sync_file(path: str | Path) -> None:
    """Flush a written file's content to disk (``fsync``)."""
    fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temporary(path: str | Path, content: Content) -> Path:
    """Write ``content`` to a new temporary file beside ``path`` and sync it to disk; returns the temporary path.

    Args:
        path: the file the temporary will replace (it is not touched here).
        content: bytes, text (UTF-8), or a function that writes the file at the path it is given (for example
            ``lambda tmp: safetensors.torch.save_file(tensors, str(tmp))``).

    Raises:
        OSError: naming ``path`` (see [`write_error`][write_error]); the temporary file is removed.
    """
    path = Path(path)
    temporary = path.with_name(f"{path.name}{TEMPORARY_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    try:
        if callable(content):
            content(temporary)
            sync_file(temporary)
        else:
            _write_bytes(temporary, content.encode("utf-8") if isinstance(content, str) else bytes(content))
    except BaseException as error:
        with contextlib.suppress(OSError):
            temporary.unlink()
        if isinstance(error, (OSError, SafetensorError)):
            raise write_error(path, error) from error
        raise
    return temporary


def replace(temporary: str | Path, path: str | Path) -> None:
    """``os.replace(temporary, path)``; a failure is an ``OSError`` naming ``path``."""
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise write_error(path, error) from error


def sync_directory(directory: str | Path) -> None:
    """Flush ``directory``'s entries (new names, renames) to disk; a no-op where directories cannot be synced."""
    if os.name == "nt":  # Windows cannot open a directory; NTFS journals renames itself
        return
    try:
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as error:
        if error.errno not in _NO_DIRECTORY_SYNC:
            raise write_error(directory, error, action="sync") from error


def write_atomic(path: str | Path, content: Content) -> Path:
    """Replace ``path`` with ``content`` (bytes, UTF-8 text, or a writer function) atomically; returns ``path``.

    A reader, or a later run after a kill at any point, finds either the old complete file or the new one.

    Raises:
        OSError: one line naming ``path`` (``could not write PATH: no space left on device``); ``path`` is unchanged.
    """
    path = Path(path)
    remove_temporaries(path)
    temporary = write_temporary(path, content)
    try:
        replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
    sync_directory(path.parent)
    return path
