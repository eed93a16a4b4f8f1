"""The one door: [`load_dataset`][load_dataset] by name or path."""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .arrays import load_numpy
from .cifar import load_cifar10
from .dataset import ImageDataset
from .digits import load_digits
from .folder import load_image_folder
from .idx import load_fashion_mnist, load_mnist
from .streaming import ImageFolderDataset

__all__ = ["available_datasets", "load_dataset"]


def _cifar10_subset(split: str = "train", root=None, download: bool = False) -> ImageDataset:
    return load_cifar10(split, root, download, subset=True)


_LOADERS: dict[str, Callable[..., ImageDataset]] = {
    "digits": load_digits,
    "mnist": load_mnist,
    "fashion-mnist": load_fashion_mnist,
    "cifar10": load_cifar10,
    "cifar10-subset": _cifar10_subset,
}
_SPLITS = ("train", "test")


def available_datasets() -> list[str]:
    """Names [`load_dataset`][load_dataset] accepts (besides folder and ``.npy`` / ``.npz`` paths).

    Returns:
        A new list of the names.

    Examples:
        >>> from vqgen.data import available_datasets
        >>> available_datasets()
        ['digits', 'mnist', 'fashion-mnist', 'cifar10', 'cifar10-subset']
    """
    return list(_LOADERS)


def _check_options(loader: Callable[..., ImageDataset], options: dict, what: str) -> None:
    valid = [p for p in inspect.signature(loader).parameters if p not in ("split", "root", "download", "path")]
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(f"unknown option(s) {unknown} for {what}; valid options: {valid or 'none'}")


def load_dataset(
    name_or_path: str | os.PathLike[str],
    split: str | None = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    *,
    stream: bool = False,
    **options: Any,
) -> ImageDataset | ImageFolderDataset:
    """Load a dataset by name, or from a folder of images or a ``.npy`` / ``.npz`` file.

    Names (see [`available_datasets`][available_datasets]): ``"digits"`` (offline default, 16x16), ``"mnist"``,
    ``"fashion-mnist"``, ``"cifar10"`` (full batches if present, else the subset), ``"cifar10-subset"``.
    A name wins over a folder of the same name in the working directory: write ``"./mnist"`` for the folder.

    Args:
        name_or_path: a dataset name, a folder (one sub-folder per class), or a ``.npy`` / ``.npz`` file.
        split: ``"train"`` or ``"test"``; ``None`` only for a path without splits (the whole source).
        root: data root for named datasets (default ``$VQGEN_DATA``, else the user cache directory); each dataset
            lives in its sub-folder (``<root>/mnist/``, ...).
        download: fetch missing files of a named dataset (verified by checksum).
        stream: for a folder, return an [`ImageFolderDataset`][ImageFolderDataset] that decodes each image when asked
            for (options ``size``, ``mode``, ``hflip``, ``skip_invalid``) instead of loading them all.
        **options: options of the specific loader: ``size``, ``resize`` (digits); ``subset`` (cifar10);
            ``mode``, ``size``, ``skip_invalid`` (folders); ``channels_last``, ``class_names`` (numpy files).

    Returns:
        An [`ImageDataset`][ImageDataset]: items ``(uint8 (C, H, W), int label)``, plus ``.images``, ``.labels``,
        ``.num_classes``, ``.image_shape``, ``.class_names``; with ``stream=True`` an
        [`ImageFolderDataset`][ImageFolderDataset] with the same items and attributes except ``.images``.

    Raises:
        ValueError: an unknown name that is not an existing path (the message lists the valid names), or a bad split.
        TypeError: an option the loader does not take, or ``name_or_path`` neither a name nor a path.
        DatasetNotFoundError: the files of a named dataset are missing (the message says where to put them).
        ChecksumError: a file is corrupt.

    Examples:
        >>> from vqgen.data import load_dataset
        >>> train = load_dataset("digits")                        # offline: ships with scikit-learn
        >>> image, label = train[0]                               # uint8 (C, H, W), int
        >>> image.shape, label, train.num_classes
        (torch.Size([1, 16, 16]), 0, 10)
        >>> load_dataset("mnist", split="test").image_shape       # from $VQGEN_DATA (download=True fetches it)
        (1, 28, 28)
        >>> load_dataset("digits", colour=True)
        Traceback (most recent call last):
        TypeError: unknown option(s) ['colour'] for digits; valid options: ['size', 'resize']
    """
    if stream:
        path = Path(name_or_path).expanduser() if isinstance(name_or_path, (str, os.PathLike)) else None
        if path is None or not path.is_dir():
            raise ValueError(
                f"stream=True reads a folder of images, got {name_or_path!r}, which is not a folder; named datasets "
                "and .npy/.npz files are loaded in memory (drop stream=True)"
            )
        if split not in (*_SPLITS, None):
            raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
        _check_options(ImageFolderDataset, options, f"streamed image folder {path}")
        return ImageFolderDataset(path, split, **options)
    if isinstance(name_or_path, str) and name_or_path.lower() in _LOADERS:
        name = name_or_path.lower()
        if split not in _SPLITS:
            raise ValueError(f"split must be one of {_SPLITS} for {name}, got {split!r}")
        loader = _LOADERS[name]
        _check_options(loader, options, name)
        return loader(split, root, download, **options)
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a dataset name or a path, got {type(name_or_path).__name__}")
    if split not in (*_SPLITS, None):
        raise ValueError(f"split must be 'train', 'test' or None, got {split!r}")
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if "hflip" in options:
            raise TypeError("hflip (random horizontal flips) is an option of streamed folders: pass stream=True")
        _check_options(load_image_folder, options, f"image folder {path}")
        return load_image_folder(path, split, **options)
    if path.suffix in (".npy", ".npz") and path.is_file():
        unknown = sorted(set(options) - {"channels_last", "class_names"})
        if unknown:
            raise TypeError(
                f"unknown option(s) {unknown} for numpy file {path}; valid options: channels_last, class_names"
            )
        return load_numpy(path, split, **options)
    raise ValueError(
        f"unknown dataset {str(name_or_path)!r}: not one of {available_datasets()} and not an existing folder or "
        ".npy/.npz file"
    )
