"""The parts of PixelCNN++ (arXiv:1701.05517; reference code openai/pixel-cnn, ``pixel_cnn_pp/nn.py``).

- [`ShiftedConv2d`][ShiftedConv2d]: a convolution whose output at ``(r, c)`` reads only rows above ``r``
  (``"down"``, a ``2 x 3`` kernel) or rows above and the row itself left of ``c`` (``"down_right"``, ``2 x 2``);
  strided (the U-Net's down-sampling) or transposed (its up-sampling). Shifts replace masks: there is no blind spot.
- [`GatedResnet`][GatedResnet]: ``x + a · σ(b)`` with ``[a, b] = conv(concat_elu(conv(concat_elu(x)) + Σ nin(
  concat_elu(aux))))``, dropout in between, the condition added to ``[a, b]``.
- [`MixtureHead`][MixtureHead] and [`SoftmaxHead`][SoftmaxHead]: the network's features at a pixel → the output
  the prior's likelihood reads, with the earlier channels of the pixel coupled in.
- [`Op`][Op] and [`Term`][Term]: the network written once as a list of operations on named feature maps. The prior's
  ``forward`` runs the list on whole maps; the cached stepper runs it position by position, from the same modules
  ([`ShiftedConv2d.taps`][ShiftedConv2d.taps] says which input positions an output position reads).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

__all__ = [
    "LEVELS",
    "GatedResnet",
    "MixtureHead",
    "Op",
    "ShiftedConv2d",
    "SoftmaxHead",
    "Term",
    "concat_elu",
    "level_sizes",
]

LEVELS = 3  # resolutions of the U-Net: full, half, quarter (two strided steps, as in the paper)
DIRECTIONS = ("down", "down_right")
KERNELS = {"down": (2, 3), "down_right": (2, 2)}  # the reference code's filter sizes


def level_sizes(height: int, width: int) -> list[tuple[int, int]]:
    """The ``(H, W)`` of each resolution: full, then halved (rounding up) by each strided step."""
    sizes = [(height, width)]
    for _ in range(LEVELS - 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def concat_elu(x: Tensor, dim: int = 1) -> Tensor:
    """``elu([x, -x])`` along ``dim``: ``(B, h, ...)`` → ``(B, 2h, ...)`` (arXiv:1701.05517, section 2.6)."""
    return F.elu(torch.cat([x, -x], dim=dim))


class ShiftedConv2d(nn.Module):
    """A convolution whose output at ``(r, c)`` reads the window of rows ``s r - top .. s r - top + kh - 1`` and
    columns ``s c - left .. s c - left + kw - 1`` of its input (zero outside).

    ``"down"`` (``top = kh - 1``, ``left = (kw - 1) // 2``): rows up to ``s r``, centred on the column — on a stream
    that sees only rows above, the output does too. ``"down_right"`` (``left = kw - 1``): up to ``(s r, s c)``, ending
    at the column. ``shift`` moves the window further up / left (the first layers: ``down_shift`` and ``right_shift``
    of the reference code). Transposed (stride 2): output ``(r, c)`` gathers the inputs whose kernel tap ``(a, b)``
    lands on it, ``2 I + a = r + top``, ``2 J + b = c + left``, with ``top = 0`` and ``left = (kw - 1) // 2`` (down)
    or 0 (down-right): the reference code's crops.

    Args:
        in_channels: input feature maps.
        out_channels: output feature maps.
        direction: ``"down"`` or ``"down_right"``.
        kernel_size: ``(kh, kw)``; default ``(2, 3)`` down, ``(2, 2)`` down-right.
        stride: 1, or 2 to halve (or, transposed, double) the resolution.
        shift: ``(rows, columns)`` to move the window up and left (``(1, 0)``: the reference's ``down_shift``).
        transposed: up-sample (a transposed convolution) instead.
        init_scale: the initial weights are scaled by it (the reference starts each residual branch at 0.1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        direction: str = "down",
        kernel_size: Sequence[int] | None = None,
        stride: int = 1,
        shift: Sequence[int] = (0, 0),
        transposed: bool = False,
        init_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {list(DIRECTIONS)}, got {direction!r}")
        kh, kw = KERNELS[direction] if kernel_size is None else (int(k) for k in kernel_size)
        self.kernel_size, self.stride, self.transposed = (kh, kw), int(stride), bool(transposed)
        if transposed:  # the reference's crop of the transposed output: centred columns, or none
            self.top, self.left = 0, (kw - 1) // 2 if direction == "down" else 0
        else:
            self.top = kh - 1 + int(shift[0])
            self.left = ((kw - 1) // 2 if direction == "down" else kw - 1) + int(shift[1])
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kh, kw))
        self.bias = nn.Parameter(torch.empty(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's initialisation
        bound = 1 / math.sqrt(in_channels * kh * kw)
        nn.init.uniform_(self.bias, -bound, bound)
        with torch.no_grad():
            self.weight.mul_(init_scale)

    def forward(self, x: Tensor, size: Sequence[int]) -> Tensor:
        """``(B, in, H_in, W_in)`` → ``(B, out, H, W)`` for the output ``size`` ``(H, W)``."""
        height, width = size
        if self.transposed:
            y = F.conv_transpose2d(x, self.weight.transpose(0, 1), self.bias, stride=self.stride)
            return y[:, :, self.top : self.top + height, self.left : self.left + width]
        (kh, kw), s = self.kernel_size, self.stride
        bottom = max(0, s * (height - 1) - self.top + kh - x.shape[-2])
        right = max(0, s * (width - 1) - self.left + kw - x.shape[-1])
        y = F.conv2d(F.pad(x, (self.left, right, self.top, bottom)), self.weight, self.bias, stride=s)
        return y[:, :, :height, :width]

    def taps(self, in_size: Sequence[int], out_size: Sequence[int]) -> Tensor:
        """Which input position each kernel tap of each output position reads: ``(H W, kh kw)`` int64 indices into
        the flattened input ``(H_in W_in)``, ``H_in W_in`` where the tap reads nothing (padding, or a transposed
        tap that no input lands on). Tap order ``(a, b)`` matches [`step_matrix`][step_matrix]."""
        (h_in, w_in), (height, width), (kh, kw), s = in_size, out_size, self.kernel_size, self.stride
        r = torch.arange(height).view(-1, 1, 1, 1)
        c = torch.arange(width).view(1, -1, 1, 1)
        a = torch.arange(kh).view(1, 1, -1, 1)
        b = torch.arange(kw).view(1, 1, 1, -1)
        if self.transposed:
            rows, cols = r + self.top - a, c + self.left - b  # 2 I, 2 J where a tap lands
            valid = (rows % s == 0) & (cols % s == 0)
            rows, cols = rows.div(s, rounding_mode="floor"), cols.div(s, rounding_mode="floor")
        else:
            rows, cols = s * r - self.top + a, s * c - self.left + b
            valid = torch.ones((), dtype=torch.bool)
        valid = valid & (rows >= 0) & (rows < h_in) & (cols >= 0) & (cols < w_in)
        index = torch.where(valid, rows * w_in + cols, h_in * w_in)  # (H, W, kh, kw)
        return index.reshape(height * width, kh * kw)

    def step_matrix(self) -> Tensor:
        """The kernel as ``(kh kw in, out)``, for a gathered window ``(B, kh kw in)`` in [`taps`][taps] order."""
        return rearrange(self.weight, "o i h w -> (h w i) o").contiguous()

    def extra_repr(self) -> str:
        kind = "transposed, " if self.transposed else ""
        return f"{self.weight.shape[1]}, {self.weight.shape[0]}, {kind}kernel={self.kernel_size}, stride={self.stride}"


class Term(NamedTuple):
    """One summand of an [`Op`][Op]'s pre-activation: ``conv`` applied to node ``source`` (``concat_elu`` of it when
    ``act``)."""

    conv: ShiftedConv2d
    source: str
    act: bool = False


class Op(NamedTuple):
    """One operation of the network: node ``out`` at resolution ``level`` (0: full, 1: half, 2: quarter) from the
    sum of its ``terms`` (plus condition bias ``cond``, an index into the prior's condition biases).

    ``kind``: ``"linear"`` (the sum itself), ``"concat_elu"`` (``concat_elu`` of it, then dropout in training) or
    ``"gate"`` (``residual + a · σ(b)`` for the halves ``[a, b]`` of it).
    """

    out: str
    terms: tuple[Term, ...]
    kind: str
    level: int
    residual: str | None = None
    cond: int | None = None


class GatedResnet(nn.Module):
    """The gated residual block of the reference code (``gated_resnet``), on a ``"down"`` or ``"down_right"`` stream.

    ``c = concat_elu(conv1(concat_elu(x)) + Σ_k nin_k(concat_elu(aux_k)))``, dropout on ``c``,
    ``[a, b] = conv2(c) + condition``, out ``x + a · σ(b)``. The auxiliary inputs are the shortcut connections: the
    ``"down"`` stream's output for a ``"down_right"`` block, and the up pass's outputs in the down pass (one 1x1
    "network in network" layer each, which is the reference's one 1x1 layer on their concatenation).

    Args:
        channels: h, the width of the stream.
        direction: ``"down"`` or ``"down_right"``.
        num_aux: how many auxiliary inputs it takes.
    """

    def __init__(self, channels: int, direction: str, num_aux: int) -> None:
        super().__init__()
        self.conv1 = ShiftedConv2d(2 * channels, channels, direction)
        self.aux = nn.ModuleList(ShiftedConv2d(2 * channels, channels, "down", (1, 1)) for _ in range(num_aux))
        self.conv2 = ShiftedConv2d(2 * channels, 2 * channels, direction, init_scale=0.1)

    def ops(self, x: str, aux: Sequence[str], out: str, level: int, cond: int) -> list[Op]:
        """The block as two [`Op`][Op]s: its hidden node ``out + ".h"``, then ``out``."""
        terms = (Term(self.conv1, x, act=True), *(Term(nin, a, act=True) for nin, a in zip(self.aux, aux, strict=True)))
        return [
            Op(f"{out}.h", terms, "concat_elu", level),
            Op(out, (Term(self.conv2, f"{out}.h"),), "gate", level, residual=x, cond=cond),
        ]


class MixtureHead(nn.Module):
    """Features of a pixel → the parameters of its discretised logistic mixture
    ([`DiscretizedLogisticMixture`][vqgen.logistic_mixture.DiscretizedLogisticMixture]'s ``(B, 3, C, M, ...)``).

    [`context`][context] is ``1x1(elu(u))``: per component a mixture logit (one per channel without coupling), C
    means, C log-scales and, with ``coupled``, ``C (C - 1) / 2`` coefficients; [`output`][output] couples the means
    to the pixel's earlier values (equation 3: ``μ_G + tanh(α) R``, ``μ_B + tanh(β) R + tanh(γ) G``).
    [`start_position`][start_position] and [`position_output`][position_output] do the same at one position, one
    channel at a time (cached sampling).

    Args:
        in_channels: h.
        channels: C.
        num_mixtures: M.
        coupled: sequential channels (coupled means, one mixture per pixel) or parallel ones.
    """

    def __init__(self, in_channels: int, channels: int, num_mixtures: int, coupled: bool) -> None:
        super().__init__()
        self.channels, self.num_mixtures, self.coupled = channels, num_mixtures, coupled
        self.num_logits = 1 if coupled else channels
        self.num_coefficients = channels * (channels - 1) // 2 if coupled else 0
        groups = self.num_logits + 2 * channels + self.num_coefficients
        self.proj = nn.Conv2d(in_channels, groups * num_mixtures, 1)

    def context(self, u: Tensor) -> Tensor:
        """``(B, h, H, W)`` → ``(B, P, H, W)``, or one position ``(B, h)`` → ``(B, P)``: the parameters before
        coupling."""
        return _one_by_one(self.proj, F.elu(u))

    def _split(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(B, P, ...)`` → mixture logits, means, log-scales, ``tanh`` of the coefficients: ``(B, n, M, ...)``."""
        parts = context.unflatten(1, (-1, self.num_mixtures))  # (B, groups, M, ...)
        c = self.channels
        logits, means, log_scales, coefficients = parts.split([self.num_logits, c, c, self.num_coefficients], dim=1)
        return logits, means, log_scales, torch.tanh(coefficients)

    @staticmethod
    def _coupled_mean(means: Tensor, coefficients: Tensor, current: Tensor, c: int) -> Tensor:
        """Channel ``c``'s means ``(B, M, ...)``: ``μ_c + Σ_{c' < c} tanh(coefficient) · value_c'``; the
        coefficients of channel ``c`` are ``c (c - 1) / 2 ..`` (G: ``[0]``, B: ``[1, 2]``)."""
        mean, first = means[:, c], c * (c - 1) // 2
        for earlier in range(c):
            mean = mean + coefficients[:, first + earlier] * current[:, earlier].unsqueeze(1)
        return mean

    def output(self, context: Tensor, current: Tensor) -> Tensor:
        """``context`` ``(B, P, ...)`` and the pixel's values on ``[-1, 1]`` ``current`` ``(B, C, ...)`` → ``(B, 3, C,
        M, ...)``. The mean of channel ``c`` reads ``current`` at channels ``< c`` only."""
        logits, means, log_scales, coefficients = self._split(context)
        if self.coupled:
            means = torch.stack([self._coupled_mean(means, coefficients, current, c) for c in range(self.channels)], 1)
        return torch.stack([logits.expand_as(means), means, log_scales], dim=1)

    def start_position(self, context: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """One position's ``context`` ``(B, P)`` → the output ``(B, 3, C, M)`` with means not yet coupled, and the
        means and coefficients that [`position_output`][position_output] couples them with."""
        logits, means, log_scales, coefficients = self._split(context)
        return torch.stack([logits.expand_as(means), means, log_scales], dim=1), means, coefficients

    def position_output(self, state: tuple[Tensor, Tensor, Tensor], current: Tensor, c: int) -> Tensor:
        """The output at the position ``(B, 3, C, M)``, right at channels ``<= c``: channel ``c``'s means coupled to
        the values ``current`` ``(B, C)`` of the channels before it."""
        out, means, coefficients = state
        if self.coupled and c:
            out[:, 1, c] = self._coupled_mean(means, coefficients, current, c)
        return out


class SoftmaxHead(nn.Module):
    """Features of a pixel → K logits per channel, ``(B, K, C, ...)``: the head for codes (which have no order).

    Channel ``c``: ``1x1_c(elu(1x1_c(elu(u)) + Σ earlier_c(features of channels < c of the pixel)))``; the earlier
    channels enter only with sequential channels.

    Args:
        in_channels: h.
        channels: C.
        num_categories: K.
        features: E, the input features per channel.
        sequential: channel ``c`` sees the channels ``< c`` of its pixel.
    """

    def __init__(self, in_channels: int, channels: int, num_categories: int, features: int, sequential: bool) -> None:
        super().__init__()
        self.channels, self.features, self.num_categories = channels, features, num_categories
        self.proj = nn.Conv2d(in_channels, channels * in_channels, 1)
        self.first_earlier = 1 if sequential else channels  # the first channel that reads earlier ones
        self.earlier = nn.ModuleList(
            nn.Conv2d(c * features, in_channels, 1, bias=False) for c in range(self.first_earlier, channels)
        )
        self.out = nn.Conv2d(channels * in_channels, channels * num_categories, 1, groups=channels)

    def context(self, u: Tensor) -> Tensor:
        """``(B, h, H, W)`` → ``(B, C h, H, W)``, or one position ``(B, h)`` → ``(B, C h)``."""
        return _one_by_one(self.proj, F.elu(u))

    def output(self, context: Tensor, current: Tensor) -> Tensor:
        """``context`` ``(B, C h, H, W)`` and the pixel's input features ``current`` ``(B, C E, H, W)`` → logits
        ``(B, K, C, H, W)``; channel ``c`` reads ``current`` at channels ``< c`` only."""
        hidden = list(context.chunk(self.channels, dim=1))
        for c, earlier in enumerate(self.earlier, start=self.first_earlier):
            hidden[c] = hidden[c] + earlier(current[:, : c * self.features])
        logits = self.out(F.elu(torch.cat(hidden, dim=1)))  # (B, C K, H, W)
        return rearrange(logits, "b (c k) h w -> b k c h w", c=self.channels)

    def start_position(self, context: Tensor) -> tuple[Tensor, Tensor]:
        """One position's ``context`` ``(B, C h)`` → its hidden units per channel ``(B, C, h)`` and an output
        ``(B, K, C)`` that [`position_output`][position_output] fills one channel at a time."""
        batch = context.shape[0]
        return context.view(batch, self.channels, -1), context.new_empty(batch, self.num_categories, self.channels)

    def position_output(self, state: tuple[Tensor, Tensor], current: Tensor, c: int) -> Tensor:
        """The logits at the position ``(B, K, C)``, right at channel ``c`` (filled here from the features
        ``current`` ``(B, C E)`` of the channels before it) and at the channels filled before."""
        hidden, out = state
        h = hidden[:, c]
        if c >= self.first_earlier:
            h = h + _one_by_one(self.earlier[c - self.first_earlier], current[:, : c * self.features])
        rows = slice(c * self.num_categories, (c + 1) * self.num_categories)  # channel c's group of the last layer
        out[:, :, c] = F.linear(F.elu(h), self.out.weight[rows].flatten(1), self.out.bias[rows])
        return out


def _one_by_one(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """A 1x1 convolution on maps ``(B, in, H, W)``, or on single positions ``(B, in)`` as a linear map."""
    return conv(x) if x.ndim == 4 else F.linear(x, conv.weight.flatten(1), conv.bias)
