"""An exponential moving average of a model's weights: what a run with ``ema_decay`` evaluates, saves and samples."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

__all__ = ["WeightAverage"]


class WeightAverage:
    """An exponential moving average of a model's parameters, for evaluation, saving and sampling.

    After update ``n`` the average is ``a ← d·a + (1 − d)·θ`` with ``d = min(decay, (1 + n) / (10 + n))``: the
    warm-up of TensorFlow's ``ExponentialMovingAverage(num_updates=...)``, so that short runs are not dominated by
    the initial weights. Buffers (batch-norm statistics, EMA codebooks, counters) are copied, not averaged.

    Args:
        model: the trained model; ``module`` is a frozen copy of it holding the average.
        decay: the largest decay, e.g. 0.999.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).requires_grad_(False)
        self.decay, self.updates = decay, 0

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        self.updates += 1
        decay = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for average, current in zip(self.module.parameters(), model.parameters(), strict=True):
            average.lerp_(current.detach(), 1.0 - decay)
        for average, current in zip(self.module.buffers(), model.buffers(), strict=True):
            average.copy_(current)

    def state_dict(self) -> dict[str, Any]:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])
