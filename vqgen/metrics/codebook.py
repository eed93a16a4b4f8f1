"""How much of a VQ-VAE codebook is in use: perplexity and usage over a whole dataset.

A quantizer reports both per batch ([`QuantizerOutput`][vqgen.QuantizerOutput]); a batch sees few codes, so the
per-batch figures understate use. [`CodebookUsage`][CodebookUsage] accumulates the code histogram over any number of
batches (and processes) and computes them once, over everything.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from .. import checks

__all__ = ["CodebookUsage", "code_statistics", "perplexity"]


def _exp_entropy(counts: Tensor) -> Tensor:
    """``exp(H(p))`` with ``p = counts / Σ counts`` and ``0 · log 0 = 0``, in ``counts``' dtype; 1 for no counts.

    No host synchronisation (no data-dependent branch), so quantizers can call it every step on any device.
    """
    p = counts / counts.sum().clamp_min(torch.finfo(counts.dtype).tiny)  # (K,)
    return (-torch.special.xlogy(p, p).sum()).exp()


def perplexity(histogram: Tensor, *, dtype: torch.dtype = torch.float64) -> Tensor:
    """``exp(H(p))`` of the distribution ``p ∝ histogram`` ``(K,)``: the effective number of codes in use.

    It is ``K`` when all codes are equally used, 1 when a single code is; ``H`` uses ``0 · log 0 = 0``.

    Args:
        histogram: ``(K,)`` counts (or any non-negative weights) of each code.
        dtype: the dtype to compute in and return.

    Returns:
        A 0-d tensor of ``dtype`` (NaN for an empty histogram).

    Raises:
        TypeError: if ``histogram`` is not a tensor.
        ValueError: if it is not 1-D.

    Examples:
        >>> import torch
        >>> from vqgen.metrics import perplexity
        >>> perplexity(torch.tensor([5, 5, 5, 5])), perplexity(torch.tensor([20, 0, 0, 0]))
        (tensor(4., dtype=torch.float64), tensor(1., dtype=torch.float64))
    """
    histogram = checks.check_tensor(histogram, name="histogram", ndim=1).to(dtype)
    return torch.where(histogram.sum() > 0, _exp_entropy(histogram), math.nan)


def code_statistics(counts: Tensor, *, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
    """Perplexity and usage from a code histogram ``counts`` ``(K,)`` (``torch.bincount(codes, minlength=K)``).

    What a quantizer reports for its batch, without a host synchronisation.

    Args:
        counts: ``(K,)`` counts of each code.
        dtype: the dtype of both results.

    Returns:
        ``perplexity`` = ``exp(−Σ p log p)`` with ``p = counts / Σ counts`` (``0 log 0 = 0``), the effective number of
        codes in use, in ``[1, K]`` (1 for an empty histogram); ``usage`` = fraction of codes with a non-zero count,
        in ``[0, 1]``. Both 0-d tensors of ``dtype``.

    Examples:
        >>> import torch
        >>> from vqgen.metrics import code_statistics
        >>> codes = torch.tensor([0, 0, 1, 1])
        >>> code_statistics(torch.bincount(codes, minlength=8))            # two codes of eight, used alike
        (tensor(2.), tensor(0.2500))
    """
    counts = counts.to(dtype)
    return _exp_entropy(counts), (counts > 0).to(dtype).mean()


class CodebookUsage(Metric):
    """Code histogram over a stream of code grids → perplexity and fraction of the codebook used.

    Args:
        num_codes: K, the codebook size.
        **kwargs (Any): options of ``torchmetrics.Metric`` (``sync_on_compute``, ``dist_sync_on_step``, ...).

    Raises:
        TypeError: if ``num_codes`` is not an int.
        ValueError: if it is not positive.

    State: ``histogram`` ``(K,)`` float64 counts, summed across processes.

    ``compute()`` returns a dict (torchmetrics reduces and logs dicts of tensors, but not frozen dataclasses):

    - ``"perplexity"``: ``exp(H(histogram))``, the effective number of codes used (see [`perplexity`][perplexity]);
    - ``"usage"``: the fraction of the ``K`` codes used at least once, in ``[0, 1]``;
    - ``"used_codes"``: how many codes were used at least once.

    Examples:
        >>> import torch
        >>> from vqgen.metrics import CodebookUsage
        >>> metric = CodebookUsage(num_codes=4)
        >>> metric.update(torch.tensor([[0, 1], [0, 1]]))
        >>> {key: float(value) for key, value in metric.compute().items()}
        {'perplexity': 2.0, 'usage': 0.5, 'used_codes': 2.0}
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def __init__(self, num_codes: int, **kwargs) -> None:
        super().__init__(**kwargs)
        checks.check_positive(num_codes, name="num_codes", integer=True)
        self.num_codes = num_codes
        self.add_state("histogram", torch.zeros(num_codes, dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, codes: Tensor) -> None:
        """Count ``codes``: int64 indices in ``[0, K)`` of any shape (``(B, h, w)`` grids, ``(B,)``, ...).

        Args:
            codes: integer codes, e.g. ``QuantizerOutput.codes`` of a batch.

        Raises:
            TypeError: if ``codes`` is not an integer tensor.
            ValueError: if a code lies outside ``[0, K)``.

        Examples:
            >>> import torch
            >>> from vqgen.metrics import CodebookUsage
            >>> metric = CodebookUsage(num_codes=512)
            >>> for _ in range(3):                                  # e.g. the batches of a held-out split
            ...     metric.update(torch.randint(64, (8, 7, 7)))
            >>> int(metric.histogram.sum())
            1176
        """
        codes = checks.check_indices(codes, num_categories=self.num_codes, name="codes")
        counts = torch.bincount(codes.detach().flatten().long(), minlength=self.num_codes)  # (K,)
        self.histogram += counts.to(self.histogram)

    def compute(self) -> dict[str, Tensor]:
        """``{"perplexity", "usage", "used_codes"}`` as 0-d float64 tensors (perplexity NaN before any update).

        Returns:
            The three figures over every code counted since the last ``reset()``.

        Examples:
            >>> import torch
            >>> from vqgen.metrics import CodebookUsage
            >>> metric = CodebookUsage(num_codes=8)
            >>> metric.update(torch.arange(8))
            >>> {key: round(float(value), 4) for key, value in metric.compute().items()}
            {'perplexity': 8.0, 'usage': 1.0, 'used_codes': 8.0}
        """
        used = (self.histogram > 0).sum().double()
        return {"perplexity": perplexity(self.histogram), "usage": used / self.num_codes, "used_codes": used}
