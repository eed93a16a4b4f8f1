"""What a completion keeps: the ``prefix`` and ``prefix_mask`` of ``sample``, validated once, and how much of the
raster order they fix before the first value to draw.

- [`prepare_prefix`][prepare_prefix]: the values to keep and where, as full ``(n, C, H, W)`` tensors;
- [`known_positions`][known_positions]: how many positions, from the first in raster order, every example keeps (what
  a stepper's ``prefill`` takes in one pass);
- [`pixel_mask`][pixel_mask], [`codes_kept`][codes_kept]: the known pixels of ``TwoStageModel.complete``, and the codes
  of a VQ-VAE's grid they keep whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor

from . import checks

if TYPE_CHECKING:
    from .interfaces import AutoregressivePrior

__all__ = ["check_shape", "codes_kept", "known_positions", "pixel_mask", "prepare_prefix"]


def check_shape(shape: object) -> tuple[int, int]:
    """``shape`` as ``(H, W)``, two positive ints, or a ``ValueError`` saying what it must be."""
    if (
        not isinstance(shape, Sequence)
        or len(shape) != 2
        or not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)
    ):
        raise ValueError(f"shape must be (H, W) with two positive ints, got {shape!r}")
    return int(shape[0]), int(shape[1])


def prepare_prefix(
    prior: AutoregressivePrior, n: int, height: int, width: int, prefix: object, prefix_mask: object
) -> tuple[Tensor | None, Tensor | None]:
    """Validate ``prefix``/``prefix_mask`` and return them as full ``(n, C, H, W)`` tensors (or ``None``)."""
    channels = prior.channels
    if prefix is None:
        if prefix_mask is not None:
            raise ValueError("prefix_mask was given without prefix; pass the values to keep as prefix")
        return None, None
    prefix = checks.check_tensor(prefix, name="prefix", ndim=4)
    checks.check_indices(prefix, num_categories=prior.num_categories, name="prefix")
    if prefix_mask is None:
        rows = prefix.shape[2]
        if prefix.shape[0] != n or prefix.shape[1] != channels or prefix.shape[3] != width or rows > height:
            raise ValueError(
                f"prefix must have shape ({n}, {channels}, h0, {width}) with h0 <= {height} (the first rows to "
                f"keep), or ({n}, {channels}, {height}, {width}) with a prefix_mask; got {tuple(prefix.shape)}"
            )
        full = torch.zeros(n, channels, height, width, dtype=torch.long, device=prefix.device)
        full[:, :, :rows] = prefix
        mask = torch.zeros(n, channels, height, width, dtype=torch.bool, device=prefix.device)
        mask[:, :, :rows] = True
        return full, mask
    if tuple(prefix.shape) != (n, channels, height, width):
        raise ValueError(
            f"with a prefix_mask, prefix must have shape {(n, channels, height, width)}, got {tuple(prefix.shape)}"
        )
    prefix_mask = checks.check_tensor(prefix_mask, name="prefix_mask", ndim=4)
    if prefix_mask.dtype != torch.bool:
        raise TypeError(f"prefix_mask must be a bool tensor (True = keep), got {prefix_mask.dtype}")
    if (
        prefix_mask.shape[1] not in (1, channels)
        or tuple(prefix_mask.shape[2:]) != (height, width)
        or (prefix_mask.shape[0] != n)
    ):
        raise ValueError(
            f"prefix_mask must have shape ({n}, 1 or {channels}, {height}, {width}), got {tuple(prefix_mask.shape)}"
        )
    return prefix.long(), prefix_mask.expand(n, channels, height, width)


def known_positions(prefix_mask: Tensor | None) -> int:
    """How many positions, from the first in raster order, every example keeps in every channel: ``prefix_mask``
    ``(n, C, H, W)`` bool → an int in ``[0, H·W]`` (0 without a mask)."""
    if prefix_mask is None:
        return 0
    kept = prefix_mask.all(dim=1).all(dim=0).flatten()  # (H·W,): kept by every example and channel
    return int(kept.long().cumprod(0).sum())


def pixel_mask(mask: object, image_shape: Sequence[int]) -> Tensor:
    """A completion's mask of known pixels as ``(B, 1, H, W)`` bool for images of ``image_shape`` ``(B, C, H, W)``;
    ``mask`` may be ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)`` (the same for every image)."""
    batch, _, height, width = image_shape
    mask = checks.check_tensor(mask, name="mask")
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (True = known pixel), got {mask.dtype}")
    if mask.ndim == 2:
        mask = mask.expand(batch, *mask.shape)
    if mask.ndim == 3:
        mask = mask[:, None]
    if tuple(mask.shape) != (batch, 1, height, width):
        raise ValueError(
            f"mask must have shape {(batch, 1, height, width)} (or without the 1), got {tuple(mask.shape)}"
        )
    return mask


def codes_kept(mask: Tensor, factor: int) -> Tensor:
    """Pixel mask ``(B, 1, H, W)`` bool (True: known) → code mask ``(B, 1, H / factor, W / factor)``: a code is kept
    when every pixel of its ``factor x factor`` patch is known."""
    return -F.max_pool2d(-mask.float(), kernel_size=factor, stride=factor) > 0.5
