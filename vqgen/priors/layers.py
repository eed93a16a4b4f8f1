"""Building blocks of the convolutional priors: masked convolutions, gates, condition biases, cached-step weights.

- :class:`MaskedConv2d` multiplies its weight by a causal mask buffer (:func:`~vqgen.priors.masks.causal_mask`) in
  every forward pass, so a masked tap contributes exactly zero whatever the optimiser does to the raw weight.
- :func:`gate` is the gated activation ``tanh(a) * sigmoid(b)`` of the Gated PixelCNN (arXiv:1606.05328, eq. 2).
- :class:`ConditionBias` turns a class label or a conditioning vector into per-channel biases for every layer.
- :func:`step_matrix` reshapes a (masked) kernel into the matrix that the cached samplers multiply a window of
  channels-last activations by (arXiv:1704.06001): one ``addmm`` per layer and step.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .. import checks
from ..interfaces import AutoregressivePrior
from .embedding import IndexInput
from .masks import causal_mask

__all__ = ["CachedStepper", "ConditionBias", "ConvPrior", "MaskedConv2d", "gate", "step_matrix"]


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
        mask_type: ``"A"`` or ``"B"`` (see :mod:`vqgen.priors.masks`).
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


CHANNEL_ORDERS = ("sequential", "parallel")


class ConvPrior(AutoregressivePrior):
    """What the convolutional priors share: the index input, colour ordering, conditioning and cached sampling.

    Subclasses build their network after calling this ``__init__`` and set ``stepper_class``, a
    :class:`CachedStepper` subclass that :meth:`incremental` instantiates.
    """

    stepper_class: type[CachedStepper]

    def __init__(
        self,
        num_categories: int,
        channels: int,
        channel_order: str = "sequential",
        input_mode: str = "auto",
        embed_dim: int = 32,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__()
        if channel_order not in CHANNEL_ORDERS:
            raise ValueError(f"channel_order must be one of {list(CHANNEL_ORDERS)}, got {channel_order!r}")
        for name, value in (("num_classes", num_classes), ("cond_dim", cond_dim)):
            if value is not None:
                checks.check_positive(value, name=name, integer=True)
        self.input = IndexInput(num_categories, channels, input_mode, embed_dim)  # validates K, C
        self._num_categories, self._channels = num_categories, channels
        self._num_classes, self._cond_dim = num_classes, cond_dim
        self.channel_order = channel_order
        # Sequential colour channels split every feature map into C groups; parallel ones (or C = 1) need no split.
        self.colour_groups = channels if channel_order == "sequential" else 1

    @property
    def num_categories(self) -> int:
        return self._num_categories

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def num_classes(self) -> int | None:
        return self._num_classes

    @property
    def cond_dim(self) -> int | None:
        return self._cond_dim

    def init_embedding_from(self, codebook: Tensor) -> None:
        """Start the input embedding from a quantizer's codebook ``(K, D)`` (needs ``input_mode="embed"``)."""
        self.input.init_embedding_from(codebook)

    def logits_from_head(self, out: Tensor) -> Tensor:
        """Head output ``(B, C * K, H, W)`` (channel groups contiguous) → logits ``(B, K, C, H, W)``."""
        return rearrange(out, "b (c k) h w -> b k c h w", c=self.channels)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> CachedStepper:
        """A cached stepper (arXiv:1704.06001): per-layer activation caches, one position computed per step."""
        return self.stepper_class(self, cond, shape)


class CachedStepper:
    """Base of the cached samplers: bookkeeping shared by PixelCNN and Gated PixelCNN.

    At step ``(i, j, c)`` it writes the features of the value(s) drawn since the last step into the input cache (the
    whole previous pixel at ``c = 0``, channel ``c - 1`` otherwise — never a value not yet drawn), runs the
    per-row work (:meth:`row`) at the start of a row, and the per-position work (:meth:`pixel`) for every channel when
    channels are sequential, once per position when they are parallel. Caches are allocated at step ``(0, 0, 0)``,
    when the batch size is known, so a stepper can be reused for several grids.
    """

    def __init__(self, prior: ConvPrior, cond: Tensor | None, shape: Sequence[int]) -> None:
        self.prior, self.cond = prior, cond
        self.height, self.width = int(shape[0]), int(shape[1])
        self.channels, self.num_categories = prior.channels, prior.num_categories
        self.sequential = prior.colour_groups > 1
        self.embed_dim = prior.input.embed_dim
        self.batch: int | None = None
        self.last: Tensor | None = None

    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        """Logits ``(n, K)`` of channel ``c`` at ``(i, j)``; see :class:`~vqgen.priors.sampling.Stepper`."""
        with torch.inference_mode():
            if (i, j, c) == (0, 0, 0) or self.batch != x.shape[0]:
                self.batch = x.shape[0]
                param = next(self.prior.parameters())
                self.start(self.batch, param.dtype, param.device)
            if c > 0:
                if not self.sequential:
                    return self.last[:, c]
                self.write(x[:, c - 1 : c, i, j], i, j, c - 1)
            elif (i, j) != (0, 0):
                pi, pj = (i, j - 1) if j > 0 else (i - 1, self.width - 1)
                self.write(x[:, :, pi, pj], pi, pj, 0)
            if j == 0 and c == 0:
                self.row(i)
            self.last = self.pixel(i, j).view(self.batch, self.channels, self.num_categories)  # (B, C, K)
            return self.last[:, c]

    def write(self, values: Tensor, i: int, j: int, first: int) -> None:
        """Embed ``values`` ``(B, n)`` of channels ``first ...`` at ``(i, j)`` and store them with :meth:`store`."""
        features = self.prior.input.embed_values(values, first)  # (B, n * E)
        self.store(features, i, j, slice(first * self.embed_dim, first * self.embed_dim + features.shape[1]))

    def start(self, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        """Allocate the caches and precompute masked step matrices and condition biases."""
        raise NotImplementedError

    def store(self, features: Tensor, i: int, j: int, channels: slice) -> None:
        """Write input features ``(B, n)`` at ``(i, j)`` into the input feature channels ``channels``."""
        raise NotImplementedError

    def row(self, i: int) -> None:
        """Work done once per row, before its first position (nothing by default)."""

    def pixel(self, i: int, j: int) -> Tensor:
        """The head output ``(B, C * K)`` at ``(i, j)`` from the caches."""
        raise NotImplementedError
