"""Gated PixelCNN (van den Oord et al., "Conditional Image Generation with PixelCNN Decoders", arXiv:1606.05328).

Two stacks remove the blind spot of the masked PixelCNN (figure 1 of the paper):

```
vertical   v_l[i] sees every row above i:  (k//2+1, k) conv, first layer on the input shifted down one row
horizontal h_l[i, j] sees row i left of j:  (1, k//2+1) conv, excluding the current value in the first layer
link       vertical pre-activation ─1x1─► horizontal pre-activation
gate       tanh(W_f * x + V_f c) · sigmoid(W_g * x + V_g c)      (equation 4; c = class embedding or vector)
out        h_{l+1} = h_l + 1x1(gate)  (residual, horizontal stack only);  skip = Σ_l 1x1(gate) ─► head ─► logits
```

Because the vertical stack at row ``i`` depends only on rows ``< i``, it needs no mask and can be computed once per
row when sampling; the horizontal stack's current-pixel tap is masked (per colour group with
``channel_order="sequential"``: R → G → B, as in PixelCNN).

Sampling with ``method="cached"`` uses [`GatedPixelCNNStepper`][GatedPixelCNNStepper] (arXiv:1704.06001).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from .. import checks
from ..registry import register
from .cached import CachedStepper, HeadStep
from .conv_prior import ConvPrior
from .layers import ConditionBias, MaskedConv2d, OutputHead, add_bias, gate, step_matrix

__all__ = ["GatedLayer", "GatedLayerRow", "GatedLayerStep", "GatedPixelCNN", "GatedPixelCNNStepper"]


class GatedLayer(nn.Module):
    """One gated layer with a vertical and a horizontal stack (figure 2 of arXiv:1606.05328).

    Args:
        in_channels: input feature maps (``C * E`` for the first layer, h after).
        channels: h, the output feature maps of each stack.
        kernel_size: k (odd): the vertical conv is ``(k//2 + 1, k)``, the horizontal one ``(1, k//2 + 1)``.
        first: the first layer shifts the vertical input down one row and masks the current value (mask A).
        colour_groups: colour groups of the horizontal masks.
        dropout: dropout probability on the horizontal gate's output, in training only (as PixelCNN++ does inside
            its residual blocks, arXiv:1701.05517); element-wise, so it keeps the layer causal.
    """

    def __init__(
        self, in_channels: int, channels: int, kernel_size: int, first: bool, colour_groups: int, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.first, self.pad = first, kernel_size // 2
        p = self.pad
        self.vertical = nn.Conv2d(in_channels, 2 * channels, (p + 1, kernel_size))
        self.horizontal = MaskedConv2d(
            in_channels, 2 * channels, (1, p + 1), "A" if first else "B", colour_groups, center=(0, p), out_halves=2
        )
        self.link = nn.Conv2d(2 * channels, 2 * channels, 1)
        self.out = MaskedConv2d(channels, 2 * channels, 1, "B", colour_groups, out_halves=2)  # residual and skip
        self.dropout = nn.Dropout(dropout)

    def forward(
        self, v: Tensor, h: Tensor, v_bias: Tensor | None = None, h_bias: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``v``, ``h`` ``(B, in, H, W)`` → new ``v``, new ``h`` and the skip output, each ``(B, h, H, W)``."""
        p, height = self.pad, v.shape[2]
        if self.first:  # rows i-p-1 .. i-1 only: pad one more row on top and drop the last output row
            v_pre = self.vertical(F.pad(v, (p, p, p + 1, 0)))[:, :, :height]  # (B, 2h, H, W)
        else:  # rows i-p .. i of a stack that already sees only rows above
            v_pre = self.vertical(F.pad(v, (p, p, p, 0)))  # (B, 2h, H, W)
        v_pre = add_bias(v_pre, v_bias)
        h_pre = add_bias(self.horizontal(h) + self.link(v_pre), h_bias)  # (B, 2h, H, W)
        residual, skip = self.out(self.dropout(gate(h_pre))).chunk(2, dim=1)
        return gate(v_pre), (residual if self.first else h + residual), skip


