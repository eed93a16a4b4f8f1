"""Baseline "priors" that every learned prior must beat, through the same API as a prior's samples.

The seed experiment compares a learned autoregressive prior over VQ-VAE code grids with three baselines:

- **(a) one code per image**: not a class here. It is the [`flat`][vqgen.autoencoders.flat] autoencoder (a
  ``1 × 1`` code grid) with any prior over that grid — e.g. ``IndependentPrior.from_data(codes)`` on its
  ``(N, 1, 1, 1)`` codes, which is then exactly the codes' marginal distribution.
- **(b) independent per-position sampling**: [`IndependentPrior`][IndependentPrior] draws every position independently
  from the marginal frequencies of the codes *at that position* in the training data. Each position looks plausible on
  its own, but nothing ties positions together: there is no global coherence. It is what a prior gains over.
- **(c) uniform random codes**: [`UniformPrior`][UniformPrior], every code equally likely everywhere.

Both are registered [`AutoregressivePrior`][vqgen.interfaces.AutoregressivePrior] implementations (``"independent"``,
``"uniform"``): they have ``forward``/``log_prob``/``bits_per_dim``/``sample`` and save/load like any prior, and they
satisfy causality trivially (their logits depend on no value of ``x``). Their cached sampling stepper is a table lookup.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange, repeat
from torch import Tensor

from .. import checks
from ..interfaces import AutoregressivePrior
from ..registry import register

__all__ = ["IndependentPrior", "UniformPrior", "fit_closed_form"]


class _TableStepper:
    """Cached sampling for priors whose logits do not depend on ``x``: a table lookup per value.

    ``table`` is ``(C, H, W, K)`` (the same for every example) or ``(n, C, H, W, K)`` (one per example).
    """

    def __init__(self, table: Tensor) -> None:
        self.table = table

    def prefill(self, x: Tensor, positions: int) -> None:
        """Nothing to remember: no logit depends on ``x``."""

    def logits(self, x: Tensor, i: int, j: int, c: int) -> Tensor:
        if self.table.ndim == 4:
            return self.table[c, i, j].expand(x.shape[0], -1)  # (n, K)
        return self.table[:, c, i, j]  # (n, K)


@register("prior", "independent")
class IndependentPrior(AutoregressivePrior):
    """Baseline (b): every position ``(c, i, j)`` independent, with its own categorical distribution.

    ``p(x) = Π_{c,i,j} p_{c,i,j}(x_{c,i,j})`` with ``p_{c,i,j}`` the frequencies of the values at that position in
    the training grids, Laplace-smoothed: ``(count + smoothing) / (N + K · smoothing)``. With ``num_classes``, there
    is one such table per class label (``cond``), fitted on that class's grids. The table of log-frequencies
    ``(M, C, H, W, K)`` (``M`` = number of classes, or 1) is a buffer, saved with the model; it starts uniform and is
    set by [`fit`][fit]. The prior only models grids of exactly ``(height, width)``.

    Args:
        num_categories: K, the codebook size (256 for pixels).
        channels: C, values per position (1 for code grids).
        height: H of the grids.
        width: W of the grids.
        num_classes: number of class labels to condition on; ``None`` for an unconditional prior.
        smoothing: the Laplace pseudo-count added to every count in [`fit`][fit] (> 0 keeps every log-probability
            finite, so held-out grids never score ``-inf``).
    """

    def __init__(
        self,
        num_categories: int = 512,
        channels: int = 1,
        height: int = 8,
        width: int = 8,
        num_classes: int | None = None,
        smoothing: float = 1.0,
    ) -> None:
        super().__init__(num_categories, channels, num_classes=num_classes)
        checks.check_positive(height, name="height", integer=True)
        checks.check_positive(width, name="width", integer=True)
        checks.check_positive(smoothing, name="smoothing")
        self.smoothing = float(smoothing)
        tables = num_classes or 1
        uniform = torch.full((tables, channels, height, width, num_categories), -math.log(num_categories))
        self.register_buffer("log_probs", uniform)  # (M, C, H, W, K)

    @classmethod
    def tiny_config(cls) -> dict:
        return {"num_categories": 7, "channels": 1, "height": 3, "width": 4}

    @classmethod
    def from_data(
        cls,
        x: Tensor,
        cond: Tensor | None = None,
        *,
        num_categories: int | None = None,
        num_classes: int | None = None,
        smoothing: float = 1.0,
    ) -> IndependentPrior:
        """Build and [`fit`][fit] a prior on grids ``x`` ``(N, C, H, W)`` int64, optionally per class ``cond`` ``(N,)``.

        ``num_categories`` defaults to ``x.max() + 1`` and ``num_classes`` to ``cond.max() + 1``; pass them when the
        data may not contain the largest code or class.
        """
        checks.check_tensor(x, name="x", ndim=4)
        if num_categories is None:
            checks.check_indices(x, num_categories=2**62, name="x")
            num_categories = int(x.max()) + 1 if x.numel() else 1
        if cond is not None and num_classes is None:
            checks.check_indices(checks.check_tensor(cond, name="cond", ndim=1), num_categories=2**62, name="cond")
            num_classes = int(cond.max()) + 1 if cond.numel() else 1
        _, channels, height, width = x.shape
        prior = cls(num_categories, channels, height, width, num_classes, smoothing).to(x.device)
        return prior.fit(x, cond)

    @property
    def grid_shape(self) -> tuple[int, int]:
        """``(H, W)``, the only grid size this prior models."""
        return tuple(self.log_probs.shape[2:4])  # type: ignore[return-value]

    def _check_grid(self, height: int, width: int) -> None:
        if (height, width) != self.grid_shape:
            raise ValueError(
                f"IndependentPrior models {self.grid_shape[0]}x{self.grid_shape[1]} grids (its frequency table), "
                f"got {height}x{width}; build it for this size with IndependentPrior.from_data(codes)"
            )

    def _tables(self, cond: Tensor | None) -> Tensor:
        """The log-frequency table of each example: ``(C, H, W, K)`` shared, or ``(B, C, H, W, K)`` per class."""
        if cond is None:
            return self.log_probs[0]
        return self.log_probs[cond.to(self.log_probs.device)]

    @torch.no_grad()
    def fit(self, x: Tensor, cond: Tensor | None = None) -> IndependentPrior:
        """Set the table(s) to the smoothed per-position frequencies of grids ``x`` ``(N, C, H, W)``; returns self.

        Conditional priors need the class labels ``cond`` ``(N,)``; a class without grids gets uniform frequencies.
        """
        self.check_input(x, cond)
        self._check_grid(x.shape[2], x.shape[3])
        device = self.log_probs.device
        tables, channels, height, width, k = self.log_probs.shape
        label = torch.zeros(x.shape[0], dtype=torch.long, device=device) if cond is None else cond.to(device)
        position = torch.arange(channels * height * width, device=device).view(1, channels, height, width)
        # One flat bin per (class, position, value): O(N·C·H·W) memory, never a (N, C, H, W, K) one-hot.
        bins = (label.view(-1, 1, 1, 1) * (channels * height * width) + position) * k + x.to(device)  # (N, C, H, W)
        counts = torch.bincount(bins.flatten(), minlength=self.log_probs.numel()).double()  # (M·C·H·W·K,)
        counts = counts.view(tables, channels, height, width, k) + self.smoothing  # (M, C, H, W, K)
        self.log_probs.copy_(counts.log() - counts.sum(-1, keepdim=True).log())
        return self

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, C, H, W)``: the log-frequencies (of each example's class); ``x`` is only checked."""
        self.check_input(x, cond)
        self._check_grid(x.shape[2], x.shape[3])
        tables = self._tables(cond)
        if tables.ndim == 4:
            return repeat(tables, "c h w k -> b k c h w", b=x.shape[0])  # (B, K, C, H, W)
        return rearrange(tables, "b c h w k -> b k c h w")  # (B, K, C, H, W)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]):
        self._check_grid(*shape)
        return _TableStepper(self._tables(cond))


