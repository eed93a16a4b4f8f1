"""What the fits accept as data, and the checks and conversions every batch of images goes through.

- [`InMemoryData`][InMemoryData], [`TrainData`][TrainData]: the types of data arguments;
- ``as_images``, ``check_unit_range``, ``images_to_float`` (internal): images in memory, checked once, and each batch
  as float32 in ``[0, 1]``;
- ``batch_indices`` (internal): the batches of a pass over in-memory data (evaluation).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeAlias

import torch
from torch import Tensor

from .. import checks

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset

    from ..data import ImageDataset

__all__ = [
    "InMemoryData",
    "TrainData",
    "as_images",
    "batch_indices",
    "check_unit_range",
    "image_shape",
    "images_to_float",
]

InMemoryData: TypeAlias = "ImageDataset | Tensor"
"""Data held in memory: a [`vqgen.data`][vqgen.data] dataset (its ``.images`` and ``.labels``) or a tensor
``(N, C, H, W)``: uint8 images (or float in ``[0, 1]``), or integer code grids for a prior."""


TrainData: TypeAlias = "ImageDataset | Tensor | Dataset | DataLoader"
"""What the fits train on: [`InMemoryData`][vqgen.training.inputs.InMemoryData], or any ``torch.utils.data``
``Dataset`` (e.g. a lazily decoded [`ImageFolderDataset`][vqgen.data.ImageFolderDataset]), ``IterableDataset`` or
``DataLoader``, streamed batch by batch (items: images, or ``(images, labels)``)."""


def as_images(data: Any, *, name: str = "data") -> Tensor:
    """Images ``(N, C, H, W)`` from a [`vqgen.data`][vqgen.data] dataset (its ``.images``) or a tensor.

    uint8 images (``[0, 255]``) and float images (``[0, 1]``, checked here once, see
    [`check_unit_range`][check_unit_range]) are accepted; they are returned unchanged (not copied, not moved), and
    converted per batch by [`images_to_float`][images_to_float].
    """
    images = getattr(data, "images", data)
    if not isinstance(images, Tensor):
        raise TypeError(
            f"{name} must be a vqgen.data dataset (with .images) or a (N, C, H, W) tensor, got {type(data).__name__}"
        )
    checks.check_tensor(images, name=name, ndim=4)
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(f"{name} must hold uint8 images in [0, 255] or float images in [0, 1], got {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has shape {tuple(images.shape)}")
    return check_unit_range(images, name=name)


def check_unit_range(images: Tensor, *, name: str = "images") -> Tensor:
    """``images`` unchanged; float images must lie in ``[0, 1]`` (uint8 ones are not looked at).

    One ``aminmax`` over the tensor, where it lies: float pixels in ``[0, 255]`` (or ``[-1, 1]``) would otherwise
    train without a word, on a reconstruction error hundreds of times too large.
    """
    if not images.is_floating_point() or images.numel() == 0:
        return images
    low, high = (float(v) for v in torch.aminmax(images.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        checks.check_finite(images, name=name)  # says how many NaN or inf there are
    if high > 1:
        fix = "divide by 255" if high > 2 else "clamp them with x.clamp(0, 1)"
        raise ValueError(
            f"{name}: float images must be in [0, 1], got values up to {_value(high)}: {fix}, or pass uint8"
        )
    if low < 0:
        fix = "map them to [0, 1] ((x + 1) / 2 for [-1, 1])" if low < -0.5 else "clamp them with x.clamp(0, 1)"
        raise ValueError(
            f"{name}: float images must be in [0, 1], got values down to {_value(low)}: {fix}, or pass uint8"
        )
    return images


def _value(x: float) -> str:
    """A pixel value for an error message: ``255.0``, ``-1.0``, ``1.00049``."""
    return f"{x:.1f}" if abs(x) >= 2 or x == round(x) else f"{x:.6g}"


def images_to_float(
    batch: Tensor, device: torch.device | str | None = None, *, check: bool = True, name: str = "images"
) -> Tensor:
    """A batch ``(B, C, H, W)`` (uint8 or float) → float32 in ``[0, 1]`` on ``device``.

    Args:
        check: raise unless float batches lie in ``[0, 1]`` ([`check_unit_range`][check_unit_range], on the batch
            where it comes from, before it moves); ``False`` for batches of data already checked whole.
        name: the data's name in that error.
    """
    if check:
        check_unit_range(batch, name=name)
    batch = batch.to(device, non_blocking=True) if device is not None else batch
    return batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()


def batch_indices(
    n: int, batch_size: int, *, shuffle: bool = True, generator: torch.Generator | None = None
) -> Iterator[Tensor]:
    """Index tensors for one pass over ``n`` examples, ``batch_size`` at a time (the last batch may be smaller)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def image_shape(data: Any) -> tuple[int, int, int]:
    """``(C, H, W)`` of the images of in-memory or streamed training data."""
    from .batches import is_stream  # the batches import this module

    if not is_stream(data):
        return tuple(as_images(data, name="train_data").shape[1:])
    shape = getattr(data, "image_shape", None)
    if shape is None:
        first = next(iter(data))
        shape = (first[0] if isinstance(first, (tuple, list)) else first).shape[-3:]
    return tuple(int(s) for s in shape)
