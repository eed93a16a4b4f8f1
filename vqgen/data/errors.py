"""Errors raised by [`vqgen.data`][vqgen.data].

Each subclasses a built-in the ``vqgen`` command already reports as a user error (no traceback):
``FileNotFoundError`` for missing data, ``ValueError`` for corrupt data.
"""

from __future__ import annotations

__all__ = ["ChecksumError", "DatasetNotFoundError", "DownloadError"]


class DatasetNotFoundError(FileNotFoundError):
    """The files of a dataset are missing (and were not or could not be downloaded).

    The message names the exact directory and file names to put in place.
    """


class DownloadError(ConnectionError):
    """Every URL of a file failed (offline, unreachable host, HTTP error)."""


class ChecksumError(ValueError):
    """A file's SHA-256 (or MD5) differs from the known checksum: truncated, corrupt or not the official file.

    Attributes:
        path: the offending file.
        expected: the known hex digest.
        actual: the digest of the file.
    """

    def __init__(self, message: str, *, path: str, expected: str, actual: str) -> None:
        super().__init__(message)
        self.path = path
        self.expected = expected
        self.actual = actual