@register("prior", "uniform")
class UniformPrior(AutoregressivePrior):
    """Baseline (c): every value uniform over the ``K`` categories, independently; ``log p(x) = -C·H·W·log K``.

    It has no parameters and models grids of any size.

    Args:
        num_categories: K, the codebook size (256 for pixels).
        channels: C, values per position.
    """

    def __init__(self, num_categories: int = 512, channels: int = 1) -> None:
        super().__init__(num_categories, channels)
        # Not saved; it only tells the sampler which device the prior lives on.
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)

    @classmethod
    def tiny_config(cls) -> dict:
        return {"num_categories": 7, "channels": 1}

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Zero logits ``(B, K, C, H, W)`` (uniform probabilities) for ``x`` ``(B, C, H, W)``."""
        self.check_input(x, cond)
        batch, channels, height, width = x.shape
        return torch.zeros(batch, self.num_categories, channels, height, width, device=x.device)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]):
        height, width = shape
        table = torch.zeros(self.channels, height, width, self.num_categories, device=self._device_anchor.device)
        return _TableStepper(table)


def fit_closed_form(
    prior: AutoregressivePrior,
    codes: Tensor,
    held_out: Tensor | None = None,
    cond: Tensor | None = None,
    eval_cond: Tensor | None = None,
) -> list[dict[str, object]]:
    """Fit a prior without trainable parameters: by its own ``fit(codes, cond)`` if it has one (the independent
    baseline's frequency table), else there is nothing to learn (uniform). Returns the one record of a history, with
    the bits/dim of ``codes`` and of ``held_out`` ``(N, 1, h, w)``."""
    from ..metrics.likelihood import prior_bits_per_dim

    fit = getattr(prior, "fit", None)
    if callable(fit):
        fit(codes.to(prior.device), None if cond is None else cond.to(prior.device))
    record: dict[str, object] = {
        "epoch": 1,
        "step": 0,
        "train": {"bits_per_dim": prior_bits_per_dim(prior, codes, cond)},
    }
    if held_out is not None:
        record["eval"] = {"bits_per_dim": prior_bits_per_dim(prior, held_out, eval_cond)}
    return [record]
