"""Errors raised by [`vqgen.data`][vqgen.data].

Each subclasses a built-in the ``vqgen`` command already reports as a user error (no traceback):
``FileNotFoundError`` for missing data, ``ValueError`` for corrupt data.
"""

from __future__ import annotations

__all__ = ["ChecksumError", "DatasetNotFoundError", "DownloadError"]


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are missing (and were not or could not be downloaded).

    The message names the exact directory and file names to put in place.

    Examples:
        >>> from vqgen.data import DatasetNotFoundError, load_dataset
        >>> try:
        ...     load_dataset("mnist", root="no-data-here")
        ... except DatasetNotFoundError as error:
        ...     print(error)
        MNIST: missing no-data-here/mnist/train-images-idx3-ubyte.gz, ... Put the MNIST files in no-data-here/mnist/ ...
    """


class DownloadError(ConnectionError):
    """Every URL of a file failed (offline, unreachable host, HTTP error).

    A ``ConnectionError``: catch it to fall back to data that needs no network.

    Examples:
        >>> from vqgen.data import DownloadError, load_dataset
        >>> def train_set():
        ...     try:
        ...         return load_dataset("mnist", download=True)
        ...     except (DownloadError, FileNotFoundError):      # offline, and no files yet
        ...         return load_dataset("digits")
        >>> issubclass(DownloadError, ConnectionError)
        True
    """


class ChecksumError(ValueError):
    """A file's SHA-256 (or MD5) differs from the known checksum: truncated, corrupt or not the official file.

    Attributes:
        path: the offending file.
        expected: the known hex digest.
        actual: the digest of the file.

    Args:
        message: one line naming the file, the expected and the actual digest.
        path: the offending file.
        expected: the known hex digest.
        actual: the digest of the file.

    Examples:
        >>> import hashlib
        >>> from pathlib import Path
        >>> from vqgen.data import ChecksumError
        >>> from vqgen.data.download import verify_file
        >>> _ = Path("file.bin").write_bytes(b"data")
        >>> try:
        ...     verify_file("file.bin", sha256=hashlib.sha256(b"other data").hexdigest())
        ... except ChecksumError as error:
        ...     print(error.path, error.actual == hashlib.sha256(b"data").hexdigest())
        file.bin True
    """

    def __init__(self, message: str, *, path: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual
