"""Checksums, downloads and safe extraction.

- [`verify_file`][verify_file] hashes a file once per process (keyed by path, size and modification time) and raises
  [`ChecksumError`][vqgen.data.errors.ChecksumError] naming the file, the expected and the actual digest.
- [`download_file`][download_file] streams a URL to a temporary file beside the target, hashes it while streaming,
  verifies it and only then renames it into place (atomically), so a failed or corrupt download never leaves a file
  behind.
- [`extract_tar`][extract_tar] unpacks a ``.tar.gz`` rejecting absolute paths, ``..``, links and special files.
- [`ensure_files`][ensure_files] is what the dataset loaders call: verify what is there, download what is missing (if
  allowed), or raise [`DatasetNotFoundError`][vqgen.data.errors.DatasetNotFoundError] saying which files to put in which
  directory.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

from tqdm.auto import tqdm

from .errors import ChecksumError, DatasetNotFoundError, DownloadError
from .specs import FileSpec

__all__ = ["download_file", "ensure_files", "extract_tar", "file_digest", "verify_file"]

logger = logging.getLogger(__name__)

_CHUNK = 1 << 20
_PROGRESS_MIN_BYTES = 1 << 20  # show a progress bar only for files of at least 1 MiB
_verified: set[tuple[str, int, int, str, str]] = set()


def file_digest(path: str | os.PathLike[str], algorithm: str = "sha256") -> str:
    """Hex digest of a file, read in chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _expected(sha256: str | None, md5: str | None) -> tuple[str, str] | None:
    if sha256:
        return "sha256", sha256.lower()
    if md5:
        return "md5", md5.lower()
    return None


def verify_file(path: str | os.PathLike[str], sha256: str | None = None, *, md5: str | None = None) -> None:
    """Raise [`ChecksumError`][ChecksumError] unless the file's SHA-256 (or, failing that, MD5) is the expected one.

    Results are cached per process, keyed by the path, size and modification time, so a file is hashed once.
    Does nothing when neither checksum is given.
    """
    expected = _expected(sha256, md5)
    if expected is None:
        return
    algorithm, want = expected
    path = Path(path)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, algorithm, want)
    if key in _verified:
        return
    actual = file_digest(path, algorithm)
    if actual != want:
        raise ChecksumError(
            f"{path} is corrupt or not the official file: expected {algorithm.upper()} {want}, got {actual} "
            f"({stat.st_size} bytes); delete it and download it again (download=True) or replace it",
            path=str(path),
            expected=want,
            actual=actual,
        )
    _verified.add(key)


def download_file(
    urls: str | Sequence[str],
    destination: str | os.PathLike[str],
    *,
    sha256: str | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60.0,
) -> Path:
    """Download the first URL that answers to ``destination``, verifying its checksum before it lands there.

    Args:
        urls: one URL or mirrors tried in order.
        destination: the final path; its folder is created. It appears only after a successful, verified download.
        sha256: expected SHA-256 (preferred).
        md5: expected MD5, checked only when no SHA-256 is given.
        progress: show a tqdm progress bar (only for files of at least 1 MiB).
        timeout: socket timeout in seconds.

    Returns:
        ``destination`` as a ``Path``.

    Raises:
        ValueError: neither checksum is given (downloads are always verified).
        ChecksumError: the downloaded bytes do not match; nothing is written.
        DownloadError: every URL failed (offline, unreachable, HTTP error).
    """
    expected = _expected(sha256, md5)
    if expected is None:
        raise ValueError(f"download_file needs sha256 or md5 to verify {destination}; got neither")
    algorithm, want = expected
    urls = [urls] if isinstance(urls, str) else list(urls)
    if not urls:
        raise ValueError(f"urls must name at least one URL for {destination}, got none")
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        try:
            actual, size = _stream(url, destination, algorithm, want, progress, timeout)
        except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as error:
            reason = error if isinstance(error, urllib.error.HTTPError) else getattr(error, "reason", None) or error
            failures.append(f"{url}: {reason}")
            logger.info("download of %s failed: %s", url, failures[-1])
            continue
        if actual != want:
            raise ChecksumError(
                f"download of {destination.name} from {url} is corrupt: expected {algorithm.upper()} {want}, "
                f"got {actual} ({size} bytes); nothing was saved",
                path=str(destination),
                expected=want,
                actual=actual,
            )
        stat = destination.stat()
        _verified.add((str(destination.resolve()), stat.st_size, stat.st_mtime_ns, algorithm, want))
        logger.info("downloaded %s (%d bytes, %s verified)", destination, size, algorithm)
        return destination
    raise DownloadError(f"could not download {destination.name}: " + "; ".join(failures))


