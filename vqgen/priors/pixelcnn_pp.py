"""PixelCNN++ (Salimans, Karpathy, Chen, Kingma, arXiv:1701.05517; reference code openai/pixel-cnn).

```
x ─► input ─► [2x−1 | 1] ─► u  = down-shifted 2x3 conv               (rows above)
                           ul = down-shifted 1x3 + right-shifted 2x1 (rows above, and the row to the left)
up pass     3 resolutions × n gated resnets per stream (ul also reads u), strided 2x2 steps between them ──┐ shortcut
down pass   3 resolutions, n / n+1 / n+1 gated resnets reading the up pass's outputs, transposed steps ◄─┘ connections
head        elu(ul) ─► 1x1 ─► a discretised logistic mixture per pixel (R, G, B coupled), or a K-way softmax
```

What differs from the masked priors of this package: shifted "down" / "down-right" convolutions instead of masks (no
blind spot), gated residual blocks with ``concat_elu`` and dropout, a U-Net of two strided steps with shortcut
connections (section 2.4), and the likelihood: K ordered values per sub-pixel as a mixture of M discretised logistics
(section 2.1, [`vqgen.logistic_mixture`][vqgen.logistic_mixture]), the colour channels coupled in the output (section
2.2: the network sees no channel of the current pixel; the means of G and B depend linearly on its R and G).

**Head.** ``head="auto"``: the mixture when the values are ordered (``input_mode="scale"``, this prior's default: the
value scaled to ``[-1, 1]`` is the input, as in the paper), a K-way softmax when they are codes (``input_mode=
"embed"``, which [`build_code_prior`][vqgen.priors.code_prior.build_code_prior] sets; a mixture assumes an order that
codes do not have, so ``head="mixture"`` with embedded inputs is an error). The contract tests build the prior with
K = 11 ordered levels, so they test the mixture.

**Sizes.** The constructor defaults are the paper's CIFAR-10 model (``num_filters=160``, ``num_resnet=5``,
``num_mixtures=10``, ``dropout=0.5``; 53.6 M parameters for colour): far too slow to train on a CPU, so
[`CPU_CONFIG`][CPU_CONFIG] is a small configuration for CPUs (the benchmarks use it). Defaults are the paper's, as
everywhere in vqgen, so that a configuration names what it changes.

Sampling with ``method="cached"`` uses [`PixelCNNppStepper`][vqgen.priors.pixelcnn_pp_stepper.PixelCNNppStepper]:
every layer cached, the strided ones included (arXiv:1704.06001), samples identical to naive sampling.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .. import checks
from ..likelihoods import Categorical
from ..logistic_mixture import DiscretizedLogisticMixture
from ..registry import register
from .conv_prior import ConvPrior
from .layers import ConditionBias, add_bias
from .pixelcnn_pp_layers import (
    LEVELS,
    GatedResnet,
    MixtureHead,
    Op,
    ShiftedConv2d,
    SoftmaxHead,
    Term,
    concat_elu,
    level_sizes,
)
from .pixelcnn_pp_stepper import PixelCNNppStepper, Schedule

__all__ = ["CPU_CONFIG", "HEADS", "PixelCNNpp", "run_ops"]

HEADS = ("auto", "mixture", "softmax")
"""The output heads: ``"mixture"`` (discretised logistics, ordered values), ``"softmax"`` (K-way, codes), ``"auto"``."""

CPU_CONFIG = dict(num_filters=32, num_resnet=1, num_mixtures=5, dropout=0.0)
"""A configuration for CPUs: 32 filters (the paper: 160), one gated resnet per resolution and stream (5), five
mixture components (10), no dropout (the paper's 0.5 fights over-fitting in days of training; minutes on a CPU are
far from that). For colour, 0.57 M parameters against the paper's 53.6 M: about 1/90, and as many fewer FLOPs per
pixel."""


def run_ops(
    ops: Sequence[Op], values: dict[str, Tensor], sizes: Sequence[Sequence[int]], biases: Sequence[Tensor | None],
    dropout: nn.Module,
) -> dict[str, Tensor]:  # fmt: skip
    """Run ``ops`` on whole feature maps: ``values`` holds the ``"input"`` node ``(B, D, H, W)``; returns every
    node. ``biases`` are the condition biases ``(B, D)`` (or ``None``) that ops refer to by index."""
    acts: dict[str, Tensor] = {}

    def read(term: Term) -> Tensor:
        if not term.act:
            return values[term.source]
        if term.source not in acts:
            acts[term.source] = concat_elu(values[term.source])
        return acts[term.source]

    for op in ops:
        pre = sum(term.conv(read(term), sizes[op.level]) for term in op.terms)
        if op.cond is not None:
            pre = add_bias(pre, biases[op.cond])
        if op.kind == "concat_elu":
            values[op.out] = dropout(concat_elu(pre))
        elif op.kind == "gate":
            a, b = pre.chunk(2, dim=1)
            values[op.out] = values[op.residual] + a * torch.sigmoid(b)
        else:
            values[op.out] = pre
    return values


@register("prior", "pixelcnn_pp")
class PixelCNNpp(ConvPrior):
    """PixelCNN++ prior over ``(B, C, H, W)`` grids of K ordered values (pixels) or K codes (arXiv:1701.05517).

    Args:
        num_categories: K (256 for 8-bit pixels; any K >= 2 ordered levels; the codebook size for codes).
        channels: C, values per position (1 for codes or grey images, 3 for RGB).
        num_filters: h, the width of both streams (``nr_filters``; the paper: 160).
        num_resnet: gated resnets per resolution and stream (``nr_resnet``; the paper: 5).
        num_mixtures: M, logistic components of the mixture head (``nr_logistic_mix``; the paper: 10).
        head: ``"mixture"``, ``"softmax"`` or ``"auto"`` (see the module docstring).
        dropout: dropout probability inside every gated resnet, in training only (the paper: 0.5).
        channel_order: ``"sequential"`` (G depends on the pixel's R, B on R and G: coupled means, or the softmax
            head's earlier-channel terms) or ``"parallel"`` (the channels of a pixel independent given the past).
        input_mode: ``"scale"`` (the value on ``[-1, 1]``; the default: ordered values), ``"embed"`` (a learned
            vector per value: codes) or ``"auto"`` (``"scale"`` for K = 256, else ``"embed"``).
        embed_dim: E for ``input_mode="embed"``.
        num_classes: condition on a class label ``(B,)``: a learned bias inside every gated resnet.
        cond_dim: condition on a vector ``(B, cond_dim)``: a linear bias inside every gated resnet.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is out of range, ``dropout`` is outside ``[0, 1)``, ``head`` is unknown, or
            ``head="mixture"`` is asked of codes (``input_mode="embed"``), which have no order.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.priors.pixelcnn_pp import CPU_CONFIG
        >>> pixels = vqgen.build("prior", "pixelcnn_pp", channels=3, **CPU_CONFIG)     # K = 256, 5 logistics
        >>> images = torch.randint(256, (2, 3, 8, 8))
        >>> pixels(images).shape                  # mixture logits, coupled means, log-scales
        torch.Size([2, 3, 3, 5, 8, 8])
        >>> pixels.logits(images).shape           # exact log-probabilities of every bin
        torch.Size([2, 256, 3, 8, 8])
        >>> codes = vqgen.build("prior", "pixelcnn_pp", num_categories=64, input_mode="embed", **CPU_CONFIG)
        >>> codes.head_kind, codes(torch.randint(64, (2, 1, 8, 8))).shape            # a softmax over codes
        ('softmax', torch.Size([2, 64, 1, 8, 8]))
    """

    def __init__(
        self,
        num_categories: int = 256,
        channels: int = 1,
        num_filters: int = 160,
        num_resnet: int = 5,
        num_mixtures: int = 10,
        head: str = "auto",
        dropout: float = 0.5,
        channel_order: str = "sequential",
        input_mode: str = "scale",
        embed_dim: int = 32,
        num_classes: int | None = None,
        cond_dim: int | None = None,
    ) -> None:
        super().__init__(num_categories, channels, channel_order, input_mode, embed_dim, num_classes, cond_dim)
        checks.check_positive(num_filters, name="num_filters", integer=True)
        checks.check_positive(num_mixtures, name="num_mixtures", integer=True)
        if isinstance(num_resnet, bool) or not isinstance(num_resnet, int) or num_resnet < 0:
            raise ValueError(f"num_resnet must be an int >= 0, got {num_resnet!r}")
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be a probability in [0, 1), got {dropout!r}")
        if head not in HEADS:
            raise ValueError(f"head must be one of {list(HEADS)}, got {head!r}")
        ordered = self.input.mode == "scale"
        if head == "mixture" and not ordered:
            raise ValueError(
                "head='mixture' models ordered values, but input_mode='embed' treats them as codes, which have no "
                "order; use head='softmax' (or 'auto') for a prior over codes, or input_mode='scale' for pixels"
            )
        self.head_kind = head if head != "auto" else ("mixture" if ordered else "softmax")
        self.num_filters, self.num_resnet = num_filters, num_resnet
        self.dropout = nn.Dropout(dropout)
        in_features = self.input.out_channels + 1  # the values (or their embeddings) and a channel of ones
        self.first_u = ShiftedConv2d(in_features, num_filters, "down", (2, 3), shift=(1, 0))
        self.first_ul_above = ShiftedConv2d(in_features, num_filters, "down", (1, 3), shift=(1, 0))
        self.first_ul_left = ShiftedConv2d(in_features, num_filters, "down_right", (2, 1), shift=(0, 1))
        self.blocks = nn.ModuleList()
        self.resample = nn.ModuleList()
        self.ops = self._build_network()
        self._schedules: dict[tuple[int, int, torch.device], Schedule] = {}
        gated = sum(op.kind == "gate" for op in self.ops)
        self.cond_bias = ConditionBias([2 * num_filters] * gated, num_classes, cond_dim)
        if self.head_kind == "mixture":
            self.head = MixtureHead(num_filters, channels, num_mixtures, self.sequential_channels)
            self.likelihood = DiscretizedLogisticMixture(
                num_categories, channels, num_mixtures, self.sequential_channels
            )
        else:
            features, sequential = self.input.embed_dim, self.sequential_channels
            self.head = SoftmaxHead(num_filters, channels, num_categories, features, sequential)
            self.likelihood = Categorical()

    TINY_CONFIG = dict(num_categories=16, num_filters=8, num_resnet=1, num_mixtures=3, dropout=0.0, embed_dim=4)
    """16 ordered values, 8 filters, one resnet per resolution and stream, 3 logistics, no dropout."""

    def _block(self, direction: str, num_aux: int) -> GatedResnet:
        self.blocks.append(GatedResnet(self.num_filters, direction, num_aux))
        return self.blocks[-1]

    def _resample(self, direction: str, transposed: bool) -> ShiftedConv2d:
        h = self.num_filters
        self.resample.append(ShiftedConv2d(h, h, direction, stride=2, transposed=transposed))
        return self.resample[-1]

    def _build_network(self) -> list[Op]:
        """Create the layers and wire them, as ``pixel_cnn_pp/model.py`` does: the up pass pushes every output of
        both streams on a stack of shortcuts, the down pass pops one per gated resnet."""
        n, cond = self.num_resnet, itertools.count()
        ops = [
            Op("u", (Term(self.first_u, "input"),), "linear", 0),
            Op("ul", (Term(self.first_ul_above, "input"), Term(self.first_ul_left, "input")), "linear", 0),
        ]
        u, ul = "u", "ul"
        shortcuts = [(u, ul)]
        for level in range(LEVELS):
            if level:
                ops.append(Op(f"up{level}.u", (Term(self._resample("down", False), u),), "linear", level))
                ops.append(Op(f"up{level}.ul", (Term(self._resample("down_right", False), ul),), "linear", level))
                u, ul = f"up{level}.u", f"up{level}.ul"
                shortcuts.append((u, ul))
            for k in range(n):
                ops += self._block("down", 0).ops(u, (), f"up{level}.{k}.u", level, next(cond))
                u = f"up{level}.{k}.u"
                ops += self._block("down_right", 1).ops(ul, (u,), f"up{level}.{k}.ul", level, next(cond))
                ul = f"up{level}.{k}.ul"
                shortcuts.append((u, ul))
        u, ul = shortcuts.pop()
        for level in reversed(range(LEVELS)):
            if level < LEVELS - 1:
                ops.append(Op(f"down{level}.u", (Term(self._resample("down", True), u),), "linear", level))
                ops.append(Op(f"down{level}.ul", (Term(self._resample("down_right", True), ul),), "linear", level))
                u, ul = f"down{level}.u", f"down{level}.ul"
            for k in range(n if level == LEVELS - 1 else n + 1):
                skip_u, skip_ul = shortcuts.pop()
                ops += self._block("down", 1).ops(u, (skip_u,), f"down{level}.{k}.u", level, next(cond))
                u = f"down{level}.{k}.u"
                ops += self._block("down_right", 2).ops(ul, (u, skip_ul), f"down{level}.{k}.ul", level, next(cond))
                ul = f"down{level}.{k}.ul"
        self.top = ul  # the node the head reads
        return ops

    def network_input(self, features: Tensor) -> Tensor:
        """``input``'s features ``(B, C E, ...)`` → what the first layers read ``(B, C E + 1, ...)``: scaled values
        moved to ``[-1, 1]`` (embeddings as they are), and a channel of ones (zero padding is then told apart from
        a value at zero, as in the reference code).

        Args:
            features: ``(B, C E, ...)``, the output of ``input`` (``E = 1`` for scaled values).

        Returns:
            ``(B, C E + 1, ...)``.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn_pp", num_categories=256, num_filters=8, num_resnet=0)
            >>> prior.network_input(torch.tensor([[[[0.0, 1.0]]]]))      # values 0 and 255, scaled to [0, 1]
            tensor([[[[-1.,  1.]],
            <BLANKLINE>
                     [[ 1.,  1.]]]])
        """
        ones = torch.ones_like(features[:, :1])
        return torch.cat([self.current_values(features), ones], dim=1)

    def current_values(self, features: Tensor) -> Tensor:
        """What the head reads of the pixel's own channels: its values on ``[-1, 1]`` (scaled input), or its
        embeddings.

        Args:
            features: ``(B, C E, ...)``, the output of ``input``.

        Returns:
            ``(B, C E, ...)``: ``2 features - 1`` for scaled values, the embeddings unchanged.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn_pp", num_categories=256, num_filters=8, num_resnet=0)
            >>> prior.current_values(torch.tensor([0.0, 0.5, 1.0]))
            tensor([-1.,  0.,  1.])
        """
        return 2 * features - 1 if self.input.mode == "scale" else features

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """The likelihood's parameters at every position for ``x`` ``(B, C, H, W)`` int64: ``(B, 3, C, M, H, W)``
        for the mixture head (see [`DiscretizedLogisticMixture`][vqgen.logistic_mixture.DiscretizedLogisticMixture]),
        logits ``(B, K, C, H, W)`` for the softmax head.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)``.
            cond: as in [`check_cond`][vqgen.interfaces.AutoregressivePrior.check_cond].

        Returns:
            ``(B, 3, C, M, H, W)`` (mixture head) or ``(B, K, C, H, W)`` (softmax head).

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn_pp", num_filters=8, num_resnet=1, num_mixtures=4, dropout=0.0)
            >>> prior(torch.randint(256, (2, 1, 8, 8))).shape
            torch.Size([2, 3, 1, 4, 8, 8])
        """
        self.check_input(x, cond)
        features = self.input(x)  # (B, C E, H, W)
        values = {"input": self.network_input(features)}
        run_ops(self.ops, values, level_sizes(*x.shape[-2:]), self.cond_bias(cond), self.dropout)
        return self.head.output(self.head.context(values[self.top]), self.current_values(features))

    def schedule(self, height: int, width: int, device: torch.device | str | None = None) -> Schedule:
        """The static schedule of cached sampling for ``(H, W)`` grids, its indices on ``device`` (default: the
        CPU); built once per size and device (it depends on the architecture only, not on the weights).

        Args:
            height: H, the grid's rows.
            width: W, the grid's columns.
            device: where its index tensors live; ``None`` for the CPU.

        Returns:
            The [`Schedule`][vqgen.priors.pixelcnn_pp_stepper.Schedule], the same object on every call with the
            same arguments.

        Examples:
            >>> import vqgen
            >>> prior = vqgen.build("prior", "pixelcnn_pp", num_filters=8, num_resnet=1, num_mixtures=3)
            >>> prior.schedule(8, 8) is prior.schedule(8, 8, "cpu")
            True
        """
        key = (height, width, torch.device("cpu") if device is None else torch.device(device))
        if key not in self._schedules:
            self._schedules[key] = Schedule(self.ops, self.top, height, width, key[2])
        return self._schedules[key]

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> PixelCNNppStepper:
        """A cached stepper (arXiv:1704.06001): every layer cached, strided and transposed ones included; see
        [`vqgen.priors.pixelcnn_pp_stepper`][vqgen.priors.pixelcnn_pp_stepper].

        Args:
            cond: the condition of the grids to sample, or ``None``.
            shape: ``(H, W)`` of the grids.

        Returns:
            A new stepper; it draws the same samples as the naive sampler.

        Examples:
            >>> import torch, vqgen
            >>> prior = vqgen.build("prior", "pixelcnn_pp", num_categories=16, num_filters=8, num_resnet=1,
            ...                     num_mixtures=3, dropout=0.0)
            >>> type(prior.incremental(None, (4, 4))).__name__
            'PixelCNNppStepper'
            >>> cached = prior.sample(2, (4, 4), generator=torch.Generator().manual_seed(0))
            >>> naive = prior.sample(2, (4, 4), method="naive", generator=torch.Generator().manual_seed(0))
            >>> torch.equal(cached, naive)
            True
        """
        return PixelCNNppStepper(self, cond, shape)
