"""The offline default dataset: scikit-learn's bundled 8x8 handwritten digits, upscaled for conv VQ-VAEs.

1797 greyscale digits with values 0..16 (the UCI "Optical Recognition of Handwritten Digits" test set, shipped
inside scikit-learn, so no download is needed), scaled to uint8 0..255 and by default upscaled to 16x16 so a
conv encoder can downsample them by 4. The split is deterministic, stratified and needs no random generator: within
each class, every fifth image (in scikit-learn's order) is test (355 images in all), the rest train (1442).
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import ImageDataset
from .specs import DATASETS

__all__ = ["load_digits"]

logger = logging.getLogger(__name__)

_SIZES = (8, 16, 32)
_RESIZE = ("nearest", "bilinear")


@functools.lru_cache(maxsize=1)
def _raw_digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as sklearn_load_digits

    bunch = sklearn_load_digits()
    return bunch.images, bunch.target  # (1797, 8, 8) float 0..16, (1797,) int


def _rank_within_class(targets: np.ndarray) -> np.ndarray:
    """Position of each example among the examples of its class, in dataset order."""
    ranks = np.empty(len(targets), dtype=np.int64)
    for label in np.unique(targets):
        where = np.flatnonzero(targets == label)
        ranks[where] = np.arange(len(where))
    return ranks


def load_digits(
    split: str = "train", root: object = None, download: bool = False, size: int = 16, resize: str = "nearest"
) -> ImageDataset:
    """scikit-learn's handwritten digits as ``(N, 1, size, size)`` uint8 images, 10 classes; always offline.

    Args:
        split: ``"train"`` (1442 images) or ``"test"`` (355: every fifth image of each class).
        root: ignored (the data ships with scikit-learn); accepted so every named dataset loads alike.
        download: ignored, as ``root``.
        size: image side: 8 (original), 16 (default: a conv VQ-VAE downsampling by 4 gives 4x4 codes) or 32.
        resize: upscaling: ``"nearest"`` (each pixel becomes a block; keeps exactly the 17 grey levels) or
            ``"bilinear"`` (smooth edges).

    Returns:
        The split as an [`ImageDataset`][vqgen.data.ImageDataset].

    Raises:
        ValueError: if ``split``, ``size`` or ``resize`` is not one of its values.

    Examples:
        >>> from vqgen.data import load_digits
        >>> load_digits()
        ImageDataset('digits', split='train', n=1442, image_shape=(1, 16, 16), num_classes=10)
        >>> load_digits("test", size=8).images.shape
        torch.Size([355, 1, 8, 8])
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test' for digits, got {split!r}")
    if size not in _SIZES:
        raise ValueError(f"size must be one of {_SIZES} for digits, got {size!r}")
    if resize not in _RESIZE:
        raise ValueError(f"resize must be one of {_RESIZE}, got {resize!r}")
    images, targets = _raw_digits()
    keep = (_rank_within_class(targets) % 5 == 4) == (split == "test")
    x = torch.from_numpy(images[keep]).unsqueeze(1) * (255.0 / 16.0)  # (N, 1, 8, 8) float 0..255
    if size != 8:
        kwargs = {"align_corners": False} if resize == "bilinear" else {}
        x = F.interpolate(x, size=(size, size), mode=resize, **kwargs)  # (N, 1, size, size)
    x = x.round().clamp(0, 255).to(torch.uint8)
    spec = DATASETS["digits"]
    return ImageDataset(
        x,
        torch.from_numpy(targets[keep].astype(np.int64)),
        class_names=spec.class_names,
        name="digits",
        split=split,
        source=f"sklearn.datasets.load_digits, 8x8 upscaled to {size}x{size} ({resize})"
        if size != 8
        else "sklearn.datasets.load_digits, 8x8",
    )
