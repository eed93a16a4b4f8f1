"""The optimiser of every fit: Adam ([`make_adam`][make_adam]) and its learning-rate schedule
([`make_schedule`][make_schedule]: linear warm-up, then constant or cosine to the end of the budget).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from .config import TrainConfig

__all__ = ["make_adam", "make_schedule"]


def make_adam(model: nn.Module, config: TrainConfig) -> torch.optim.Adam:
    """Adam over the model's trainable parameters with ``config.lr`` and ``config.weight_decay``."""
    parameters = [p for p in model.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(f"{type(model).__name__} has no trainable parameters")
    return torch.optim.Adam(parameters, lr=config.lr, weight_decay=config.weight_decay)


def make_schedule(
    optimizer: torch.optim.Optimizer,
    config: TrainConfig,
    total_steps: int | None,
    elapsed: Callable[[], float] | None = None,
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over ``config.warmup_steps``, then constant or cosine decay to 0 at the end of the budget.

    The multiplier of the learning rate at step ``t`` (0-based) is ``(t + 1) / warmup`` during warm-up, then 1
    (``"constant"``) or ``(1 + cos(π · p)) / 2`` (``"cosine"``, SGDR, arXiv:1608.03983), where the progress ``p`` is
    the larger of ``(t − warmup) / (total_steps − warmup)`` and ``elapsed() / config.max_seconds``: a run with a time
    budget decays to 0 when its time is up (budget-aware decay, arXiv:1905.04753), whichever budget ends first.

    Args:
        elapsed: the training seconds so far (read at every step); needed for a time budget.
    """
    warmup, cosine = config.warmup_steps, config.schedule == "cosine"
    timed = config.max_seconds is not None and elapsed is not None
    if cosine and total_steps is None and not timed:
        raise ValueError("schedule='cosine' needs a known budget: set max_steps or max_seconds, or use a sized dataset")

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if not cosine:
            return 1.0
        progress = 0.0
        if total_steps is not None:
            progress = (step - warmup) / max(1, total_steps - warmup)
        if timed:
            progress = max(progress, elapsed() / config.max_seconds)  # type: ignore[misc, operator]
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
