"""Labelled image grids as PNG files (Pillow), e.g. originals above their reconstructions.

Images are ``(N, C, H, W)`` tensors with ``C`` = 1 (grey) or 3 (colour), either uint8 in ``[0, 255]`` or float in
``[0, 1]`` (values outside are clamped, so raw decoder outputs can be passed directly)::

    from vqgen.images import save_panels, save_reconstructions
    save_reconstructions("reconstructions.png", originals, model.reconstruct(originals), ncols=8)
    save_panels("samples.png", {"prior samples": a, "uniform codes": b})

Every PNG written here says what it shows: a title strip above the grid, a label left of each row, a caption under
each tile, whichever are given (Pillow's default font, black on white). Small images are enlarged by default
(nearest neighbour) until the grid is at least ``MIN_WIDTH`` pixels wide; the data pixels are only repeated,
never resampled.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image
from torch import Tensor

from . import checks
from .captions import FONT_SIZE, label_grid

__all__ = [
    "FONT_SIZE",
    "MIN_WIDTH",
    "auto_scale",
    "label_grid",
    "make_grid",
    "make_panels",
    "save_grid",
    "save_panels",
    "save_png",
    "save_reconstructions",
    "to_uint8",
]

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


def make_panels(
    panels: Mapping[str, Tensor],
    *,
    ncols: int = 8,
    padding: int = 2,
    pad_value: int = 255,
    scale: int | None = None,
    gap: int = 12,
    captions: Mapping[str, Sequence[str]] | None = None,
) -> np.ndarray:
    """Grids of images side by side, each titled with its key, e.g. ``{"prior samples": x, "uniform codes": y}``.

    Args:
        panels: title → images ``(N, C, H, W)``; all with the same ``C``.
        ncols: images per row in each panel.
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding, the gaps and the label strips.
        scale: as in ``save_grid``; ``None`` sizes the whole figure to at least ``MIN_WIDTH`` pixels.
        gap: pixels (after scaling) between two panels.
        captions: title → one caption per image of that panel.

    Returns:
        ``(height, width)`` or ``(height, width, 3)`` uint8.

    Raises:
        ValueError: if ``panels`` is empty, mixes grey and colour images, or a panel does not fit (see
            [`make_grid`][make_grid]).

    Examples:
        >>> import torch
        >>> from vqgen.images import make_panels
        >>> panels = {"prior samples": torch.rand(8, 1, 8, 8), "uniform codes": torch.rand(8, 1, 8, 8)}
        >>> figure = make_panels(panels, scale=2)
        >>> figure.ndim, figure.shape[1] > 2 * 2 * 82                      # two panels side by side
        (2, True)
    """
    if not panels:
        raise ValueError("panels is empty: nothing to draw")
    if scale is None:
        width = sum(make_grid(images[:ncols], ncols=ncols, padding=padding).shape[1] for images in panels.values())
        scale = auto_scale(width)
    grids = [
        _grid_and_labels(
            images,
            ncols=ncols,
            padding=padding,
            pad_value=pad_value,
            scale=scale,
            title=str(title),
            row_labels=None,
            captions=(captions or {}).get(title),
        )  # fmt: skip
        for title, images in panels.items()
    ]
    if len({g.ndim for g in grids}) > 1:
        raise ValueError("panels must all be grey or all colour, got a mix")
    height = max(g.shape[0] for g in grids)
    parts: list[np.ndarray] = []
    for grid in grids:
        below = np.full((height - grid.shape[0], *grid.shape[1:]), pad_value, np.uint8)
        parts += [np.concatenate([grid, below]), np.full((height, gap, *grid.shape[2:]), pad_value, np.uint8)]
    return np.concatenate(parts[:-1], axis=1)


def save_panels(
    path: str | Path,
    panels: Mapping[str, Tensor],
    *,
    ncols: int = 8,
    padding: int = 2,
    pad_value: int = 255,
    scale: int | None = None,
    gap: int = 12,
    captions: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Save titled grids side by side as one PNG (see [`make_panels`][make_panels]); returns the path.

    Args:
        path: the PNG file to write.
        panels: title → images ``(N, C, H, W)``; all with the same ``C``.
        ncols: images per row in each panel.
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding, the gaps and the label strips.
        scale: enlarge each pixel to ``scale x scale``; ``None`` sizes the figure to at least ``MIN_WIDTH``.
        gap: pixels (after scaling) between two panels.
        captions: title → one caption per image of that panel.

    Returns:
        ``path``, as a ``Path``.

    Raises:
        ValueError: if the panels do not fit (see [`make_panels`][make_panels]).

    Examples:
        >>> import torch
        >>> from vqgen.images import save_panels
        >>> save_panels("compare.png", {"prior": torch.rand(8, 3, 8, 8), "baseline": torch.rand(8, 3, 8, 8)})
        PosixPath('compare.png')
    """
    canvas = make_panels(
        panels, ncols=ncols, padding=padding, pad_value=pad_value, scale=scale, gap=gap, captions=captions
    )
    return save_png(path, canvas)


