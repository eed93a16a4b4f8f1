"""Fitting a prior without trainable parameters (the baselines of [`vqgen.priors.baselines`][vqgen.priors.baselines],
which re-exports it): its own closed-form ``fit``, or nothing to learn, and one record of bits/dim.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from ..interfaces import AutoregressivePrior

__all__ = ["fit_closed_form"]


def fit_closed_form(
    prior: AutoregressivePrior,
    codes: Tensor,
    held_out: Tensor | None = None,
    cond: Tensor | None = None,
    eval_cond: Tensor | None = None,
) -> list[dict[str, object]]:
    """Fit a prior without trainable parameters: by its own ``fit(codes, cond)`` if it has one (the independent
    baseline's frequency table), else there is nothing to learn (uniform). Returns the one record of a history, with
    the bits/dim of ``codes`` and of ``held_out`` ``(N, 1, h, w)``.

    Args:
        prior: a prior without trainable parameters (``independent``, ``uniform``).
        codes: ``(N, 1, h, w)`` int64 training grids.
        held_out: ``(N', 1, h, w)`` held-out grids to score, or ``None``.
        cond: ``(N,)`` class labels of ``codes`` for a conditional prior.
        eval_cond: ``(N',)`` class labels of ``held_out``.

    Returns:
        ``[{"epoch": 1, "step": 0, "train": {"bits_per_dim": ...}, "eval": {"bits_per_dim": ...}}]`` (``"eval"``
        only with ``held_out``), in the form of a [`MetricsHistory`][vqgen.training.MetricsHistory].

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.priors.baselines import fit_closed_form
        >>> codes = torch.randint(16, (50, 1, 4, 4))
        >>> history = fit_closed_form(vqgen.build("prior", "uniform", num_categories=16), codes, held_out=codes)
        >>> round(history[0]["train"]["bits_per_dim"], 4), round(history[0]["eval"]["bits_per_dim"], 4)
        (4.0, 4.0)
    """
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
