"""What a fit supplies to the training engine: a [`Task`][Task] (the step and the evaluation) and its
[`StepOutput`][StepOutput]."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

__all__ = ["StepOutput", "Task"]


@dataclass(frozen=True)
class StepOutput:
    """What [`Task.step`][Task.step] returns for one batch.

    Attributes:
        loss: 0-d tensor the gradients come from.
        terms: named 0-d tensors (or floats) to log; their epoch means, weighted by ``weight``, enter the history.
        weight: the batch's weight in those means (its number of examples).
    """

    loss: Tensor
    terms: Mapping[str, Tensor | float] = field(default_factory=dict)
    weight: int = 1


class Task:
    """What one kind of fit supplies to [`train`][train]; subclasses write [`step`][step] and usually
    [`evaluate`][evaluate].

    Attributes:
        name: recorded in training states, so that a state of another kind of fit is refused on resume.
        monitor: the metric minimised by ``keep="best"``: ``record["eval"][monitor]`` with held-out data, else
            ``record["train"][monitor]``.
        has_eval: whether [`evaluate`][evaluate] returns held-out figures.
    """

    name = "task"
    monitor = "loss"
    has_eval = False

    def step(self, forward: Callable[..., Any], batch: Any) -> StepOutput:
        """Loss and terms of one ``batch``; call ``forward`` (the model, DDP-wrapped or compiled) for the forward."""
        raise NotImplementedError

    def start_epoch(self) -> None:
        """Reset per-epoch statistics (e.g. a code histogram)."""

    def epoch_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """The ``"train"`` record of the epoch from the (all-reduced) means of the step terms."""
        return means

    def evaluate(self, model: nn.Module) -> dict[str, float] | None:
        """Held-out figures of ``model`` (the plain module, or its weight average), or ``None``."""
        return None

    def images(self, model: nn.Module) -> Tensor | None:
        """Images ``(n, C, H, W)`` float in ``[0, 1]`` to show per epoch in TensorBoard, or ``None``."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """Per-epoch statistics to save in a training state (tensors, numbers)."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what [`state_dict`][state_dict] returned."""
