"""Causal masks for convolution kernels: the one place that decides what a masked convolution may see.

PixelCNN (van den Oord et al., arXiv:1601.06759, figures 2 and 4) predicts position ``(i, j)`` from the positions
before it in raster order. A masked convolution therefore zeroes the kernel taps that would read the current row to
the right of the centre, and every row below. At the centre tap itself:

- mask ``"A"`` (first layer) excludes the current position: the output must not see the value it predicts;
- mask ``"B"`` (later layers) includes it: by then the feature at the current position holds only earlier values.

With ``colour_groups = G > 1`` (sequential colour channels R → G → B), the feature maps of both input and output are
split into ``G`` contiguous groups, group ``g`` belonging to colour channel ``g``. At the centre tap, output group
``g`` may read input groups ``< g`` (mask A) or ``<= g`` (mask B), so R is predicted from earlier pixels only, G also
from the current R, and B also from the current R and G. A group size need not divide the channel count: channel
``m`` of ``n`` belongs to group ``m * G // n`` (contiguous, as even as possible).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .. import checks

__all__ = ["MASK_TYPES", "causal_mask", "channel_groups"]

MASK_TYPES = ("A", "B")


def channel_groups(num_channels: int, groups: int) -> Tensor:
    """The colour group ``(num_channels,)`` int64 of each of ``num_channels`` contiguous feature maps."""
    return torch.arange(num_channels) * groups // num_channels


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, int) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
    for v in pair:
        checks.check_positive(v, name=name, integer=True)
    return int(pair[0]), int(pair[1])


def causal_mask(
    kernel_size: int | Sequence[int],
    mask_type: str,
    in_channels: int,
    out_channels: int,
    colour_groups: int = 1,
    center: Sequence[int] | None = None,
) -> Tensor:
    """A ``(out_channels, in_channels, kh, kw)`` float mask of 0s and 1s for a causal convolution kernel.

    Args:
        kernel_size: ``k`` or ``(kh, kw)``.
        mask_type: ``"A"`` (excludes the current position) or ``"B"`` (includes it), per colour group.
        in_channels: feature maps read; split into ``colour_groups`` contiguous groups.
        out_channels: feature maps produced; split likewise.
        colour_groups: ``G``, the number of sequentially predicted channels (1: no split).
        center: ``(ci, cj)``, the kernel tap aligned with the output position; default the middle
            ``(kh // 2, kw // 2)``. A horizontal-stack kernel ``(1, k // 2 + 1)`` has its centre at the last column.

    Taps before the centre in raster order are 1, taps after it 0, and the centre follows the type and groups.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    if mask_type not in MASK_TYPES:
        raise ValueError(f"mask_type must be one of {list(MASK_TYPES)}, got {mask_type!r}")
    checks.check_positive(in_channels, name="in_channels", integer=True)
    checks.check_positive(out_channels, name="out_channels", integer=True)
    checks.check_positive(colour_groups, name="colour_groups", integer=True)
    if colour_groups > min(in_channels, out_channels):
        raise ValueError(
            f"colour_groups={colour_groups} needs at least that many input and output channels, "
            f"got in_channels={in_channels}, out_channels={out_channels}"
        )
    ci, cj = (kh // 2, kw // 2) if center is None else (int(center[0]), int(center[1]))
    if not (0 <= ci < kh and 0 <= cj < kw):
        raise ValueError(f"center must lie inside the {kh}x{kw} kernel, got {tuple(center)}")

    mask = torch.zeros(out_channels, in_channels, kh, kw)
    mask[:, :, :ci, :] = 1.0  # rows above the centre
    mask[:, :, ci, :cj] = 1.0  # the centre row, left of the centre
    out_group = channel_groups(out_channels, colour_groups)[:, None]  # (out, 1)
    in_group = channel_groups(in_channels, colour_groups)[None, :]  # (1, in)
    allowed = in_group < out_group if mask_type == "A" else in_group <= out_group  # (out, in)
    mask[:, :, ci, cj] = allowed.float()
    return mask