@register("prior", "gated_pixelcnn")
class GatedPixelCNN(ConvPrior):
    """Gated PixelCNN prior over ``(B, C, H, W)`` grids of K categories, with no blind spot (arXiv:1606.05328).

    Args:
        num_categories: K (the codebook size for codes, 256 for 8-bit pixels).
        channels: C, values per position (1 for codes or grey images, 3 for RGB).
        hidden_channels: h, the feature maps of each stack (at least C with sequential colour).
        num_layers: number of gated layers (the first one included).
        kernel_size: k of the layers after the first (odd).
        first_kernel_size: k of the first layer (odd).
        head_channels: width of the hidden 1x1 layer of the output head.
        channel_order: ``"sequential"`` (R → G → B within a pixel) or ``"parallel"`` (independent given the past).
        input_mode: ``"scale"``, ``"embed"`` or ``"auto"`` (``"scale"`` for ``K == 256``, else ``"embed"``).
        embed_dim: embedding width E for ``input_mode="embed"``.
        num_classes: condition on a class label ``(B,)``: a learned embedding added inside every gate.
        cond_dim: condition on a vector ``(B, cond_dim)``: a linear map added inside every gate.
        dropout: dropout probability inside every gated layer, in training only (see [`GatedLayer`][GatedLayer]).

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is out of range, a kernel size is even, ``dropout`` is outside ``[0, 1)``, a width is
            narrower than the colour groups, or ``channel_order`` or ``input_mode`` is unknown.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=512, num_classes=10)   # codes, by class
        >>> codes, labels = torch.randint(512, (4, 1, 7, 7)), torch.tensor([0, 3, 3, 9])
        >>> prior(codes, labels).shape
        torch.Size([4, 512, 1, 7, 7])
        >>> prior.sample(4, (7, 7), labels, method="cached").shape    # a cached stepper, rows computed once
        torch.Size([4, 1, 7, 7])
    """

    def __init__(
        self,
        num_categories: int = 512,
        channels: int = 1,
        hidden_channels: int = 64,
        num_layers: int = 15,
        kernel_size: int = 3,
        first_kernel_size: int = 7,
        head_channels: int = 256,
        channel_order: str = "sequential",
        input_mode: str = "auto",
        embed_dim: int = 32,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__(num_categories, channels, channel_order, input_mode, embed_dim, num_classes, cond_dim)
        checks.check_positive(hidden_channels, name="hidden_channels", integer=True)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        checks.check_positive(head_channels, name="head_channels", integer=True)
        checks.check_positive(num_layers, name="num_layers", integer=True)
        for name, k in (("kernel_size", kernel_size), ("first_kernel_size", first_kernel_size)):
            checks.check_positive(k, name=name, integer=True)
            if k % 2 == 0:
                raise ValueError(f"{name} must be odd, got {k}")
        groups = self.colour_groups
        if min(hidden_channels, head_channels) < groups:
            raise ValueError(
                f"hidden_channels and head_channels must be >= {groups} (one feature group per colour channel), "
                f"got {hidden_channels} and {head_channels}"
            )
        self.layers = nn.ModuleList(
            GatedLayer(
                self.input.out_channels if index == 0 else hidden_channels,
                hidden_channels,
                first_kernel_size if index == 0 else kernel_size,
                index == 0,
                groups,
                dropout,
            )
            for index in range(num_layers)
        )
        self.head = OutputHead(hidden_channels, head_channels, channels * num_categories, groups)  # (B, C*K, H, W)
        self.cond_bias = ConditionBias([2 * hidden_channels] * (2 * num_layers), num_classes, cond_dim)

    TINY_CONFIG = dict(
        num_categories=16, hidden_channels=8, num_layers=3, first_kernel_size=3, head_channels=16, embed_dim=4
    )
    """16 categories, 8 feature maps per stack, three layers, a 3x3 first layer."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, C, H, W)`` for ``x`` ``(B, C, H, W)`` int64.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: as in [`check_cond`][vqgen.interfaces.AutoregressivePrior.check_cond].

        Returns:
            ``(B, K, C, H, W)`` logits, each position seeing every value before it (no blind spot).

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=16, num_layers=3, first_kernel_size=3)
            >>> x = torch.randint(16, (1, 1, 5, 5))
            >>> changed = x.clone()
            >>> changed[0, 0, 0, 4] = (x[0, 0, 0, 4] + 1) % 16          # up and to the right of (1, 1) ...
            >>> bool((prior(x)[..., 1, 1] != prior(changed)[..., 1, 1]).any())   # ... in view: no blind spot
            True
        """
        self.check_input(x, cond)
        biases = self.cond_bias(cond)
        v = h = self.input(x)  # (B, C*E, H, W)
        skip = None
        for index, layer in enumerate(self.layers):
            v, h, s = layer(v, h, biases[2 * index], biases[2 * index + 1])
            skip = s if skip is None else skip + s
        return self.logits_from_head(self.head(skip))


class GatedLayerRow(NamedTuple):
    """What a cached step needs of one [`GatedLayer`][GatedLayer] at the start of a row (its vertical stack and link).

    Attributes:
        rows: the vertical kernel's height ``k//2 + 1``.
        v_weight: ``(2h, in, k//2+1, k)``, the vertical kernel.
        v_const: ``(2h,)`` or ``(B, 2h)``: the vertical bias plus its condition bias.
        link: ``(2h, 2h, 1, 1)``, the vertical → horizontal 1x1 kernel, its ``tanh`` half doubled (see
            [`GatedPixelCNNStepper`][GatedPixelCNNStepper]).
        h_const: ``(2h,)`` or ``(B, 2h)``: horizontal bias + link bias + condition bias, ``tanh`` half doubled.
        row: ``(W, B, 2h)``, written here, read by every step of the row (shared with
            [`GatedLayerStep`][GatedLayerStep]).
        v_out: ``(B, h, H + p, W + 2p)`` cache of this layer's gated vertical output (``None`` for the last layer).
        next_pad: the next layer's ``k // 2`` (``None`` for the last layer).
    """

    rows: int
    v_weight: Tensor
    v_const: Tensor
    link: Tensor
    h_const: Tensor
    row: Tensor
    v_out: Tensor | None
    next_pad: int | None


class GatedLayerStep(NamedTuple):
    """What a cached step needs of one [`GatedLayer`][GatedLayer] at ``(i, j)``.

    Attributes:
        h_weight: ``((k//2+1) * in, 2h)``, the masked horizontal kernel as a step matrix, ``tanh`` half doubled.
        row: ``(W, B, 2h)``, the row term (vertical link + horizontal bias + condition) of the current row.
        pre: ``(B, 2h)``, the pre-activations ``[2a, b]``: the first ``2h`` columns of ``slot``.
        product: ``(B, h)``, ``slot``'s first ``h`` columns, where ``σ(2a) · σ(b)`` is written in place.
        sigmoid_gate: ``(B, h)``, ``slot``'s next ``h`` columns, ``σ(b)``.
        slot: ``(B, 2h + 1)``: this layer's slot of the gate buffer, ``[σ(2a) σ(b), σ(b), 1]``.
        residual: ``(2h + 1, h)``, the residual half of the masked 1x1 output layer for the slot (``2 W; -W; bias``;
            ``None`` for the last layer, whose residual stream nothing reads).
        h_out: ``(B, H, W + p, h)`` channels-last cache of this layer's horizontal output (``None`` for the last).
        out_row: ``(B, (W + p) * h)``, the current row of ``h_out`` as one matrix (set at each row's start), so that
            a step's output and the next layer's window are one slice each.
        next_pad: the next layer's ``k // 2`` (``None`` for the last layer).
    """

    h_weight: Tensor
    row: Tensor
    pre: Tensor
    product: Tensor
    sigmoid_gate: Tensor
    slot: Tensor
    residual: Tensor | None
    h_out: Tensor | None
    out_row: Tensor | None
    next_pad: int | None


def _for_slot(weight: Tensor, bias: Tensor) -> Tensor:
    """A 1x1 layer's step matrix ``(h, out)`` on the gate and its bias → ``(2h + 1, out)`` on a slot
    ``[σ(2a) σ(b), σ(b), 1]``, since ``tanh(a) σ(b) = 2 σ(2a) σ(b) - σ(b)``."""
    return torch.cat([2 * weight, -weight, bias[None]]).contiguous()


class GatedPixelCNNStepper(CachedStepper):
    """Cached sampling for [`GatedPixelCNN`][GatedPixelCNN] (arXiv:1704.06001).

    At the start of row ``i`` the vertical stack of every layer is computed for the whole row (one convolution over
    the ``k//2 + 1`` cached rows it reads), and with it each layer's row term: link + horizontal bias + condition
    ``(W, B, 2h)`` (patches of channels-last caches times the kernel as one matrix product measured slower).

    A step then runs the horizontal stack at ``(i, j)`` only, in four operations per layer on preallocated buffers
    (on one thread, see [`one_thread`][vqgen.priors.cached.one_thread]): a ``(B, (k//2+1) * in)`` window of the
    channels-last cache (a view, no copy) times the masked kernel plus the row term, written into the layer's slot of
    one gate buffer ``(B, L, 2h + 1)``; one ``sigmoid`` over it; a product; the residual 1x1 layer written straight
    into the next layer's cache. The gate is never formed: with the ``tanh`` half of the pre-activation doubled
    (in the kernel, the link and the biases), ``tanh(a) σ(b) = 2 σ(2a) σ(b) - σ(b)``, so the slot keeps
    ``[σ(2a) σ(b), σ(b), 1]`` and the 1x1 layers after it take ``2 W; -W; bias`` (one ``sigmoid`` over ``2h``
    values costs a quarter of a ``tanh`` over ``h``). The skip outputs of all layers are one matrix product of the
    whole gate buffer at the end: ``Σ_l 1x1_l(gate_l) = slots (B, L (2h+1)) @ skips``, all layers' skip kernels
    and biases stacked.
    """

    def start(self, batch: int, dtype: torch.dtype, device: torch.device) -> None:
        prior: GatedPixelCNN = self.prior
        H, W = self.height, self.width
        biases = prior.cond_bias(self.cond)
        layers = prior.layers
        pads = [layer.pad for layer in layers]
        features = prior.input.out_channels
        hidden = layers[0].link.in_channels // 2
        zeros = dict(dtype=dtype, device=device)
        # Input features: channels-last for the horizontal stack (left pad), channels-first for the vertical one.
        self.h_in = torch.zeros(batch, H, W + pads[0], features, **zeros)
        self.v_in = torch.zeros(batch, features, H + pads[0] + 1, W + 2 * pads[0], **zeros)
        self.p0 = pads[0]
        self.slots = torch.ones(batch, len(layers), 2 * hidden + 1, **zeros)  # [..., 2h] stays the constant 1
        double_tanh = torch.cat([torch.full((hidden,), 2.0), torch.ones(hidden)]).to(**zeros)  # (2h,)
        skips = []
        self.rows: list[GatedLayerRow] = []
        self.steps: list[GatedLayerStep] = []
        for index, layer in enumerate(layers):
            nxt = pads[index + 1] if index + 1 < len(layers) else None
            v_out = torch.zeros(batch, hidden, H + nxt, W + 2 * nxt, **zeros) if nxt is not None else None
            h_out = torch.zeros(batch, H, W + nxt, hidden, **zeros) if nxt is not None else None
            v_bias, h_bias = biases[2 * index], biases[2 * index + 1]
            h_const = layer.horizontal.bias + layer.link.bias  # (2h,)
            h_const = h_const if h_bias is None else h_bias + h_const  # (2h,) or (B, 2h)
            row = torch.zeros(W, batch, 2 * hidden, **zeros)  # row[j] is a contiguous (B, 2h)
            self.rows.append(
                GatedLayerRow(
                    rows=layer.vertical.kernel_size[0],
                    v_weight=layer.vertical.weight,
                    v_const=layer.vertical.bias if v_bias is None else layer.vertical.bias + v_bias,  # (2h,)|(B, 2h)
                    link=layer.link.weight * double_tanh[:, None, None, None],
                    h_const=h_const * double_tanh,
                    row=row,
                    v_out=v_out,
                    next_pad=nxt,
                )
            )
            out = _for_slot(step_matrix(layer.out.masked_weight()), layer.out.bias)  # (2h + 1, 2h)
            residual, skip = out[:, :hidden], out[:, hidden:]
            skips.append(skip)
            slot = self.slots[:, index]  # (B, 2h + 1)
            self.steps.append(
                GatedLayerStep(
                    h_weight=step_matrix(layer.horizontal.masked_weight()) * double_tanh,  # ((k//2+1)*in, 2h)
                    row=row,
                    pre=slot[:, : 2 * hidden],
                    product=slot[:, :hidden],
                    sigmoid_gate=slot[:, hidden : 2 * hidden],
                    slot=slot,
                    residual=residual.contiguous() if nxt is not None else None,
                    h_out=h_out,
                    out_row=None,
                    next_pad=nxt,
                )
            )
        self.skip = torch.cat(skips).contiguous()  # (L (2h + 1), h): every layer's skip kernel and bias
        self.head = HeadStep.of(prior.head)
        self.hidden = hidden

    def store(self, features: Tensor, i: int, j: int, channels: slice) -> None:
        p0 = self.p0
        self.h_in[:, i, j + p0, channels] = features
        self.v_in[:, channels, i + p0 + 1, j + p0] = features

    def row(self, i: int) -> None:
        width, batch = self.width, self.batch
        v = self.v_in
        for layer in self.rows:
            v_pre = F.conv2d(v[:, :, i : i + layer.rows], layer.v_weight) + layer.v_const[..., None, None]  # (B,2h,1,W)
            row = F.conv2d(v_pre, layer.link) + layer.h_const[..., None, None]  # (B, 2h, 1, W)
            layer.row.copy_(rearrange(row, "b c 1 w -> w b c"))
            if layer.v_out is not None:
                p = layer.next_pad
                layer.v_out[:, :, i + p, p : p + width] = gate(v_pre[:, :, 0])
                v = layer.v_out
        # Row i of each channels-last cache as one (B, (W + p) * channels) matrix: a step's window is one slice.
        self.in_row = self.h_in[:, i].reshape(batch, -1)
        self.steps = [
            step if step.h_out is None else step._replace(out_row=step.h_out[:, i].reshape(batch, -1))
            for step in self.steps
        ]

    def pixel(self, i: int, j: int) -> Tensor:
        batch, hidden = self.batch, self.hidden
        features = self.h_in.shape[-1]
        window = self.in_row[:, j * features : (j + self.p0 + 1) * features]  # (B, (p0+1)*C*E), a view
        h = None
        for step in self.steps:
            torch.addmm(step.row[j], window, step.h_weight, out=step.pre)  # (B, 2h): [2a, b]
            step.pre.sigmoid_()
            step.product.mul_(step.sigmoid_gate)  # the slot is now [σ(2a) σ(b), σ(b), 1]
            if step.residual is not None:
                p, out_row = step.next_pad, step.out_row
                target = out_row[:, (j + p) * hidden : (j + p + 1) * hidden]  # (B, h): the next layer's input
                if h is None:
                    torch.mm(step.slot, step.residual, out=target)
                else:
                    torch.addmm(h, step.slot, step.residual, out=target)
                h, window = target, out_row[:, j * hidden : (j + p + 1) * hidden]  # (B, (p+1)*h), a view
        skip = self.slots.view(batch, -1) @ self.skip  # (B, h): Σ over layers of skip 1x1 + bias
        return self.head(skip)  # (B, C*K)


GatedPixelCNN.stepper_class = GatedPixelCNNStepper
