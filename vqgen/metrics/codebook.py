"""How much of a VQ-VAE codebook is in use: perplexity and usage over a whole dataset.

A quantizer reports both per batch (:class:`~vqgen.QuantizerOutput`); a batch sees few codes, so the per-batch
figures understate use. :class:`CodebookUsage` accumulates the code histogram over any number of batches (and
processes) and computes them once, over everything.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torchmetrics import Metric

from .. import checks

__all__ = ["CodebookUsage", "perplexity"]


def perplexity(histogram: Tensor) -> Tensor:
    """``exp(H(p))`` of the distribution ``p ∝ histogram`` ``(K,)``: the effective number of codes in use.

    It is ``K`` when all codes are equally used, 1 when a single code is; ``H`` uses ``0 · log 0 = 0``. Returns a
    0-d float64 tensor (NaN for an empty histogram).
    """
    histogram = checks.check_tensor(histogram, name="histogram", ndim=1).double()
    total = histogram.sum()
    if total <= 0:
        return torch.tensor(math.nan, dtype=torch.float64, device=histogram.device)
    p = histogram / total
    entropy = -torch.special.xlogy(p, p).sum()
    return entropy.exp()


class CodebookUsage(Metric):
    """Code histogram over a stream of code grids → perplexity and fraction of the codebook used.

    Args:
        num_codes: K, the codebook size.

    State: ``histogram`` ``(K,)`` float64 counts, summed across processes.

    ``compute()`` returns a dict (torchmetrics reduces and logs dicts of tensors, but not frozen dataclasses):

    - ``"perplexity"``: ``exp(H(histogram))``, the effective number of codes used (see :func:`perplexity`);
    - ``"usage"``: the fraction of the ``K`` codes used at least once, in ``[0, 1]``;
    - ``"used_codes"``: how many codes were used at least once.

    Example:
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
        """Count ``codes``: int64 indices in ``[0, K)`` of any shape (``(B, h, w)`` grids, ``(B,)``, ...)."""
        codes = checks.check_indices(codes, num_categories=self.num_codes, name="codes")
        counts = torch.bincount(codes.detach().flatten().long(), minlength=self.num_codes)  # (K,)
        self.histogram += counts.to(self.histogram)

    def compute(self) -> dict[str, Tensor]:
        """``{"perplexity", "usage", "used_codes"}`` as 0-d float64 tensors (perplexity NaN before any update)."""
        used = (self.histogram > 0).sum().double()
        return {"perplexity": perplexity(self.histogram), "usage": used / self.num_codes, "used_codes": used}
