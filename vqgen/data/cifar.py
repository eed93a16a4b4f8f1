"""CIFAR-10 in its *binary version* record format (never the python-pickle version).

Each record is 3073 bytes: one label byte (0-9), then 3072 pixel bytes: the 1024 red values, the 1024 green, the
1024 blue, each a 32x32 image in row-major order. Two layouts under the data root are accepted:

- the full dataset, ``<root>/cifar10/cifar-10-batches-bin/`` holding ``data_batch_1.bin`` .. ``data_batch_5.bin``
  and ``test_batch.bin`` (as the official tarball unpacks; ``download=True`` fetches and extracts it, verified by
  its published MD5);
- the subset shipped with the test data, ``<root>/cifar10-subset/`` holding ``data_batch_1_first4000.bin`` (the first
  4000 training records) and ``test_batch_first1000.bin`` (the first 1000 test records), verified by SHA-256.

Reference: A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", Tech. Report, Toronto, 2009.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange

from .dataset import ImageDataset
from .download import download_file, ensure_files, extract_tar, where_to_put
from .errors import DatasetNotFoundError, DownloadError
from .specs import CIFAR10_ARCHIVE, CIFAR10_BATCH_DIR, DATASETS, data_root

__all__ = ["load_cifar10", "read_cifar_binary"]

logger = logging.getLogger(__name__)

RECORD_BYTES = 1 + 3 * 32 * 32


def read_cifar_binary(paths: Sequence[str | os.PathLike[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Read CIFAR-10 binary record files, concatenated in the given order.

    Each record is one label byte and the 3072 bytes of a ``32 x 32`` image, red plane first.

    Args:
        paths: the batch files (``data_batch_1.bin``, ..., ``test_batch.bin``).

    Returns:
        images ``(N, 3, 32, 32)`` uint8 and labels ``(N,)`` int64.

    Raises:
        ValueError: naming the file, when its size is not a multiple of 3073 bytes or a label is not in 0..9.

    Examples:
        >>> import numpy as np
        >>> from vqgen.data import read_cifar_binary
        >>> record = np.concatenate([[7], np.full(3 * 32 * 32, 255)]).astype(np.uint8)     # label 7, a white image
        >>> record.tofile("batch.bin")
        >>> images, labels = read_cifar_binary(["batch.bin"])
        >>> images.shape, labels
        ((1, 3, 32, 32), array([7]))
    """
    images, labels = [], []
    for path in paths:
        raw = np.fromfile(path, dtype=np.uint8)
        if raw.size == 0 or raw.size % RECORD_BYTES:
            raise ValueError(
                f"{path}: {raw.size} bytes is not a whole number of {RECORD_BYTES}-byte CIFAR-10 records "
                "(truncated, or not a binary-version batch file)"
            )
        records = raw.reshape(-1, RECORD_BYTES)  # (n, 3073)
        if records[:, 0].max() > 9:
            raise ValueError(f"{path}: label byte {records[:, 0].max()} is not in 0..9; not a CIFAR-10 batch file")
        labels.append(records[:, 0].astype(np.int64))
        images.append(rearrange(records[:, 1:], "n (c h w) -> n c h w", c=3, h=32, w=32))
    return np.concatenate(images), np.concatenate(labels)


def _download_full(directory: Path, progress: bool = True) -> None:
    archive = directory / CIFAR10_ARCHIVE.name
    download_file(CIFAR10_ARCHIVE.urls, archive, md5=CIFAR10_ARCHIVE.md5, progress=progress)
    members = [f.name for split in DATASETS["cifar10"].splits.values() for f in split]
    extract_tar(archive, directory, members=members)
    archive.unlink()
    logger.info("extracted the CIFAR-10 binary batches into %s", directory / CIFAR10_BATCH_DIR)


