"""One labelled grid of images: conversion to uint8, tiling, default scaling and the PNG file (see
[`vqgen.images`][vqgen.images], which re-exports the public names).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor

from . import checks
from .captions import label_grid

__all__ = ["MAX_SCALE", "MIN_WIDTH", "auto_scale", "make_grid", "save_grid", "save_png", "to_uint8"]


MIN_WIDTH = 400
"""Default scaling enlarges a grid (by a whole factor, at most ``MAX_SCALE``) to at least this many pixels wide."""

MAX_SCALE = 8
"""The largest factor default scaling enlarges a grid by."""


def to_uint8(images: Tensor) -> Tensor:
    """Float images in ``[0, 1]`` → uint8 in ``[0, 255]`` (clamped and rounded); uint8 images pass through.

    Args:
        images: ``(..., C, H, W)`` float or uint8.

    Returns:
        A uint8 tensor of the same shape, on the same device.

    Raises:
        TypeError: if ``images`` is not a tensor of uint8 or floats.
        ValueError: if it holds NaN or inf.

    Examples:
        >>> import torch
        >>> from vqgen.images import to_uint8
        >>> to_uint8(torch.tensor([-0.5, 0.0, 0.5, 1.0, 1.5]))          # decoder outputs: clamped, then rounded
        tensor([  0,   0, 128, 255, 255], dtype=torch.uint8)
    """
    checks.check_tensor(images, name="images")
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 in [0, 255] or float in [0, 1], got {images.dtype}")
    checks.check_finite(images, name="images")
    return (images.detach().clamp(0, 1) * 255).round().to(torch.uint8)


def make_grid(images: Tensor, *, ncols: int = 8, padding: int = 2, pad_value: int = 255) -> np.ndarray:
    """Tile images ``(N, C, H, W)`` into one uint8 array, ``ncols`` per row, row-major.

    The result has ``rows = ceil(N / ncols)`` rows of tiles and the size
    ``(rows * (H + padding) + padding, ncols * (W + padding) + padding)``; empty cells are ``pad_value``.

    Args:
        images: ``(N, C, H, W)`` uint8, or float in ``[0, 1]`` (clamped); ``C`` is 1 or 3.
        ncols: tiles per row (fewer when ``N < ncols``).
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding and of empty cells.

    Returns:
        ``(height, width)`` uint8 for grey images (``C = 1``), ``(height, width, 3)`` for colour (``C = 3``).

    Raises:
        TypeError: if ``images`` is not a tensor, or ``ncols`` not an int.
        ValueError: if ``images`` is not 4-D with 1 or 3 channels or is empty, or a size is out of range.

    Examples:
        >>> import torch
        >>> from vqgen.images import make_grid
        >>> make_grid(torch.zeros(10, 1, 28, 28), ncols=8).shape          # 2 rows: (2 * 30 + 2, 8 * 30 + 2)
        (62, 242)
        >>> make_grid(torch.zeros(4, 3, 32, 32, dtype=torch.uint8), ncols=4, padding=0).shape
        (32, 128, 3)
    """
    images = checks.check_tensor(images, name="images", ndim=4)
    n, channels, height, width = images.shape
    if channels not in (1, 3):
        raise ValueError(f"images must have 1 (grey) or 3 (colour) channels, got shape {tuple(images.shape)}")
    if n == 0:
        raise ValueError("images is empty: nothing to draw")
    checks.check_positive(ncols, name="ncols", integer=True)
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if not 0 <= pad_value <= 255:
        raise ValueError(f"pad_value must lie in [0, 255], got {pad_value}")
    ncols = min(ncols, n)
    rows = math.ceil(n / ncols)
    tiles = to_uint8(images).cpu().numpy()
    canvas = np.full(
        (rows * (height + padding) + padding, ncols * (width + padding) + padding, channels), pad_value, np.uint8
    )
    for index, tile in enumerate(tiles):
        row, col = divmod(index, ncols)
        top, left = padding + row * (height + padding), padding + col * (width + padding)
        canvas[top : top + height, left : left + width] = rearrange(tile, "c h w -> h w c")
    return canvas[..., 0] if channels == 1 else canvas


def auto_scale(width: int, *, min_width: int = MIN_WIDTH) -> int:
    """The smallest whole factor (1 to ``MAX_SCALE``) that enlarges ``width`` pixels to at least ``min_width``.

    Eight 28x28 tiles (242 pixels with padding) get 2, eight 8x8 tiles get 5, anything ``>= min_width`` gets 1.

    Args:
        width: the grid's width in pixels.
        min_width: the width to reach.

    Returns:
        The factor, in ``[1, MAX_SCALE]``.

    Raises:
        TypeError: if ``width`` is not an int.
        ValueError: if it is not positive.

    Examples:
        >>> from vqgen.images import auto_scale
        >>> auto_scale(242), auto_scale(82), auto_scale(500), auto_scale(10)
        (2, 5, 1, 8)
    """
    checks.check_positive(width, name="width", integer=True)
    return max(1, min(MAX_SCALE, math.ceil(min_width / width)))


def save_png(path: str | Path, array: np.ndarray) -> Path:
    """Write a uint8 array ``(height, width)`` or ``(height, width, 3)`` as a PNG (parent folders created).

    Args:
        path: the file to write.
        array: uint8 pixels, grey or RGB.

    Returns:
        ``path``, as a ``Path``.

    Examples:
        >>> import numpy as np
        >>> from PIL import Image
        >>> from vqgen.images import save_png
        >>> path = save_png("figures/black.png", np.zeros((8, 16), dtype=np.uint8))
        >>> Image.open(path).size
        (16, 8)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", optimize=True)
    return path


