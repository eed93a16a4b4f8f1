"""Likelihood in bits per dimension: the unit in which autoregressive image models are compared.

An example of ``D`` values (``D = C·H·W`` sub-pixels for a pixel model, ``h·w`` codes for a prior over a VQ-VAE
code grid) with negative log-likelihood ``nll`` nats scores ``nll / (D · ln 2)`` bits/dim (PixelRNN,
arXiv:1601.06759). Bits/dim of a code prior and of a pixel model measure different things; compare like with like.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torchmetrics import Metric

from .. import checks

if TYPE_CHECKING:
    from ..interfaces import AutoregressivePrior

__all__ = ["BitsPerDim", "batches_bits_per_dim", "bits_per_dim", "prior_bits_per_dim"]

LN2 = math.log(2.0)


def _check_num_dims(num_dims: object) -> int:
    checks.check_positive(num_dims, name="num_dims", integer=True)
    return int(num_dims)  # type: ignore[arg-type]


def bits_per_dim(nll: Tensor | float, num_dims: int) -> Tensor | float:
    """Convert a negative log-likelihood in nats to bits per dimension: ``nll / (num_dims · ln 2)``.

    Args:
        nll: NLL in nats of one example (a float), or of each example (a tensor ``(B,)`` or any shape).
        num_dims: D, the number of values per example (``C·H·W``).

    Returns:
        The same type and shape as ``nll``.

    Raises:
        TypeError: if ``num_dims`` is not an int.
        ValueError: if it is not positive.

    Examples:
        >>> import math, torch
        >>> from vqgen.metrics import bits_per_dim
        >>> bits_per_dim(784 * math.log(2), 784)                           # 1 bit per pixel of a 28x28 image
        1.0
        >>> bits_per_dim(torch.tensor([0.0, 49 * math.log(512)]), 49)      # codes of a 512-code codebook
        tensor([0.0000, 9.0000])
    """
    num_dims = _check_num_dims(num_dims)
    return nll / (num_dims * LN2)


class BitsPerDim(Metric):
    """Mean bits/dim over a stream of examples, weighting every value equally (a torchmetrics ``Metric``).

    State: the summed NLL in nats and the number of values, both float64 and summed across processes, so the result
    is exact however the data is split into batches or over devices.

    Args:
        **kwargs (Any): options of ``torchmetrics.Metric`` (``sync_on_compute``, ``dist_sync_on_step``, ...).

    Examples:
        >>> import math, torch
        >>> from vqgen.metrics import BitsPerDim
        >>> metric = BitsPerDim()
        >>> metric.update(torch.tensor([64 * math.log(2.0)], dtype=torch.float64), num_dims=64)
        >>> float(metric.compute())
        1.0
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("nll_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("num_values", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, nll: Tensor, num_dims: int) -> None:
        """Add examples.

        Args:
            nll: ``(B,)`` negative log-likelihood of each example in nats (``-prior.log_prob(x)``).
            num_dims: D, the number of values per example (``x[0].numel()``).

        Raises:
            TypeError: if ``nll`` is not a float tensor, or ``num_dims`` not an int.
            ValueError: if ``nll`` is not 1-D or holds NaN or inf, or ``num_dims`` is not positive.

        Examples:
            >>> import torch, vqgen
            >>> from vqgen.metrics import BitsPerDim
            >>> prior, metric = vqgen.build("prior", "uniform", num_categories=256), BitsPerDim()
            >>> for _ in range(3):
            ...     x = torch.randint(256, (8, 1, 4, 4))
            ...     metric.update(-prior.log_prob(x), num_dims=x[0].numel())
            >>> metric.compute()
            tensor(8.0000, dtype=torch.float64)
        """
        nll = checks.check_tensor(nll, name="nll", ndim=1)
        if not nll.is_floating_point():
            raise TypeError(f"nll must be a float tensor of per-example NLLs in nats, got {nll.dtype}")
        checks.check_finite(nll, name="nll")
        num_dims = _check_num_dims(num_dims)
        self.nll_sum += nll.detach().double().sum()
        self.num_values += nll.shape[0] * num_dims

    def compute(self) -> Tensor:
        """Bits/dim over every value seen: ``Σ nll / (Σ D · ln 2)``; NaN before any update.

        Returns:
            A 0-d float64 tensor.

        Examples:
            >>> import math, torch
            >>> from vqgen.metrics import BitsPerDim
            >>> metric = BitsPerDim()
            >>> metric.update(torch.tensor([2 * math.log(2)]), num_dims=1)              # 2 bits of one value
            >>> metric.update(torch.tensor([0.0, 0.0, 0.0]), num_dims=1)                 # 0 bits of three values
            >>> metric.compute()                                                         # every value counts alike
            tensor(0.5000, dtype=torch.float64)
        """
        if self.num_values == 0:
            return torch.tensor(math.nan, dtype=torch.float64, device=self.nll_sum.device)
        return self.nll_sum / (self.num_values * LN2)


def prior_bits_per_dim(
    prior: AutoregressivePrior, x: Tensor, cond: Tensor | None = None, *, batch_size: int = 256
) -> float:
    """Mean bits/dim of a prior on ``x`` ``(N, C, H, W)`` int64, evaluated in batches on the prior's device.

    Args:
        prior: an [`AutoregressivePrior`][vqgen.AutoregressivePrior] (put in eval mode during the call, its mode
            restored after).
        x: ``(N, C, H, W)`` int64 values in ``[0, K)`` (codes, or uint8 pixels as ``.long()``).
        cond: ``(N,)`` labels or ``(N, cond_dim)`` vectors for conditional priors.
        batch_size: examples per forward pass.

    Returns:
        Bits per value over all of ``x``, every value weighted alike.

    Raises:
        TypeError: if ``x`` or ``cond`` has the wrong type, or ``batch_size`` is not an int.
        ValueError: if ``x`` or ``cond`` does not fit the prior, ``x`` is empty, or ``batch_size`` < 1.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.metrics import prior_bits_per_dim
        >>> from vqgen.priors.baselines import IndependentPrior
        >>> codes = torch.randint(4, (500, 1, 7, 7)) * (torch.rand(500, 1, 7, 7) < 0.5)   # 4 codes, many zeros
        >>> baseline = IndependentPrior.from_data(codes, num_categories=512, smoothing=0.01)
        >>> uniform = vqgen.build("prior", "uniform", num_categories=512)
        >>> round(prior_bits_per_dim(uniform, codes), 3), prior_bits_per_dim(baseline, codes) < 2
        (9.0, True)
    """
    checks.check_positive(batch_size, name="batch_size", integer=True)
    prior.check_input(x, cond)
    batches = (
        (x[start : start + batch_size], None if cond is None else cond[start : start + batch_size])
        for start in range(0, x.shape[0], batch_size)
    )
    return batches_bits_per_dim(prior, batches)


@torch.no_grad()
def batches_bits_per_dim(prior: AutoregressivePrior, batches: Iterable[tuple[Tensor, Tensor | None]]) -> float:
    """Mean bits/dim of a prior over batches of ``(values (B, C, H, W), cond or None)``, every value weighted alike.

    The NLL comes from the prior's one likelihood ([`log_prob`][vqgen.AutoregressivePrior.log_prob]), on the prior's
    device, in eval mode (its mode restored after). Under ``torchrun`` every process evaluates what it is given by
    itself (nothing is synchronised).

    Raises:
        ValueError: ``batches`` is empty.
    """
    device = prior.device
    metric = BitsPerDim(sync_on_compute=False).to(device)
    was_training = prior.training
    prior.eval()
    try:
        for values, cond in batches:
            x = values.to(device).long()  # (B, C, H, W)
            metric.update(-prior.log_prob(x, None if cond is None else cond.to(device)), num_dims=x[0].numel())
    finally:
        prior.train(was_training)
    if not float(metric.num_values):
        raise ValueError("data is empty: there is nothing to evaluate")
    return float(metric.compute())
