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
from typing import TYPE_CHECKING

import torch
from einops import rearrange, repeat
from torch import Tensor

from .. import checks
from ..interfaces import AutoregressivePrior
from ..registry import register
from .closed_form import fit_closed_form

if TYPE_CHECKING:
    from ..sampling import Stepper

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

    Raises:
        TypeError: if a size or ``smoothing`` is not a number of the right kind.
        ValueError: if one is not positive.

    Examples:
        >>> import torch
        >>> from vqgen.priors.baselines import IndependentPrior
        >>> codes = torch.tensor([[[[0, 1]]], [[[0, 2]]]])             # two 1x2 grids of K = 3 codes
        >>> prior = IndependentPrior.from_data(codes, smoothing=1.0)
        >>> prior.log_probs.exp()                                       # (M, C, H, W, K): (count + 1) / (2 + 3)
        tensor([[[[[0.6000, 0.2000, 0.2000],
                   [0.2000, 0.4000, 0.4000]]]]])
        >>> prior.sample(3, (1, 2)).shape
        torch.Size([3, 1, 1, 2])
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

    TINY_CONFIG = {"num_categories": 7, "channels": 1, "height": 3, "width": 4}
    """7 categories on 3x4 grids."""

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

        Args:
            x: ``(N, C, H, W)`` int64 training grids.
            cond: ``(N,)`` int64 class labels, for one table per class; ``None`` for one table.
            num_categories: K; ``None`` for ``x.max() + 1``.
            num_classes: the number of classes; ``None`` for ``cond.max() + 1``.
            smoothing: the Laplace pseudo-count.

        Returns:
            A new prior for ``(H, W)`` grids, fitted, on ``x``'s device.

        Raises:
            TypeError: if ``x`` or ``cond`` is not an integer tensor.
            ValueError: if ``x`` is not 4-D, ``cond`` not 1-D, or either holds negative values.

        Examples:
            >>> import torch
            >>> from vqgen.priors.baselines import IndependentPrior
            >>> codes, labels = torch.randint(512, (100, 1, 7, 7)), torch.arange(100) % 10
            >>> prior = IndependentPrior.from_data(codes, labels, num_categories=512)
            >>> prior.num_categories, prior.num_classes, prior.grid_shape
            (512, 10, (7, 7))
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
        """``(H, W)``, the only grid size this prior models.

        Examples:
            >>> from vqgen.priors.baselines import IndependentPrior
            >>> IndependentPrior(num_categories=16, height=7, width=5).grid_shape
            (7, 5)
        """
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

        Args:
            x: ``(N, C, H, W)`` int64 grids of the prior's size.
            cond: ``(N,)`` int64 class labels for a conditional prior; ``None`` otherwise.

        Returns:
            The prior itself, fitted.

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` is not of the prior's grid size, or ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch
            >>> from vqgen.priors.baselines import IndependentPrior
            >>> prior = IndependentPrior(num_categories=4, height=2, width=2, smoothing=0.5)
            >>> _ = prior.fit(torch.zeros(9, 1, 2, 2, dtype=torch.long))          # always code 0
            >>> prior.log_probs.exp()[0, 0, 0, 0]                                  # (9 + 0.5) / (9 + 4 * 0.5)
            tensor([0.8636, 0.0455, 0.0455, 0.0455])
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
        """Logits ``(B, K, C, H, W)``: the log-frequencies (of each example's class); ``x`` is only checked.

        Args:
            x: ``(B, C, H, W)`` int64 grids of the prior's size.
            cond: ``(B,)`` class labels for a conditional prior; ``None`` otherwise.

        Returns:
            ``(B, K, C, H, W)`` log-probabilities, the same for every ``x``.

        Raises:
            TypeError: if ``x`` or ``cond`` has the wrong type.
            ValueError: if ``x`` is not of the prior's grid size, or ``x`` or ``cond`` does not fit the prior.

        Examples:
            >>> import torch
            >>> from vqgen.priors.baselines import IndependentPrior
            >>> prior = IndependentPrior(num_categories=4, height=2, width=2)        # uniform until fitted
            >>> prior(torch.zeros(3, 1, 2, 2, dtype=torch.long)).shape
            torch.Size([3, 4, 1, 2, 2])
        """
        self.check_input(x, cond)
        self._check_grid(x.shape[2], x.shape[3])
        tables = self._tables(cond)
        if tables.ndim == 4:
            return repeat(tables, "c h w k -> b k c h w", b=x.shape[0])  # (B, K, C, H, W)
        return rearrange(tables, "b c h w k -> b k c h w")  # (B, K, C, H, W)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> Stepper:
        """A table lookup per value: no logit depends on the values drawn before it.

        Args:
            cond: ``(n,)`` class labels for a conditional prior; ``None`` otherwise.
            shape: ``(H, W)``, which must be the prior's grid size.

        Returns:
            A stepper reading the log-frequency table.

        Raises:
            ValueError: if ``shape`` is not the prior's grid size.

        Examples:
            >>> import torch
            >>> from vqgen.priors.baselines import IndependentPrior
            >>> prior = IndependentPrior(num_categories=4, height=2, width=2)
            >>> prior.incremental(None, (2, 2)).logits(torch.zeros(3, 1, 2, 2, dtype=torch.long), 1, 0, 0).shape
            torch.Size([3, 4])
        """
        self._check_grid(*shape)
        return _TableStepper(self._tables(cond))


@register("prior", "uniform")
class UniformPrior(AutoregressivePrior):
    """Baseline (c): every value uniform over the ``K`` categories, independently; ``log p(x) = -C·H·W·log K``.

    It has no parameters and models grids of any size.

    Args:
        num_categories: K, the codebook size (256 for pixels).
        channels: C, values per position.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is not positive.

    Examples:
        >>> import torch, vqgen
        >>> prior = vqgen.build("prior", "uniform", num_categories=512)
        >>> prior.bits_per_dim(torch.randint(512, (2, 1, 7, 7)))           # log2(512) bits per code
        tensor([9.0000, 9.0000])
        >>> prior.sample(2, (7, 7)).shape                                   # any grid size
        torch.Size([2, 1, 7, 7])
    """

    def __init__(self, num_categories: int = 512, channels: int = 1) -> None:
        super().__init__(num_categories, channels)
        # Not saved; it only tells the sampler which device the prior lives on.
        self.register_buffer("_device_anchor", torch.zeros(0), persistent=False)

    TINY_CONFIG = {"num_categories": 7, "channels": 1}
    """7 categories, one channel."""

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Zero logits ``(B, K, C, H, W)`` (uniform probabilities) for ``x`` ``(B, C, H, W)``.

        Args:
            x: ``(B, C, H, W)`` int64 values in ``[0, K)`` (only checked).
            cond: must be ``None``: the prior is unconditional.

        Returns:
            ``(B, K, C, H, W)`` zeros.

        Raises:
            TypeError: if ``x`` is not an integer tensor.
            ValueError: if ``x`` does not fit the prior, or a condition is given.

        Examples:
            >>> import torch
            >>> from vqgen.priors.baselines import UniformPrior
            >>> UniformPrior(num_categories=3)(torch.zeros(1, 1, 1, 2, dtype=torch.long)).flatten()
            tensor([0., 0., 0., 0., 0., 0.])
        """
        self.check_input(x, cond)
        batch, channels, height, width = x.shape
        return torch.zeros(batch, self.num_categories, channels, height, width, device=x.device)

    def incremental(self, cond: Tensor | None, shape: Sequence[int]) -> Stepper:
        """A lookup of zero logits per value, for grids of any ``shape``.

        Args:
            cond: ``None``: the prior is unconditional.
            shape: ``(H, W)`` of the grids.

        Returns:
            A stepper returning zero logits ``(n, K)``.

        Examples:
            >>> import torch
            >>> from vqgen.priors.baselines import UniformPrior
            >>> UniformPrior(num_categories=3).incremental(None, (4, 4)).logits(torch.zeros(2, 1, 4, 4), 3, 3, 0)
            tensor([[0., 0., 0.],
                    [0., 0., 0.]])
        """
        height, width = shape
        table = torch.zeros(self.channels, height, width, self.num_categories, device=self._device_anchor.device)
        return _TableStepper(table)
