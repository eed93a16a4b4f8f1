"""Datasets from NumPy arrays: in memory, or ``.npy`` / ``.npz`` files loaded with ``allow_pickle=False``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange

from .dataset import ImageDataset

__all__ = ["from_arrays", "load_numpy"]

_NPZ_KEYS = {  # split → (images key, labels key), tried in order
    None: [("images", "labels"), ("x", "y")],
    "train": [("train_images", "train_labels"), ("x_train", "y_train")],
    "test": [("test_images", "test_labels"), ("x_test", "y_test")],
}


def _to_numpy(x: object, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    if isinstance(x, np.ndarray):
        return x
    raise TypeError(f"{name} must be a numpy array or torch tensor, got {type(x).__name__}")


def from_arrays(
    images: object,
    labels: object | None = None,
    *,
    class_names: Sequence[str] | None = None,
    channels_last: bool | None = None,
    name: str = "arrays",
    split: str | None = None,
    source: str = "in-memory arrays",
) -> ImageDataset:
    """Wrap uint8 images (and integer labels) as an [`ImageDataset`][ImageDataset].

    Args:
        images: uint8 array or tensor, ``(N, H, W)`` (greyscale), ``(N, C, H, W)`` or ``(N, H, W, C)`` with
            ``C`` 1 or 3. Floats are refused: convert with ``(x * 255).round().astype(np.uint8)``.
        labels: ``(N,)`` non-negative integers; default all zeros (one class).
        class_names: label ``i`` → name.
        channels_last: ``True`` for ``(N, H, W, C)``, ``False`` for ``(N, C, H, W)``; ``None`` guesses from which axis
            has 1 or 3 entries (channels-first wins a tie).
        name: dataset name for messages.
        split: split name, if any.
        source: description of where the arrays came from.

    Returns:
        The dataset (sharing memory with ``images`` where possible).

    Raises:
        TypeError: if ``images`` is not uint8, ``labels`` not integers, or either not an array or tensor.
        ValueError: if the shapes are not those above, or a label is negative.

    Examples:
        >>> import numpy as np
        >>> from vqgen.data import from_arrays
        >>> images = np.zeros((10, 32, 32, 3), dtype=np.uint8)                 # channels last, as from PIL
        >>> data = from_arrays(images, np.arange(10) % 2, class_names=["cat", "dog"])
        >>> data.image_shape, data.num_classes, data[1][1]
        ((3, 32, 32), 2, 1)
        >>> from_arrays(np.zeros((10, 28, 28), dtype=np.float32))
        Traceback (most recent call last):
        TypeError: images must be uint8 (0..255), got dtype float32; convert floats in [0, 1] with ...
    """
    x = _to_numpy(images, "images")
    if x.dtype != np.uint8:
        raise TypeError(
            f"images must be uint8 (0..255), got dtype {x.dtype}; convert floats in [0, 1] with "
            "(x * 255).round().astype(np.uint8) and other integers with x.astype(np.uint8) after checking the range"
        )
    if x.ndim == 3:
        x = x[:, None]  # (N, 1, H, W)
    elif x.ndim == 4:
        if channels_last is None:
            if x.shape[1] in (1, 3):
                channels_last = False
            elif x.shape[3] in (1, 3):
                channels_last = True
            else:
                raise ValueError(
                    f"images of shape {x.shape} have no channel axis of size 1 or 3 (axis 1 or 3); "
                    "expected (N, C, H, W) or (N, H, W, C)"
                )
        if channels_last:
            x = rearrange(x, "n h w c -> n c h w")
    else:
        raise ValueError(f"images must have shape (N, H, W), (N, C, H, W) or (N, H, W, C), got {x.shape}")
    if x.shape[1] not in (1, 3) or min(x.shape) == 0:
        raise ValueError(f"images must be non-empty with 1 or 3 channels, got (N, C, H, W) = {x.shape}")
    if labels is None:
        y = np.zeros(x.shape[0], dtype=np.int64)
    else:
        y = _to_numpy(labels, "labels")
        if not np.issubdtype(y.dtype, np.integer):
            raise TypeError(f"labels must be integers, got dtype {y.dtype}")
        if y.shape != (x.shape[0],):
            raise ValueError(f"labels must have shape ({x.shape[0]},) to match images, got {y.shape}")
        if y.size and y.min() < 0:
            raise ValueError(f"labels must be >= 0, got minimum {y.min()}")
    return ImageDataset(
        torch.from_numpy(np.ascontiguousarray(x)),
        torch.from_numpy(y.astype(np.int64)),
        class_names=class_names,
        name=name,
        split=split,
        source=source,
    )


def load_numpy(path: str | os.PathLike[str], split: str | None = "train", **options: Any) -> ImageDataset:
    """Load images (and labels) from a ``.npy`` or ``.npz`` file, never unpickling (``allow_pickle=False``).

    A ``.npy`` holds only images (every label 0) and has no splits. A ``.npz`` holds ``images`` and ``labels``
    (or ``x``, ``y``) for a file without splits, or ``train_images`` / ``test_images`` and ``train_labels`` /
    ``test_labels`` (or ``x_train``, ``y_train``, ``x_test``, ``y_test``) per split; an optional ``class_names``
    string array names the classes.

    Args:
        path: the file.
        split: ``"train"``, ``"test"`` or ``None``. A file without splits is returned whole for ``"train"`` or
            ``None``; asking it for ``"test"`` is an error (there is no held-out data).
        **options: passed to [`from_arrays`][from_arrays] (``channels_last``, ``class_names``).

    Returns:
        The split as an [`ImageDataset`][vqgen.data.ImageDataset].

    Raises:
        FileNotFoundError: if ``path`` is not a file.
        ValueError: if the file needs pickle, has no images for ``split``, or ``"test"`` is asked of a file without
            splits.
        TypeError: if its arrays are not uint8 images and integer labels.

    Examples:
        >>> import numpy as np
        >>> from vqgen.data import load_numpy
        >>> images = np.random.default_rng(0).integers(0, 256, (20, 1, 8, 8), dtype=np.uint8)
        >>> np.savez("data.npz", x_train=images[:15], y_train=np.arange(15) % 3, x_test=images[15:],
        ...          y_test=np.arange(5) % 3)
        >>> load_numpy("data.npz", split="test")
        ImageDataset('data.npz', split='test', n=5, image_shape=(1, 8, 8), num_classes=3)
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    source = str(path)
    try:
        loaded = np.load(path, allow_pickle=False)
    except ValueError as error:  # object arrays need pickle, which we refuse
        raise ValueError(f"cannot load {path} without pickle ({error}); save plain uint8/int arrays") from error
    if isinstance(loaded, np.ndarray):
        if split == "test":
            raise ValueError(f"{path} is a single .npy array with no test split; pass split='train' or None")
        return from_arrays(loaded, None, name=str(path), split=split, source=source, **options)
    with loaded:
        keys = set(loaded.files)
        if "class_names" in keys and "class_names" not in options:
            options["class_names"] = [str(c) for c in loaded["class_names"]]
        candidates = _NPZ_KEYS.get(split, []) + (_NPZ_KEYS[None] if split == "train" else [])
        for image_key, label_key in candidates:
            if image_key in keys:
                labels = loaded[label_key] if label_key in keys else None
                return from_arrays(
                    loaded[image_key], labels, name=str(path), split=split, source=f"{source}[{image_key}]", **options
                )
    valid = sorted({k for pairs in _NPZ_KEYS.values() for pair in pairs for k in pair})
    raise ValueError(
        f"{path} has no images for split={split!r}: it holds keys {sorted(keys)}; expected some of {valid}"
    )
