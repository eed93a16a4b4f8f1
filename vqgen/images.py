"""Image grids as PNG files (Pillow), e.g. originals above their reconstructions.

Images are ``(N, C, H, W)`` tensors with ``C`` = 1 (grey) or 3 (colour), either uint8 in ``[0, 255]`` or float in
``[0, 1]`` (values outside are clamped, so raw decoder outputs can be passed directly)::

    from vqgen.images import save_reconstructions
    save_reconstructions("reconstructions.png", originals, model.reconstruct(originals), ncols=8)
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

__all__ = ["make_grid", "save_grid", "save_reconstructions", "to_uint8"]


def to_uint8(images: Tensor) -> Tensor:
    """Float images in ``[0, 1]`` → uint8 in ``[0, 255]`` (clamped and rounded); uint8 images pass through.

    Args:
        images: ``(..., C, H, W)`` float or uint8.

    Returns:
        A uint8 tensor of the same shape, on the same device.
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

    Returns:
        ``(height, width)`` uint8 for grey images (``C = 1``), ``(height, width, 3)`` for colour (``C = 3``).
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


def save_grid(
    path: str | Path, images: Tensor, *, ncols: int = 8, padding: int = 2, pad_value: int = 255, scale: int = 1
) -> Path:
    """Save images ``(N, C, H, W)`` as one PNG grid (see :func:`make_grid`); returns the path.

    Args:
        path: the PNG file to write (parent folders are created).
        images: ``(N, C, H, W)`` uint8, or float in ``[0, 1]`` (clamped).
        ncols: images per row.
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding.
        scale: enlarge each pixel to ``scale x scale`` (nearest neighbour), handy for 8x8 or 28x28 images.
    """
    grid = make_grid(images, ncols=ncols, padding=padding, pad_value=pad_value)
    checks.check_positive(scale, name="scale", integer=True)
    if scale > 1:
        grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(grid).save(path, format="PNG")
    return path


def save_reconstructions(
    path: str | Path,
    originals: Tensor,
    reconstructions: Tensor | Sequence[Tensor],
    *,
    ncols: int = 8,
    padding: int = 2,
    pad_value: int = 255,
    scale: int = 1,
) -> Path:
    """Save a PNG with each row of originals directly above the same images' reconstructions.

    With ``N`` images and ``ncols`` columns the grid has ``2 * ceil(N / ncols)`` rows of tiles: originals
    ``0..ncols-1``, their reconstructions, originals ``ncols..2*ncols-1``, and so on. Pass several reconstruction
    tensors (a list) to stack more rows under each row of originals (e.g. two models compared).

    Args:
        path: the PNG file to write.
        originals: ``(N, C, H, W)`` uint8 or float in ``[0, 1]``.
        reconstructions: ``(N, C, H, W)`` uint8 or float (clamped to ``[0, 1]``), or a list of such tensors.
        ncols: images per row.
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding and of blank tiles.
        scale: enlarge each pixel to ``scale x scale``.
    """
    originals = checks.check_tensor(originals, name="originals", ndim=4)
    others = [reconstructions] if isinstance(reconstructions, Tensor) else list(reconstructions)
    for i, other in enumerate(others):
        checks.check_tensor(other, name=f"reconstructions[{i}]", ndim=4)
        if other.shape != originals.shape:
            raise ValueError(
                f"reconstructions must have the shape of originals {tuple(originals.shape)}, got {tuple(other.shape)}"
            )
    checks.check_positive(ncols, name="ncols", integer=True)
    ncols = min(ncols, originals.shape[0])
    rows = []
    for start in range(0, originals.shape[0], ncols):
        for block in [originals, *others]:
            chunk = to_uint8(block[start : start + ncols]).cpu()
            if chunk.shape[0] < ncols:  # pad the last row with blank tiles so rows stay aligned
                blank = torch.full((ncols - chunk.shape[0], *chunk.shape[1:]), pad_value, dtype=torch.uint8)
                chunk = torch.cat([chunk, blank])
            rows.append(chunk)
    return save_grid(path, torch.cat(rows), ncols=ncols, padding=padding, pad_value=pad_value, scale=scale)