def save_reconstructions(
    path: str | Path,
    originals: Tensor,
    reconstructions: Tensor | Sequence[Tensor],
    *,
    ncols: int = 8,
    padding: int = 2,
    pad_value: int = 255,
    scale: int | None = None,
    labels: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Save a PNG with each row of originals directly above the same images' reconstructions.

    With ``N`` images and ``ncols`` columns the grid has ``2 * ceil(N / ncols)`` rows of tiles: originals
    ``0..ncols-1``, their reconstructions, originals ``ncols..2*ncols-1``, and so on. Pass several reconstruction
    tensors (a list) to stack more rows under each row of originals (e.g. two models compared). Each row is labelled
    on the left with ``labels``.

    Args:
        path: the PNG file to write.
        originals: ``(N, C, H, W)`` uint8 or float in ``[0, 1]``.
        reconstructions: ``(N, C, H, W)`` uint8 or float (clamped to ``[0, 1]``), or a list of such tensors.
        ncols: images per row.
        padding: pixels between and around the tiles.
        pad_value: grey level of the padding and of blank tiles.
        scale: enlarge each pixel to ``scale x scale``; ``None`` picks it as ``save_grid`` does.
        labels: the row labels: one for the originals, then one per reconstruction tensor (e.g.
            ``("masked", "completed")``); by default ``"originals"`` and ``"reconstructions"`` (numbered when there
            are several).
        title: an optional line above the grid.

    Returns:
        ``path``, as a ``Path``.

    Raises:
        TypeError: if an image tensor is not a tensor of uint8 or floats.
        ValueError: if a reconstruction tensor differs from ``originals`` in shape, or ``labels`` does not name every
            row.

    Examples:
        >>> import torch
        >>> from vqgen.images import save_reconstructions
        >>> originals = torch.rand(12, 1, 28, 28)
        >>> save_reconstructions("reconstructions.png", originals, originals.clamp(0.2, 0.8), ncols=6)
        PosixPath('reconstructions.png')
        >>> save_reconstructions("two.png", originals, [originals, originals], labels=["originals", "vq"])
        Traceback (most recent call last):
        ValueError: labels must name the originals and each of the 2 reconstruction tensors (3 labels), got [...]
    """
    originals = checks.check_tensor(originals, name="originals", ndim=4)
    others = [reconstructions] if isinstance(reconstructions, Tensor) else list(reconstructions)
    for i, other in enumerate(others):
        checks.check_tensor(other, name=f"reconstructions[{i}]", ndim=4)
        if other.shape != originals.shape:
            raise ValueError(
                f"reconstructions must have the shape of originals {tuple(originals.shape)}, got {tuple(other.shape)}"
            )
    if labels is None:
        numbered = [f"reconstructions {i + 1}" for i in range(len(others))] if len(others) > 1 else ["reconstructions"]
        labels = ["originals", *numbered]
    labels = list(labels)
    if len(labels) != 1 + len(others):
        raise ValueError(
            f"labels must name the originals and each of the {len(others)} reconstruction tensors "
            f"({1 + len(others)} labels), got {labels!r}"
        )
    checks.check_positive(ncols, name="ncols", integer=True)
    ncols = min(ncols, originals.shape[0])
    rows, row_labels = [], []
    for start in range(0, originals.shape[0], ncols):
        for block in [originals, *others]:
            chunk = to_uint8(block[start : start + ncols]).cpu()
            if chunk.shape[0] < ncols:  # pad the last row with blank tiles so rows stay aligned
                blank = torch.full((ncols - chunk.shape[0], *chunk.shape[1:]), pad_value, dtype=torch.uint8)
                chunk = torch.cat([chunk, blank])
            rows.append(chunk)
        row_labels += labels
    return save_grid(
        path, torch.cat(rows), ncols=ncols, padding=padding, pad_value=pad_value, scale=scale, title=title,
        row_labels=row_labels,
    )  # fmt: skip
