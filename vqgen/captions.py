"""What a PNG of vqgen says about itself: a title strip, a label left of each row and a caption under each tile, drawn
onto a grid of ``make_grid`` ([`label_grid`][label_grid]; Pillow's default font, black on white)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import checks

__all__ = ["FONT_SIZE", "label_grid"]

FONT_SIZE = 14
"""Pixel size of the label font; strips are ``FONT_SIZE + 8`` pixels high."""


def _font(size: int = FONT_SIZE) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one fixed-size bitmap font
        return ImageFont.load_default()


def _text_width(text: str, font) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(math.ceil(right - left))


def _fit(text: str, width: int, font) -> str:
    """``text`` cut at the end (marked with ``.``) until it is at most ``width`` pixels wide."""
    if _text_width(text, font) <= width:
        return text
    while len(text) > 1 and _text_width(text + ".", font) > width:
        text = text[:-1]
    return text + "."


def _strip(width: int, height: int, channels: int, pad_value: int) -> np.ndarray:
    return np.full((height, width) + ((3,) if channels == 3 else ()), pad_value, np.uint8)


def _draw(canvas: np.ndarray, texts: list[tuple[int, int, str]], font) -> np.ndarray:
    """Write ``(x, y, text)`` items in black onto a copy of ``canvas``."""
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for x, y, text in texts:
        draw.text((x, y), text, fill=0 if canvas.ndim == 2 else (0, 0, 0), font=font)
    return np.asarray(image).copy()


def label_grid(
    grid: np.ndarray,
    *,
    tile_shape: tuple[int, int],
    padding: int = 2,
    scale: int = 1,
    title: str | None = None,
    row_labels: Sequence[str] | None = None,
    captions: Sequence[str] | None = None,
    ncols: int | None = None,
    pad_value: int = 255,
) -> np.ndarray:
    """Enlarge a grid from ``make_grid`` by ``scale`` and add its labels.

    Args:
        grid: ``(height, width)`` or ``(height, width, 3)`` uint8, as ``make_grid`` returns it.
        tile_shape: ``(H, W)`` of one tile before scaling (to find the rows and tiles).
        padding: the padding the grid was made with.
        scale: enlarge each pixel to ``scale x scale`` (nearest neighbour) before labelling.
        title: a line above the grid (e.g. ``"prior samples"``).
        row_labels: one label per row of tiles, written left of the row (e.g. ``"originals"``).
        captions: one caption per tile (row-major, e.g. class names), written under it (cut to the tile's
            width); needs ``ncols``.
        ncols: tiles per row of the grid (only for ``captions``).
        pad_value: grey level of the label strips.

    Returns:
        The labelled uint8 array. Without labels it is the scaled grid; the tiles keep their pixels, only shifted
        right by the row-label column and down by the title strip and the captions above them.

    Raises:
        TypeError: if ``scale`` is not an int.
        ValueError: if ``scale`` < 1, ``row_labels`` does not have one label per row, or ``captions`` are given
            without ``ncols`` or for more tiles than the grid has.

    Examples:
        >>> import torch
        >>> from vqgen.images import label_grid, make_grid
        >>> images = torch.rand(16, 1, 8, 8)
        >>> grid = make_grid(images, ncols=8)                            # 2 rows of 8 tiles: (22, 82)
        >>> labelled = label_grid(grid, tile_shape=(8, 8), scale=4, title="samples",
        ...                       row_labels=["first", "second"], captions=[str(i) for i in range(16)], ncols=8)
        >>> grid.shape, labelled.dtype, labelled.shape[0] > 4 * grid.shape[0]
        ((22, 82), dtype('uint8'), True)
        >>> label_grid(grid, tile_shape=(8, 8), row_labels=["one row"])
        Traceback (most recent call last):
        ValueError: row_labels must have one label per row of tiles (2), got 1
    """
    checks.check_positive(scale, name="scale", integer=True)
    height, width = tile_shape
    rows = (grid.shape[0] - padding) // (height + padding)
    if row_labels is not None and len(row_labels) != rows:
        raise ValueError(f"row_labels must have one label per row of tiles ({rows}), got {len(row_labels)}")
    grid = grid.repeat(scale, axis=0).repeat(scale, axis=1)
    pitch, top = (height + padding) * scale, padding * scale  # row of tiles r starts at top + r * pitch
    channels = 3 if grid.ndim == 3 else 1
    font, strip = _font(), FONT_SIZE + 8
    texts: list[tuple[int, int, str]] = []
    if captions is not None:
        if ncols is None:
            raise ValueError("captions need ncols, the number of tiles per row")
        if len(captions) > rows * ncols:
            raise ValueError(f"captions must have at most one caption per tile ({rows * ncols}), got {len(captions)}")
        parts, cuts = [], [top + row * pitch + height * scale for row in range(rows)]  # under each row of tiles
        for row, cut in enumerate(cuts):
            parts += [grid[(cuts[row - 1] if row else 0) : cut], _strip(grid.shape[1], strip, channels, pad_value)]
            for col, caption in enumerate(captions[row * ncols : (row + 1) * ncols]):
                x, text = (padding + col * (width + padding)) * scale + 1, _fit(str(caption), width * scale - 2, font)
                texts.append((x, cut + row * strip + 3, text))
        parts.append(grid[cuts[-1] :])
        grid = np.concatenate(parts)
        row_tops = [top + row * (pitch + strip) for row in range(rows)]
    else:
        row_tops = [top + row * pitch for row in range(rows)]
    grid = _draw(grid, texts, font) if texts else grid
    if row_labels is not None:
        label_width = max(_text_width(str(label), font) for label in row_labels) + 10
        column = _strip(label_width, grid.shape[0], channels, pad_value)
        row_height = height * scale
        column = _draw(
            column,
            [(4, y + max(0, (row_height - FONT_SIZE) // 2), str(label)) for y, label in zip(row_tops, row_labels)],
            font,
        )
        grid = np.concatenate([column, grid], axis=1)
    if title is not None:
        width_needed = _text_width(title, font) + 8
        if width_needed > grid.shape[1]:  # widen a narrow grid so the title fits
            extra = _strip(width_needed - grid.shape[1], grid.shape[0], channels, pad_value)
            grid = np.concatenate([grid, extra], axis=1)
        header = _draw(_strip(grid.shape[1], strip, channels, pad_value), [(4, 3, title)], font)
        grid = np.concatenate([header, grid])
    return grid