def load_cifar10(
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    subset: bool | None = None,
) -> ImageDataset:
    """CIFAR-10: ``(N, 3, 32, 32)`` uint8 colour images of 10 classes, from the binary record files.

    Args:
        split: ``"train"`` (50000 images, or 4000 in the subset) or ``"test"`` (10000, or 1000).
        root: data root (default ``$VQGEN_DATA``, else the user cache directory).
        download: fetch and extract the official tarball (162 MB) when the full files are missing.
        subset: ``True`` for ``cifar10-subset/``, ``False`` for the full batches, ``None`` (default) for the full
            batches when present, else the subset when present, else (with ``download``) the downloaded full batches.

    The dataset's ``name`` (``"cifar10"`` or ``"cifar10-subset"``) and ``source`` say which files were used.

    Returns:
        The split as an [`ImageDataset`][vqgen.data.ImageDataset] with the 10 class names.

    Raises:
        ValueError: if ``split`` is unknown, or a file is corrupt.
        DatasetNotFoundError: if the files are missing (the message says where to put them).
        ChecksumError: if a downloaded file does not match its checksum.

    Examples:
        >>> from vqgen.data import load_cifar10
        >>> test = load_cifar10("test")                    # from $VQGEN_DATA; download=True fetches the full set
        >>> test.image_shape, test.class_names[:3]
        ((3, 32, 32), ('airplane', 'automobile', 'bird'))
    """
    full, part = DATASETS["cifar10"], DATASETS["cifar10-subset"]
    if split not in full.splits:
        raise ValueError(f"split must be one of {sorted(full.splits)} for cifar10, got {split!r}")
    base = data_root(root)
    full_dir, part_dir = base / full.folder, base / part.folder
    full_present = all((full_dir / f.name).is_file() for f in full.splits[split])
    part_present = all((part_dir / f.name).is_file() for f in part.splits[split])
    if subset is None:
        if not full_present and not part_present and not download:
            raise DatasetNotFoundError(
                f"CIFAR-10 {split} files not found under {base}. Either "
                + where_to_put("full CIFAR-10", full_dir, [f.name for f in full.files()])
                + ", or pass download=True (fetches the official 162 MB tarball); or "
                + where_to_put("CIFAR-10 subset", part_dir, [f.name for f in part.files()])
            )
        subset = part_present and not full_present
        if subset:
            logger.warning(
                "CIFAR-10: the full batches are not in %s; using the SUBSET in %s (%s)",
                full_dir / CIFAR10_BATCH_DIR,
                part_dir,
                part.title,
            )
    if subset:
        spec, directory = part, part_dir
        paths = ensure_files(
            part.title, part_dir, part.splits[split], download=download, all_names=[f.name for f in part.files()]
        )
    else:
        spec, directory = full, full_dir
        if not full_present:
            if not download:
                raise DatasetNotFoundError(
                    f"CIFAR-10 {split}: missing {', '.join(str(full_dir / f.name) for f in full.splits[split])}. "
                    + where_to_put("full CIFAR-10", full_dir, [f.name for f in full.files()])
                    + ", or pass download=True"
                )
            try:
                _download_full(full_dir)
            except DownloadError as error:
                raise DatasetNotFoundError(
                    f"CIFAR-10: download failed ({error}); are you offline? Download {CIFAR10_ARCHIVE.urls[0]} "
                    f"elsewhere and unpack it into {full_dir}{os.sep} (giving {CIFAR10_BATCH_DIR}{os.sep}), or "
                    + where_to_put("full CIFAR-10", full_dir, [f.name for f in full.files()])
                ) from error
        paths = ensure_files(full.title, full_dir, full.splits[split], download=False)
    images, labels = read_cifar_binary(paths)
    logger.info("loaded %s %s: %d images from %s", spec.title, split, len(labels), directory)
    return ImageDataset(
        torch.from_numpy(images),
        torch.from_numpy(labels),
        class_names=spec.class_names,
        name=spec.name,
        split=split,
        source=f"{spec.title}: " + ", ".join(str(p) for p in paths),
    )
