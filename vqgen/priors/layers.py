"""Building blocks of the convolutional priors: masked convolutions, gates, condition biases, the output head.

- [`MaskedConv2d`][MaskedConv2d] multiplies its weight by a causal mask buffer
  ([`causal_mask`][vqgen.priors.masks.causal_mask]) in every forward pass, so a masked tap contributes exactly zero
  whatever the optimiser does to the raw weight.
- [`gate`][gate] is the gated activation ``tanh(a) * sigmoid(b)`` of the Gated PixelCNN (arXiv:1606.05328, eq. 2).
- [`ConditionBias`][ConditionBias] turns a class label or a conditioning vector into per-channel biases for every layer.
- [`OutputHead`][OutputHead] is the named ``ReLU → 1x1 → ReLU → 1x1`` head that maps features to logits.
- [`step_matrix`][step_matrix] reshapes a (masked) kernel into the matrix that the cached samplers multiply a window of
  channels-last activations by (arXiv:1704.06001): one ``addmm`` per layer and step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .masks import causal_mask

__all__ = ["ConditionBias", "MaskedConv2d", "OutputHead", "add_bias", "combine_bias", "gate", "step_matrix"]


def gate(a: Tensor, dim: int = 1) -> Tensor:
    """``tanh(first half) * sigmoid(second half)`` of ``a`` along ``dim``: ``(B, 2h, ...)`` → ``(B, h, ...)``."""
    f, g = a.chunk(2, dim=dim)
    return torch.tanh(f) * torch.sigmoid(g)


class MaskedConv2d(nn.Conv2d):
    """A convolution whose kernel is multiplied by a fixed causal mask in every forward pass.

    The output at ``(i, j)`` is aligned with the kernel tap ``center``, and the input is zero-padded so that the output
    has the input's height and width.

    Args:
        in_channels: input feature maps.
        out_channels: output feature maps.
        kernel_size: ``k`` or ``(kh, kw)``.
        mask_type: ``"A"`` or ``"B"`` (see [`vqgen.priors.masks`][vqgen.priors.masks]).
        colour_groups: number of sequential colour groups the feature maps are split into.
        center: the tap aligned with the output, default the kernel's middle.
        out_halves: the output consists of this many stacked parts (2 for the two halves of a gate), each split into
            colour groups on its own.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        mask_type: str,
        colour_groups: int = 1,
        center: Sequence[int] | None = None,
        out_halves: int = 1,
    ) -> None:
        kh, kw = (kernel_size, kernel_size) if isinstance(kernel_size, int) else tuple(kernel_size)
        super().__init__(in_channels, out_channels, (kh, kw))
        ci, cj = (kh // 2, kw // 2) if center is None else tuple(center)
        mask = causal_mask((kh, kw), mask_type, in_channels, out_channels // out_halves, colour_groups, (ci, cj))
        self.register_buffer("mask", mask.repeat(out_halves, 1, 1, 1), persistent=False)  # (out, in, kh, kw)
        self.center = (ci, cj)
        self.pads = (cj, kw - 1 - cj, ci, kh - 1 - ci)  # F.pad order: left, right, top, bottom

    def masked_weight(self) -> Tensor:
        """The weight as used: ``weight * mask``, ``(out, in, kh, kw)``."""
        return self.weight * self.mask

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in, H, W)`` → ``(B, out, H, W)``."""
        left, right, top, bottom = self.pads
        if left == right and top == bottom:
            return F.conv2d(x, self.masked_weight(), self.bias, padding=(top, left))
        return F.conv2d(F.pad(x, self.pads), self.masked_weight(), self.bias)


def step_matrix(weight: Tensor, rows: int | None = None) -> Tensor:
    """Kernel ``(out, in, kh, kw)`` → ``(rows * kw * in, out)`` for a channels-last window ``(B, rows, kw, in)``.

    Only the first ``rows`` kernel rows are kept (default all): a causal kernel's rows below its centre are zero.
    """
    rows = weight.shape[2] if rows is None else rows
    return rearrange(weight[:, :, :rows], "o i h w -> (h w i) o").contiguous()


class ConditionBias(nn.Module):
    """Per-channel biases from a condition: a class label (learned embedding) or a vector (linear projection).

    Args:
        sizes: the number of channels of each biased layer; the biases of all layers come from one lookup.
        num_classes: number of class labels, or ``None``.
        cond_dim: width of conditioning vectors, or ``None``.
    """

    def __init__(self, sizes: Sequence[int], num_classes: int | None = None, cond_dim: int | None = None) -> None:
        super().__init__()
        self.sizes = [int(s) for s in sizes]
        total = sum(self.sizes)
        self.embedding = nn.Embedding(num_classes, total) if num_classes is not None else None
        self.linear = nn.Linear(cond_dim, total) if cond_dim is not None else None
        for module in (self.embedding, self.linear):
            if module is not None:  # start as an unconditional model: small condition terms
                nn.init.normal_(module.weight, std=0.02)
        if self.linear is not None:
            nn.init.zeros_(self.linear.bias)

    def forward(self, cond: Tensor | None) -> list[Tensor | None]:
        """``cond`` ``(B,)`` int64 labels or ``(B, cond_dim)`` floats → one ``(B, size)`` bias per layer.

        Returns a list of ``None`` when there is no condition.
        """
        if cond is None or (self.embedding is None and self.linear is None):
            return [None] * len(self.sizes)
        if cond.is_floating_point():
            bias = self.linear(cond.to(self.linear.weight.dtype))  # (B, total)
        else:
            bias = self.embedding(cond)  # (B, total)
        return list(bias.split(self.sizes, dim=1))


def add_bias(x: Tensor, bias: Tensor | None) -> Tensor:
    """``x`` ``(B, D, H, W)`` plus a per-example, per-channel ``bias`` ``(B, D)`` (or nothing)."""
    return x if bias is None else x + bias[:, :, None, None]


def combine_bias(bias: Tensor, cond_bias: Tensor | None, batch: int) -> Tensor:
    """A layer's own ``bias`` ``(D,)`` plus its condition bias ``(B, D)``, as ``(B, D)`` for ``addmm``."""
    out = bias if cond_bias is None else bias + cond_bias
    return out.expand(batch, -1).contiguous()


class OutputHead(nn.Module):
    """The 1x1 output head of the convolutional priors: ``ReLU → 1x1 → ReLU → 1x1``, masked per colour group.

    ``(B, in, H, W)`` → ``(B, C * K, H, W)`` with the K logits of colour channel ``c`` contiguous. Its two layers are
    named (``hidden``, ``out``), so cached steppers read ``head.out``, not a position in a ``Sequential``.

    Args:
        in_channels: the features it reads (the residual stream, or the skip sum).
        hidden_channels: width of the hidden 1x1 layer.
        out_channels: ``C * K``.
        colour_groups: colour groups of the masks (C for sequential colour channels, else 1).
    """

    _LEGACY = {"1.": "hidden.", "3.": "out."}  # keys of the nn.Sequential this replaces

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int, colour_groups: int) -> None:
        super().__init__()
        self.hidden = MaskedConv2d(in_channels, hidden_channels, 1, "B", colour_groups)
        self.out = MaskedConv2d(hidden_channels, out_channels, 1, "B", colour_groups)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in, H, W)`` → ``(B, C * K, H, W)``."""
        return self.out(F.relu(self.hidden(F.relu(x))))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        # Checkpoints written before the head had names stored it as nn.Sequential(ReLU, conv, ReLU, conv).
        for old, new in self._LEGACY.items():
            for key in [k for k in state_dict if k.startswith(prefix + old)]:
                state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