def _grid_and_labels(
    images: Tensor,
    *,
    ncols: int,
    padding: int,
    pad_value: int,
    scale: int | None,
    title: str | None,
    row_labels: Sequence[str] | None,
    captions: Sequence[str] | None,
) -> np.ndarray:
    grid = make_grid(images, ncols=ncols, padding=padding, pad_value=pad_value)
    if scale is None:
        scale = auto_scale(grid.shape[1])
    return label_grid(
        grid,
        tile_shape=tuple(images.shape[2:]),
        padding=padding,
        scale=scale,
        title=title,
        row_labels=row_labels,
        captions=captions,
        ncols=min(ncols, images.shape[0]),
        pad_value=pad_value,
    )


def save_grid(
    path: str | Path,
    images: Tensor,
    *,
    ncols: int = 8,
    padding: int = 2,
    pad_value: int = 255,
    scale: int | None = None,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    captions: Sequence[str] | None = None,
) -> Path:
    """Save images ``(N, C, H, W)`` as one labelled PNG grid (see [`make_grid`][make_grid]); returns the path.

    Args:
        path: the PNG file to write (parent folders are created).
        images: ``(N, C, H, W)`` uint8, or float in ``[0, 1]`` (clamped).
        ncols: images per row.
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding and the label strips.
        scale: enlarge each pixel to ``scale x scale`` (nearest neighbour); ``None`` picks the smallest factor that
            makes the grid at least ``MIN_WIDTH`` pixels wide (see ``auto_scale``).
        title: a line above the grid, e.g. ``"prior samples"``.
        row_labels: one label per row of tiles, left of the row.
        captions: one caption per image, under its tile (e.g. the class each sample was drawn for).

    Returns:
        ``path``, as a ``Path``.

    Raises:
        TypeError: if ``images`` is not a tensor of uint8 or floats.
        ValueError: if the images or labels do not fit (see [`make_grid`][make_grid],
            [`label_grid`][vqgen.captions.label_grid]).

    Examples:
        >>> import torch
        >>> from PIL import Image
        >>> from vqgen.images import save_grid
        >>> samples, labels = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
        >>> path = save_grid("samples.png", samples, title="prior samples", captions=[str(int(c)) for c in labels])
        >>> Image.open(path).mode, Image.open(path).width                  # scaled 2x: 2 * 242 pixels wide
        ('L', 484)
    """
    grid = _grid_and_labels(
        images, ncols=ncols, padding=padding, pad_value=pad_value, scale=scale, title=title, row_labels=row_labels,
        captions=captions,
    )  # fmt: skip
    return save_png(path, grid)
