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

    Examples:
        >>> import torch
        >>> from vqgen.training import StepOutput
        >>> loss = torch.tensor(0.25, requires_grad=True)
        >>> out = StepOutput(loss, {"loss": loss.detach(), "accuracy": 0.9}, weight=64)
        >>> out.weight, sorted(out.terms)
        (64, ['accuracy', 'loss'])
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

    Examples:
        A task for a linear regression, trained by the engine (``fit_vqvae``, ``fit_prior`` and
        ``train_classifier`` are the same with their own task):

        >>> import torch
        >>> from torch import nn
        >>> from vqgen.training import StepOutput, Task, TrainConfig, train
        >>> from vqgen.training.batches import loader_for
        >>> class Regression(Task):
        ...     name, monitor = "regression", "mse"
        ...
        ...     def step(self, forward, batch):
        ...         x, y = batch
        ...         loss = nn.functional.mse_loss(forward(x), y)
        ...         return StepOutput(loss, {"mse": loss.detach()}, weight=len(x))
        >>> x = torch.randn(256, 3)
        >>> y = x @ torch.tensor([[1.0], [2.0], [3.0]])
        >>> config = TrainConfig(epochs=20, batch_size=32, lr=0.05, progress=False)
        >>> model = nn.Linear(3, 1)
        >>> history = train(model, Regression(), loader_for(x, y, config=config), config)
        >>> history[-1]["train"]["mse"] < 1e-3, model.weight.detach().round(decimals=1)
        (True, tensor([[1., 2., 3.]]))
    """

    name = "task"
    monitor = "loss"
    has_eval = False

    def step(self, forward: Callable[..., Any], batch: Any) -> StepOutput:
        """Loss and terms of one ``batch``; call ``forward`` (the model, DDP-wrapped or compiled) for the forward.

        Args:
            forward: the model to call, wrapped as the engine runs it (``DistributedDataParallel``, compiled).
            batch: one batch of the loader, on the CPU (move it to the model's device).

        Returns:
            The batch's loss, the terms to log and its weight.

        Raises:
            NotImplementedError: every task writes its own.

        Examples:
            >>> import torch
            >>> from torch import nn
            >>> from vqgen.training import StepOutput, Task
            >>> class Regression(Task):
            ...     def step(self, forward, batch):
            ...         x, y = batch
            ...         loss = nn.functional.mse_loss(forward(x), y)
            ...         return StepOutput(loss, {"mse": loss.detach()}, weight=len(x))
            >>> out = Regression().step(nn.Linear(3, 1), (torch.randn(8, 3), torch.randn(8, 1)))
            >>> out.loss.requires_grad, out.weight
            (True, 8)
        """
        raise NotImplementedError

    def start_epoch(self) -> None:
        """Reset per-epoch statistics (e.g. a code histogram).

        Examples:
            >>> from vqgen.training import Task
            >>> class Counting(Task):
            ...     def start_epoch(self):
            ...         self.batches = 0
            >>> task = Counting()
            >>> task.start_epoch()
            >>> task.batches
            0
        """

    def epoch_metrics(self, means: dict[str, float]) -> dict[str, float]:
        """The ``"train"`` record of the epoch from the (all-reduced) means of the step terms.

        Args:
            means: ``{term: mean over the epoch's batches, weighted by each batch's weight}``.

        Returns:
            The record; by default ``means`` itself. Tasks add figures of the whole epoch (e.g. ``perplexity``).

        Examples:
            >>> import math
            >>> from vqgen.training import Task
            >>> class Likelihood(Task):
            ...     def epoch_metrics(self, means):
            ...         return {**means, "bits_per_dim": means["nll"] / math.log(2)}
            >>> Likelihood().epoch_metrics({"nll": math.log(2)})
            {'nll': 0.6931471805599453, 'bits_per_dim': 1.0}
        """
        return means

    def evaluate(self, model: nn.Module) -> dict[str, float] | None:
        """Held-out figures of ``model`` (the plain module, or its weight average), or ``None``.

        Args:
            model: the module to evaluate, in eval mode, unwrapped.

        Returns:
            ``{figure: value}`` (the ``"eval"`` record of the epoch), or ``None`` without held-out data.

        Examples:
            >>> import torch
            >>> from torch import nn
            >>> from vqgen.training import Task
            >>> class HeldOut(Task):
            ...     has_eval = True
            ...
            ...     def evaluate(self, model):
            ...         return {"mse": nn.functional.mse_loss(model(torch.ones(4, 1)), torch.zeros(4, 1)).item()}
            >>> model = nn.Linear(1, 1)
            >>> _ = nn.init.zeros_(model.weight), nn.init.zeros_(model.bias)
            >>> HeldOut().evaluate(model), Task().evaluate(model)
            ({'mse': 0.0}, None)
        """
        return None

    def images(self, model: nn.Module) -> Tensor | None:
        """Images ``(n, C, H, W)`` float in ``[0, 1]`` to show per epoch in TensorBoard, or ``None``.

        Args:
            model: the module being trained, in eval mode, unwrapped.

        Returns:
            ``(n, C, H, W)`` float images, or ``None`` for none.

        Examples:
            >>> from torch import nn
            >>> from vqgen.training import Task
            >>> Task().images(nn.Linear(1, 1)) is None
            True
        """
        return None

    def state_dict(self) -> dict[str, Any]:
        """Per-epoch statistics to save in a training state (tensors, numbers).

        Returns:
            What [`load_state_dict`][load_state_dict] restores on resume; ``{}`` by default.

        Examples:
            >>> from vqgen.training import Task
            >>> class Counting(Task):
            ...     batches = 0
            ...
            ...     def state_dict(self):
            ...         return {"batches": self.batches}
            ...
            ...     def load_state_dict(self, state):
            ...         self.batches = state["batches"]
            >>> task, resumed = Counting(), Counting()
            >>> task.batches = 7
            >>> resumed.load_state_dict(task.state_dict())
            >>> resumed.batches
            7
        """
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what [`state_dict`][state_dict] returned.

        Args:
            state: a mapping returned by ``state_dict`` (read back from a training state).

        Examples:
            >>> from vqgen.training import Task
            >>> Task().load_state_dict({})                     # nothing to restore by default
        """
