"""Cached (incremental) sampling for convolutional priors: the bookkeeping every cached stepper shares.

Ramachandran et al., "Fast Generation for Convolutional Autoregressive Models" (arXiv:1704.06001): instead of a forward
pass over the whole grid per value, every layer keeps a cache of its activations and a step computes each layer at the
current position only. [`CachedStepper`][CachedStepper] owns the order of work (write the values drawn last into the
input cache, per-row work, per-position work, per-channel reuse); a prior's stepper says what its caches are. The
weights a step multiplies by are named tuples ([`StepLinear`][StepLinear], [`HeadStep`][HeadStep]), never positions.
What the output at a position means is the prior's [`likelihood`][vqgen.likelihoods.Likelihood]: the stepper hands it
the output and the channels drawn so far, and returns the logits it gives.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import Tensor

from ..threads import one_thread
from .layers import OutputHead, step_matrix

if TYPE_CHECKING:
    from ..interfaces import AutoregressivePrior

__all__ = ["CachedStepper", "HeadStep", "StepLinear"]


class StepLinear(NamedTuple):
    """A (masked) layer as one cached step uses it: ``out = bias + window @ weight``.

    Attributes:
        weight: ``(window features, out)``, the kernel reshaped by [`step_matrix`][vqgen.priors.layers.step_matrix].
        bias: ``(out,)``, or ``(B, out)`` with a per-example condition bias folded in.
    """

    weight: Tensor
    bias: Tensor


class HeadStep(NamedTuple):
    """The [`OutputHead`][vqgen.priors.layers.OutputHead] at one position: ``out(ReLU(hidden(ReLU(x))))``."""

    hidden: StepLinear
    out: StepLinear

    @classmethod
    def of(cls, head: OutputHead) -> HeadStep:
        """The step matrices of ``head``'s two masked 1x1 layers."""
        return cls(
            StepLinear(step_matrix(head.hidden.masked_weight()), head.hidden.bias),
            StepLinear(step_matrix(head.out.masked_weight()), head.out.bias),
        )

    def __call__(self, x: Tensor) -> Tensor:
        """Features ``(B, in)`` → head output ``(B, C * K)``."""
        hidden = torch.addmm(self.hidden.bias, x.relu(), self.hidden.weight).relu_()
        return torch.addmm(self.out.bias, hidden, self.out.weight)


class CachedStepper:
    """Base of the cached samplers: bookkeeping shared by PixelCNN and Gated PixelCNN.

    At step ``(i, j, c)`` it writes the features of the value(s) drawn since the last step into the input cache (the
    whole previous pixel at ``c = 0``, channel ``c - 1`` otherwise — never a value not yet drawn), runs the per-row work
    ([`row`][row]) at the start of a row, and the per-position work ([`pixel`][pixel]) for every channel when the
    network itself sees the earlier channels of a position (sequential colour masks: ``prior.colour_groups > 1``), once
    per position otherwise. The logits of channel ``c`` are what the prior's likelihood makes of that output and of the
    channels drawn before ``c`` ([`position_logits`][vqgen.likelihoods.Likelihood.position_logits]). Caches are
    allocated at step ``(0, 0, 0)``, when the batch size is known, so a stepper can be reused for several grids.
    """

    def __init__(self, prior: AutoregressivePrior, cond: Tensor | None, shape: Sequence[int]) -> None:
        self.prior, self.cond = prior, cond
        self.height, self.width = int(shape[0]), int(shape[1])
        self.channels, self.num_categories = prior.channels, prior.num_categories
        self.per_channel = getattr(prior, "colour_groups", 1) > 1  # the network reads channels < c of the position
        self.likelihood = prior.likelihood
        self.embed_dim = prior.input.embed_dim
        self.batch: int | None = None
        self.last: Tensor | None = None

    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        """Logits ``(n, K)`` of channel ``c`` at ``(i, j)``; see [`Stepper`][vqgen.sampling.Stepper]."""
        with torch.inference_mode():
            if (i, j, c) == (0, 0, 0) or self.batch != x.shape[0]:
                self.batch = x.shape[0]
                param = next(self.prior.parameters())
                with one_thread(self.batch):
                    self.start(self.batch, param.dtype, param.device)
            if c > 0:
                if not self.per_channel:
                    return self.likelihood.position_logits(self.last, c, x[:, :, i, j])
                self.write(x[:, c - 1 : c, i, j], i, j, c - 1)
            elif (i, j) != (0, 0):
                pi, pj = (i, j - 1) if j > 0 else (i - 1, self.width - 1)
                self.write(x[:, :, pi, pj], pi, pj, 0)
            with one_thread(self.batch):
                if j == 0 and c == 0:
                    self.row(i)
                self.last = self.position_output(self.pixel(i, j))
            return self.likelihood.position_logits(self.last, c, x[:, :, i, j])

    def write(self, values: Tensor, i: int, j: int, first: int) -> None:
        """Embed ``values`` ``(B, n)`` of channels ``first ...`` at ``(i, j)`` and store them with [`store`][store]."""
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

    def position_output(self, head: Tensor) -> Tensor:
        """[`pixel`][pixel]'s head output → the prior's ``forward`` output at one position: ``(B, C * K)`` with the K
        logits of each channel contiguous → ``(B, K, C)`` (a view), as
        [`logits_from_head`][vqgen.priors.conv_prior.ConvPrior.logits_from_head] lays out the whole grid."""
        return head.view(head.shape[0], self.channels, -1).transpose(1, 2)  # a view; einops costs ~10 µs a step here
