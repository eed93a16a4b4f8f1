"""MNIST and Fashion-MNIST: the IDX file format (gzip), parsed with header validation.

An IDX file is a big-endian header: two zero bytes, a type byte (``0x08`` = uint8) and the number of dimensions
(so the magic number is ``0x00000803`` for ``(N, 28, 28)`` images and ``0x00000801`` for ``(N,)`` labels), then one
uint32 per dimension, then the data in row-major order.
"""

from __future__ import annotations

import gzip
import logging
import os
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from .dataset import ImageDataset
from .download import ensure_files
from .specs import DATASETS, data_root

__all__ = ["load_fashion_mnist", "load_mnist", "read_idx"]

logger = logging.getLogger(__name__)

_UINT8 = 0x08


def read_idx(path: str | os.PathLike[str], *, ndim: int | None = None) -> np.ndarray:
    """Parse a (gzipped or plain) IDX file of uint8 data.

    Args:
        path: the ``.gz`` or uncompressed file.
        ndim: the expected number of dimensions (3 for images, 1 for labels), checked against the magic number.

    Returns:
        A writable uint8 array of the shape the header gives.

    Raises:
        ValueError: naming the file, for a corrupt gzip stream, a wrong magic number or a size mismatch between
            header and data.

    Examples:
        >>> import gzip, struct
        >>> from vqgen.data import read_idx
        >>> header = struct.pack(">HBB3I", 0, 0x08, 3, 2, 28, 28)           # uint8, 3 dimensions: 2 x 28 x 28
        >>> with gzip.open("images-idx3-ubyte.gz", "wb") as file:
        ...     _ = file.write(header + bytes(2 * 28 * 28))
        >>> read_idx("images-idx3-ubyte.gz", ndim=3).shape
        (2, 28, 28)
        >>> read_idx("images-idx3-ubyte.gz", ndim=1)
        Traceback (most recent call last):
        ValueError: images-idx3-ubyte.gz: bad IDX magic number 0x00000803, expected 0x00000801
    """
    path = Path(path)
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError, zlib.error) as error:  # BadGzipFile is an OSError; a truncated stream is an EOFError
        raise ValueError(f"{path} is not a readable gzip file ({error}); it may be truncated or corrupt") from error
    if len(data) < 4:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header (expected at least 4)")
    zero, dtype, dims = struct.unpack(">HBB", data[:4])
    magic = (dtype << 8) | dims
    if zero != 0 or dtype != _UINT8 or (ndim is not None and dims != ndim):
        want = f"0x{(_UINT8 << 8) | ndim:08x}" if ndim is not None else "0x000008NN (uint8)"
        raise ValueError(f"{path}: bad IDX magic number 0x{(zero << 16) | magic:08x}, expected {want}")
    header = 4 + 4 * dims
    if len(data) < header:
        raise ValueError(f"{path}: {len(data)} bytes is too short for an IDX header of {dims} dimensions")
    shape = struct.unpack(f">{dims}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        raise ValueError(
            f"{path}: the IDX header gives shape {shape}, i.e. {expected} bytes, but the data has {len(data)} bytes "
            "(truncated or corrupt)"
        )
    return np.frombuffer(bytearray(data), dtype=np.uint8, offset=header).reshape(shape)


def _load_idx_dataset(name: str, split: str, root, download: bool) -> ImageDataset:
    spec = DATASETS[name]
    if split not in spec.splits:
        raise ValueError(f"split must be one of {sorted(spec.splits)} for {name}, got {split!r}")
    directory = data_root(root) / spec.folder
    image_path, label_path = ensure_files(
        spec.title, directory, spec.splits[split], download=download, all_names=[f.name for f in spec.files()]
    )
    images = read_idx(image_path, ndim=3)
    labels = read_idx(label_path, ndim=1)
    if images.shape[0] != labels.shape[0]:
        raise ValueError(f"{image_path} holds {images.shape[0]} images but {label_path} {labels.shape[0]} labels")
    if labels.size and labels.max() >= len(spec.class_names):
        raise ValueError(f"{label_path}: labels must lie in [0, {len(spec.class_names)}), got max {labels.max()}")
    logger.info("loaded %s %s: %d images from %s", spec.title, split, images.shape[0], directory)
    return ImageDataset(
        torch.from_numpy(images).unsqueeze(1),  # (N, 1, 28, 28)
        torch.from_numpy(labels.astype(np.int64)),
        class_names=spec.class_names,
        name=name,
        split=split,
        source=f"{image_path}, {label_path}",
    )


def load_mnist(
    split: str = "train", root: str | os.PathLike[str] | None = None, download: bool = False
) -> ImageDataset:
    """MNIST: 60000 train / 10000 test greyscale digits, ``(N, 1, 28, 28)`` uint8, 10 classes.

    Files (in ``<root>/mnist/``): ``train-images-idx3-ubyte.gz``, ``train-labels-idx1-ubyte.gz``,
    ``t10k-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, each verified by SHA-256.

    Args:
        split: ``"train"`` or ``"test"``.
        root: data root (default ``$VQGEN_DATA``, else the user cache directory).
        download: fetch missing files from the official mirrors.

    Returns:
        The split as an [`ImageDataset`][vqgen.data.ImageDataset] with the class names ``"0"`` to ``"9"``.

    Raises:
        ValueError: if ``split`` is unknown, or a file is corrupt.
        DatasetNotFoundError: if the files are missing (the message says where to put them).
        ChecksumError: if a file does not match its SHA-256.

    Examples:
        >>> from vqgen.data import load_mnist
        >>> load_mnist("test")                             # from $VQGEN_DATA; download=True fetches missing files
        ImageDataset('mnist', split='test', n=10000, image_shape=(1, 28, 28), num_classes=10)
    """
    return _load_idx_dataset("mnist", split, root, download)


def load_fashion_mnist(
    split: str = "train", root: str | os.PathLike[str] | None = None, download: bool = False
) -> ImageDataset:
    """Fashion-MNIST (arXiv:1708.07747): 60000 / 10000 ``(N, 1, 28, 28)`` uint8 clothing images, 10 classes.

    Files (in ``<root>/fashion-mnist/``) have the same names as MNIST's, each verified by SHA-256.

    Args:
        split: ``"train"`` or ``"test"``.
        root: data root (default ``$VQGEN_DATA``, else the user cache directory).
        download: fetch missing files from the official Zalando mirror.

    Returns:
        The split as an [`ImageDataset`][vqgen.data.ImageDataset] with the 10 class names.

    Raises:
        ValueError: if ``split`` is unknown, or a file is corrupt.
        DatasetNotFoundError: if the files are missing (the message says where to put them).
        ChecksumError: if a file does not match its SHA-256.

    Examples:
        >>> from vqgen.data import load_fashion_mnist
        >>> test = load_fashion_mnist("test")              # from $VQGEN_DATA; download=True fetches missing files
        >>> len(test), test.class_names[:3]
        (10000, ('T-shirt/top', 'Trouser', 'Pullover'))
    """
    return _load_idx_dataset("fashion-mnist", split, root, download)