def _stream(url: str, destination: Path, algorithm: str, want: str, progress: bool, timeout: float) -> tuple[str, int]:
    """Stream ``url`` into a temp file beside ``destination``, renamed into place only if its digest is ``want``.

    Returns the digest and the size; on a mismatch the temp file is removed and nothing is renamed.
    """
    digest = hashlib.new(algorithm)
    size = 0
    handle, tmp_name = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".part", dir=destination.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as response:
            total = int(response.headers.get("Content-Length") or 0) or None
            show = progress and (total or 0) >= _PROGRESS_MIN_BYTES
            with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name, disable=not show) as bar:
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
        actual = digest.hexdigest()
        if actual == want:
            tmp.chmod(0o644)  # mkstemp creates 0600; a downloaded dataset is not a secret
            os.replace(tmp, destination)
        return actual, size
    finally:
        tmp.unlink(missing_ok=True)


def extract_tar(
    archive: str | os.PathLike[str], destination: str | os.PathLike[str], members: Iterable[str] | None = None
) -> list[Path]:
    """Safely extract regular files of a (gzipped) tar archive into ``destination``.

    Absolute paths, ``..`` components, links and special files are rejected with ``ValueError`` naming the member.
    Each file is written to a temporary name and renamed, so an interrupted extraction leaves no partial file.

    Args:
        archive: the ``.tar`` / ``.tar.gz`` file.
        destination: folder to extract into (created).
        members: member names to extract (default: every regular file).

    Returns:
        The extracted paths.
    """
    destination = Path(destination)
    wanted = None if members is None else set(members)
    extracted = []
    with tarfile.open(archive, "r:*") as tar:
        for member in tar.getmembers():
            name = PurePosixPath(member.name)
            if name.is_absolute() or ".." in name.parts or "\\" in member.name:
                raise ValueError(f"unsafe path {member.name!r} in archive {archive}; refusing to extract")
            if member.isdir():
                continue
            if not member.isfile():
                raise ValueError(f"archive {archive} holds a link or special file {member.name!r}; refusing to extract")
            if wanted is not None and member.name not in wanted:
                continue
            target = destination.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - isfile() members always have data
                continue
            handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
            try:
                with os.fdopen(handle, "wb") as out, source:
                    shutil.copyfileobj(source, out, _CHUNK)
                os.replace(tmp_name, target)
            finally:
                Path(tmp_name).unlink(missing_ok=True)
            extracted.append(target)
    if wanted is not None:
        missing = wanted - {p.relative_to(destination).as_posix() for p in extracted}
        if missing:
            raise ValueError(f"archive {archive} lacks the expected members {sorted(missing)}")
    return extracted


def where_to_put(title: str, directory: Path, names: Sequence[str]) -> str:
    """The sentence that tells a user exactly where the files of a dataset go."""
    listing = ", ".join(names)
    return (
        f"Put the {title} files in {directory}{os.sep} (file names: {listing}), "
        f"or point root= / $VQGEN_DATA at a folder that holds {directory.name}{os.sep}"
    )


def ensure_files(
    title: str,
    directory: Path,
    files: Sequence[FileSpec],
    *,
    download: bool,
    progress: bool = True,
    all_names: Sequence[str] | None = None,
) -> list[Path]:
    """Return the paths of ``files`` inside ``directory``, verified, downloading missing ones if ``download``.

    ``all_names`` (default: the names of ``files``) are the names listed in the "put the files in" message, so it
    can name every file of the dataset, not only those of one split.

    Raises:
        DatasetNotFoundError: files are missing and ``download`` is false, cannot be downloaded, or the download
            failed (offline); the message names the directory and the file names.
        ChecksumError: a local or downloaded file is corrupt.
    """
    paths = [directory / f.name for f in files]
    missing = [f for f, p in zip(files, paths) if not p.is_file()]
    names = list(all_names) if all_names is not None else [f.name for f in files]
    if missing and not download:
        raise DatasetNotFoundError(
            f"{title}: missing {', '.join(str(directory / f.name) for f in missing)}. "
            + where_to_put(title, directory, names)
            + (", or pass download=True" if all(f.downloadable for f in missing) else "")
        )
    for spec in missing:
        target = directory / spec.name
        if not spec.downloadable:
            raise DatasetNotFoundError(
                f"{title}: {target} is missing and cannot be downloaded (no official URL with a known checksum). "
                + where_to_put(title, directory, names)
            )
        try:
            download_file(spec.urls, target, sha256=spec.sha256, md5=spec.md5, progress=progress)
        except DownloadError as error:
            raise DatasetNotFoundError(
                f"{title}: download failed ({error}); are you offline? " + where_to_put(title, directory, names)
            ) from error
    for spec, path in zip(files, paths):
        if spec.sha256 or spec.md5:
            verify_file(path, spec.sha256, md5=None if spec.sha256 else spec.md5)
        elif spec.size is not None and path.stat().st_size != spec.size:
            raise ChecksumError(
                f"{path} has {path.stat().st_size} bytes, expected {spec.size} (truncated or not the official file)",
                path=str(path),
                expected=f"{spec.size} bytes",
                actual=f"{path.stat().st_size} bytes",
            )
    return paths
