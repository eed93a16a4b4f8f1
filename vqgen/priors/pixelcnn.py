"""Masked PixelCNN (van den Oord et al., "Pixel Recurrent Neural Networks", arXiv:1601.06759, section 3.5).

```
x (B,C,H,W) int64 ─► input ─► 7x7 mask-A conv ─► residual blocks (mask B, figure 5) ─► head ─► (B,K,C,H,W)
                      (B, C*E, H, W)        each: ReLU, 1x1 h→h/2, ReLU, kxk masked, ReLU, 1x1 h/2→h, + x
```

Colour channels (figure 4): with ``channel_order="sequential"`` every feature map belongs to one of C contiguous
groups, and the masks let R see only earlier pixels, G also the current R, B the current R and G. With
``"parallel"`` the groups are not split and the C values of a pixel are predicted independently from earlier pixels.

A stack of masked convolutions has a *blind spot*: positions up and to the right of the current one that no path
reaches (the row above beyond ``first_kernel_size // 2`` columns to the right, and a growing wedge above it). The
Gated PixelCNN ([`vqgen.priors.gated_pixelcnn`][vqgen.priors.gated_pixelcnn]) removes it.

Sampling with ``method="cached"`` uses [`PixelCNNStepper`][PixelCNNStepper] (arXiv:1704.06001): every layer keeps a
cache of its activations, and a step computes each layer only at the current position from the causal window of the
cache below it — one matrix product per layer.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import checks
from ..registry import register
from .cached import CachedStepper, HeadStep, StepLinear
from .conv_prior import ConvPrior
from .layers import ConditionBias, MaskedConv2d, OutputHead, add_bias, combine_bias, step_matrix

__all__ = ["BlockStep", "PixelCNN", "PixelCNNStepper", "ResidualBlock"]


class ResidualBlock(nn.Module):
    """Figure 5 of arXiv:1601.06759: ``x + 1x1(ReLU(kxk_B(ReLU(1x1(ReLU(x))))))`` with mask-B convolutions.

    Args:
        channels: h, the width of the residual stream; the bottleneck has ``h // 2``.
        kernel_size: k of the masked convolution.
        colour_groups: colour groups of the masks.
    """

    def __init__(self, channels: int, kernel_size: int, colour_groups: int) -> None:
        super().__init__()
        half = channels // 2
        self.down = MaskedConv2d(channels, half, 1, "B", colour_groups)
        self.conv = MaskedConv2d(half, half, kernel_size, "B", colour_groups)
        self.up = MaskedConv2d(half, channels, 1, "B", colour_groups)

    def forward(self, x: Tensor, cond_bias: Tensor | None = None) -> Tensor:
        """``(B, h, H, W)`` → ``(B, h, H, W)``; ``cond_bias`` ``(B, h // 2)`` is added after the masked conv."""
        a = self.down(F.relu(x))  # (B, h/2, H, W)
        a = add_bias(self.conv(F.relu(a)), cond_bias)
        return x + self.up(F.relu(a))


@register("prior", "pixelcnn")
class PixelCNN(ConvPrior):
    """Masked PixelCNN prior over ``(B, C, H, W)`` grids of K categories (arXiv:1601.06759).

    Args:
        num_categories: K (256 for 8-bit pixels, the codebook size for codes).
        channels: C, values per position (1 for codes or grey images, 3 for RGB).
        hidden_channels: h, the width of the residual stream (a multiple of 2; with sequential colour, the
            bottleneck ``h // 2`` must be at least C).
        num_layers: number of residual blocks after the first layer.
        kernel_size: k of the masked convolutions in the blocks (odd).
        first_kernel_size: k of the first, mask-A convolution (odd; 7 in the paper).
        head_channels: width of the hidden 1x1 layer of the output head.
        channel_order: ``"sequential"`` (R → G → B within a pixel) or ``"parallel"`` (independent given the past).
        input_mode: how indices enter the network: ``"scale"`` (``x / (K - 1)``), ``"embed"`` (learned), or
            ``"auto"``: ``"scale"`` for ``K == 256``, ``"embed"`` otherwise (see
            [`vqgen.priors.embedding`][vqgen.priors.embedding]).
        embed_dim: embedding width E for ``input_mode="embed"``.
        num_classes: condition on a class label ``(B,)`` through a learned per-layer, per-channel bias.
        cond_dim: condition on a vector ``(B, cond_dim)`` through a linear per-layer, per-channel bias.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is out of range, a kernel size is even, ``hidden_channels`` is odd or too narrow for
            the colour groups, or ``channel_order`` or ``input_mode`` is unknown.

    Examples:
        >>> import torch, vqgen
        >>> pixels = vqgen.build("prior", "pixelcnn", num_categories=256, channels=3, hidden_channels=16, num_layers=2)
        >>> x = torch.randint(256, (2, 3, 8, 8))                   # RGB values, R → G → B within each pixel
        >>> pixels(x).shape, pixels.bits_per_dim(x).shape
        (torch.Size([2, 256, 3, 8, 8]), torch.Size([2]))
        >>> vqgen.build("prior", "pixelcnn", kernel_size=4)
        Traceback (most recent call last):
        ValueError: kernel_size must be odd, got 4
    """

    def __init__(
        self,
        num_categories: int = 256,
        channels: int = 1,
        hidden_channels: int = 128,
        num_layers: int = 15,
        kernel_size: int = 3,
        first_kernel_size: int = 7,
        head_channels: int = 1024,
        channel_order: str = "sequential",
        input_mode: str = "auto",
        embed_dim: int = 32,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__(num_categories, channels, channel_order, input_mode, embed_dim, num_classes, cond_dim)
        checks.check_positive(hidden_channels, name="hidden_channels", integer=True)
        checks.check_positive(head_channels, name="head_channels", integer=True)
        if num_layers < 0 or not isinstance(num_layers, int):
            raise ValueError(f"num_layers must be an int >= 0, got {num_layers!r}")
        for name, k in (("kernel_size", kernel_size), ("first_kernel_size", first_kernel_size)):
            checks.check_positive(k, name=name, integer=True)
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd, got {k}")
        groups = self.colour_groups
        if hidden_channels % 2 or hidden_channels // 2 < groups or head_channels < groups:
            raise ValueError(
                f"hidden_channels must be even with hidden_channels // 2 >= {groups} and head_channels >= {groups} "
                f"(one feature group per colour channel), got hidden_channels={hidden_channels}, "
                f"head_channels={head_channels}"
            )
        self.first = MaskedConv2d(self.input.out_channels, hidden_channels, first_kernel_size, "A", groups)
        self.blocks = nn.ModuleList(ResidualBlock(hidden_channels, kernel_size, groups) for _ in range(num_layers))
        self.head = OutputHead(hidden_channels, head_channels, channels * num_categories, groups)  # (B, C*K, H, W)
        self.cond_bias = ConditionBias(
            [hidden_channels] + [hidden_channels // 2] * num_layers, num_classes=num_classes, cond_dim=cond_dim
        )

    TINY_CONFIG = dict(
        num_categories=16, hidden_channels=12, num_layers=2, first_kernel_size=3, head_channels=16, embed_dim=4
    )
    """16 categories, a 12-wide stream, two blocks, a 3x3 first layer."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, C, H, W)`` for ``x`` ``(B, C, H, W)`` int64.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: as in [`check_cond`][vqgen.interfaces.AutoregressivePrior.check_cond].

        Returns:
            ``(B, K, C, H, W)`` logits; position ``(i, j)`` depends only on the values before it.

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn", num_categories=16, hidden_channels=8, num_layers=1)
            >>> x = torch.randint(16, (1, 1, 5, 5))
            >>> changed = x.clone()
            >>> changed[0, 0, 2, 2] = (x[0, 0, 2, 2] + 1) % 16          # change one value ...
            >>> torch.equal(prior(x)[..., :2, :], prior(changed)[..., :2, :])   # ... the rows above do not see it
            True
        """
        self.check_input(x, cond)
        biases = self.cond_bias(cond)
        r = add_bias(self.first(self.input(x)), biases[0])  # (B, h, H, W)
        for block, bias in zip(self.blocks, biases[1:]):
            r = block(r, bias)
        return self.logits_from_head(self.head(r))


class BlockStep(NamedTuple):
    """A [`ResidualBlock`][ResidualBlock] at one position: its three layers as step matrices, and its masked conv's
    cache.

    Attributes:
        down: the 1x1 ``h → h/2`` layer.
        cache: ``(B, H + p, W + 2 p, h/2)`` channels-last, zero-padded inputs of the masked conv (``p = k // 2``).
        kernel_size: k of the masked conv.
        conv: the masked ``k x k`` conv over the causal rows ``i - p .. i`` of its window (condition bias folded in).
        up: the 1x1 ``h/2 → h`` layer.
    """

    down: StepLinear
    cache: Tensor
    kernel_size: int
    conv: StepLinear
    up: StepLinear


class PixelCNNStepper(CachedStepper):
    """Cached sampling for [`PixelCNN`][PixelCNN] (arXiv:1704.06001).

    Caches, channels-last and zero-padded so that every window is a plain slice: the input features
    ``(B, H + p0, W + 2 p0, C*E)`` read by the first layer, and each block's masked-conv input ``(B, H + p, W + 2 p,
    h/2)``. A step gathers, for each masked conv, only the causal rows ``i - k//2 .. i`` of its k x k window — the
    current position of that input has just been computed in the same step — and multiplies by the masked kernel
    reshaped to a matrix. 1x1 layers act on the current position only.
    """

    def start(self, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        prior: PixelCNN = self.prior
        H, W = self.height, self.width
        biases = prior.cond_bias(self.cond)
        self.k0 = prior.first.kernel_size[1]
        self.p0 = self.k0 // 2
        self.features = torch.zeros(
            batch, H + self.p0, W + 2 * self.p0, prior.input.out_channels, dtype=dtype, device=device
        )
        self.first = StepLinear(
            step_matrix(prior.first.masked_weight(), self.p0 + 1), combine_bias(prior.first.bias, biases[0], batch)
        )
        self.blocks: list[BlockStep] = []
        for block, bias in zip(prior.blocks, biases[1:]):
            k = block.conv.kernel_size[1]
            p = k // 2
            cache = torch.zeros(batch, H + p, W + 2 * p, block.conv.in_channels, dtype=dtype, device=device)
            self.blocks.append(
                BlockStep(
                    down=StepLinear(step_matrix(block.down.masked_weight()), block.down.bias),
                    cache=cache,
                    kernel_size=k,
                    conv=StepLinear(
                        step_matrix(block.conv.masked_weight(), p + 1), combine_bias(block.conv.bias, bias, batch)
                    ),
                    up=StepLinear(step_matrix(block.up.masked_weight()), block.up.bias),
                )
            )
        self.head = HeadStep.of(prior.head)

    def store(self, features: Tensor, i: int, j: int, channels: slice) -> None:
        self.features[:, i + self.p0, j + self.p0, channels] = features

    def pixel(self, i: int, j: int) -> Tensor:
        batch, k0, p0 = self.batch, self.k0, self.p0
        window = self.features[:, i : i + p0 + 1, j : j + k0].reshape(batch, -1)  # (B, (p0+1)*k0*C*E)
        r = torch.addmm(self.first.bias, window, self.first.weight)  # (B, h)
        for down, cache, k, conv, up in self.blocks:
            p = k // 2
            cache[:, i + p, j + p] = torch.addmm(down.bias, r.relu(), down.weight).relu_()  # (B, h/2)
            window = cache[:, i : i + p + 1, j : j + k].reshape(batch, -1)  # (B, (p+1)*k*h/2)
            a = torch.addmm(conv.bias, window, conv.weight).relu_()  # (B, h/2)
            r = torch.addmm(r, a, up.weight).add_(up.bias)  # (B, h)
        return self.head(r)  # (B, C*K)


PixelCNN.stepper_class = PixelCNNStepper
