"""Figures of several grids: titled panels side by side, and originals above their reconstructions (see
[`vqgen.images`][vqgen.images], which re-exports the public names).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import checks
from .grids import _grid_and_labels, auto_scale, make_grid, save_grid, save_png, to_uint8

__all__ = ["make_panels", "save_panels", "save_reconstructions"]


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
