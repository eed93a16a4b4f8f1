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

from .captions import FONT_SIZE, label_grid
from .grids import MAX_SCALE, MIN_WIDTH, auto_scale, make_grid, save_grid, save_png, to_uint8  # noqa: F401
from .panels import make_panels, save_panels, save_reconstructions

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
