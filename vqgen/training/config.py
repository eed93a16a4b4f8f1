"""Settings of a training run: [`TrainConfig`][TrainConfig], validated once and JSON-able, one for every stage."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

if TYPE_CHECKING:
    import torch
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

from .. import checks

__all__ = ["DEFAULT_EPOCHS", "FitOptions", "TrainConfig", "TrainOptions"]

DEFAULT_EPOCHS = 10
"""The epochs of a run that gives no budget at all (``epochs``, ``max_steps`` and ``max_seconds`` all ``None``)."""


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run, shared by both stages (all JSON-serialisable).

    Attributes:
        epochs: passes over the training data; ``None`` (the default) means 10 when neither ``max_steps`` nor
            ``max_seconds`` is given, else no limit, so that a step or time budget alone is the budget (as
            Lightning's ``max_time``); see [`epoch_limit`][vqgen.training.config.TrainConfig.epoch_limit].
        batch_size: examples per optimisation step.
        lr: Adam learning rate. The VQ-VAE paper uses 2e-4 for 250k steps (arXiv:1711.00937); the default 1e-3
            suits the short CPU runs this library is tested with.
        weight_decay: Adam's L2 penalty.
        grad_clip: clip the global gradient norm to this value; ``None`` for no clipping.
        max_steps: stop after this many optimisation steps in total (the last, partial epoch is still evaluated
            and recorded); ``None`` for no limit.
        seed: seeds Python, NumPy and torch, and the shuffling order: the same seed and the same initial model
            give identical weights (on the same device and build of torch). For the same initial model, seed
            before building it with the same function: ``vqgen.seed_everything(seed)``, then ``vqgen.build(...)``
            (the ``vqgen`` training commands do so).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``None`` picks CUDA when available, else the CPU.
        checkpoint_dir: where to write the model (``save_pretrained``) and ``metrics.json``; ``None`` writes nothing.
            A fresh run (no ``resume=``) refuses a folder that already holds another run's training states or model
            (a folder must never mix two runs); resuming into the run's own folder is allowed.
        overwrite: let a fresh run take a ``checkpoint_dir`` that holds another run: that run's ``train_state/``,
            model, ``metrics.json`` and ``tensorboard/`` are deleted first (other files stay).
        keep: ``"best"`` keeps the checkpoint with the best monitored held-out metric (the training metric when
            there is no held-out data); ``"last"`` overwrites it after every epoch.
        progress: show a tqdm progress bar per epoch.
        eval_batch_size: batch size for evaluation; ``None`` uses ``batch_size``.
        max_seconds: stop after this much training time (evaluation excluded; checked after every step and agreed
            by all processes); ``None`` for no limit.
        save_states: write resumable training states under ``checkpoint_dir/train_state`` at every epoch end (and
            every ``save_every`` steps), to continue with ``resume=``.
        save_every: also write a training state every this many steps (implies ``save_states``).
        keep_states: how many training states to keep (the newest ones); at least 2 keeps a good one while the
            next is written.
        precision: ``"fp32"``; ``"bf16"`` (autocast, CPU and CUDA); ``"fp16"`` (autocast + gradient scaler, CUDA
            only). The nearest-code search of the quantizers stays float32 in every case.
        grad_accum: accumulate gradients over this many batches per optimisation step.
        schedule: learning-rate schedule after warm-up: ``"constant"`` or ``"cosine"`` (decay to 0 at the end of
            the budget: the last step of ``epochs`` or ``max_steps``, or ``max_seconds`` of training, whichever
            comes first).
        warmup_steps: linear warm-up from 0 to ``lr`` over this many steps.
        ema_decay: keep an exponential moving average of the weights with this decay (e.g. 0.999) and evaluate and
            save it instead of the raw weights; ``None`` for none.
        compile: run the forward pass through ``torch.compile``.
        backend: the ``torch.distributed`` backend under torchrun: ``None`` picks NCCL on CUDA, gloo on the CPU.
        num_workers: DataLoader worker processes.
        tensorboard: also log scalars (and images, where the fit draws some) to ``checkpoint_dir/tensorboard``
            when the ``tensorboard`` package is installed.

    Raises:
        TypeError: if a number, the seed or ``overwrite`` has the wrong type.
        ValueError: if a number is out of range or a choice (``precision``, ``schedule``, ``backend``, ``keep``) is
            not one of its values; the message names the field.

    Examples:
        >>> from vqgen.training import TrainConfig
        >>> config = TrainConfig(epochs=5, batch_size=32, precision="bf16")
        >>> config.replace(lr=2e-4).lr, config.epoch_limit
        (0.0002, 5)
        >>> TrainConfig(batch_size=0)
        Traceback (most recent call last):
        ValueError: batch_size must be > 0, got 0
    """

    epochs: int | None = None
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    grad_clip: float | None = None
    max_steps: int | None = None
    seed: int = 0
    device: str | None = None
    checkpoint_dir: str | None = None
    overwrite: bool = False
    keep: Literal["best", "last"] = "best"
    progress: bool = True
    eval_batch_size: int | None = None
    max_seconds: float | None = None
    save_states: bool = False
    save_every: int | None = None
    keep_states: int = 2
    precision: Literal["fp32", "bf16", "fp16"] = "fp32"
    grad_accum: int = 1
    schedule: Literal["constant", "cosine"] = "constant"
    warmup_steps: int = 0
    ema_decay: float | None = None
    compile: bool = False
    backend: Literal["gloo", "nccl"] | None = None
    num_workers: int = 0
    tensorboard: bool = False

    def __post_init__(self) -> None:
        """Validate every field (the errors are listed in the class docstring); accept paths and devices."""
        if self.epochs is not None:
            checks.check_positive(self.epochs, name="epochs", integer=True)
        checks.check_positive(self.batch_size, name="batch_size", integer=True)
        checks.check_positive(self.lr, name="lr")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)):
            raise TypeError(f"weight_decay must be a number, got {type(self.weight_decay).__name__}")
        if self.weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0, got {self.weight_decay}")
        if self.grad_clip is not None:
            checks.check_positive(self.grad_clip, name="grad_clip")
        if self.max_steps is not None:
            checks.check_positive(self.max_steps, name="max_steps", integer=True)
        if self.eval_batch_size is not None:
            checks.check_positive(self.eval_batch_size, name="eval_batch_size", integer=True)
        if self.max_seconds is not None:
            checks.check_positive(self.max_seconds, name="max_seconds")
        if self.save_every is not None:
            checks.check_positive(self.save_every, name="save_every", integer=True)
        checks.check_positive(self.keep_states, name="keep_states", integer=True)
        checks.check_positive(self.grad_accum, name="grad_accum", integer=True)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise ValueError(f"warmup_steps must be an int >= 0, got {self.warmup_steps!r}")
        if isinstance(self.num_workers, bool) or not isinstance(self.num_workers, int) or self.num_workers < 0:
            raise ValueError(f"num_workers must be an int >= 0, got {self.num_workers!r}")
        choices = {
            "precision": ("fp32", "bf16", "fp16"),
            "schedule": ("constant", "cosine"),
            "backend": (None, "gloo", "nccl"),
        }
        for key, allowed in choices.items():
            if getattr(self, key) not in allowed:
                raise ValueError(f"{key} must be one of {list(allowed)}, got {getattr(self, key)!r}")
        if self.ema_decay is not None and not (isinstance(self.ema_decay, float) and 0.0 < self.ema_decay < 1.0):
            raise ValueError(f"ema_decay must be a float in (0, 1) such as 0.999, or None; got {self.ema_decay!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"seed must be an int, got {type(self.seed).__name__}")
        if not isinstance(self.overwrite, bool):
            raise TypeError(f"overwrite must be a bool, got {type(self.overwrite).__name__}")
        if self.keep not in ("best", "last"):
            raise ValueError(f"keep must be 'best' or 'last', got {self.keep!r}")
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))  # accept torch.device
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            object.__setattr__(self, "checkpoint_dir", str(self.checkpoint_dir))  # accept pathlib.Path

    @property
    def epoch_limit(self) -> int | None:
        """The epochs a run may take: ``epochs`` when given; else ``DEFAULT_EPOCHS`` (10) when neither ``max_steps``
        nor ``max_seconds`` is given, and ``None`` (no limit: the step or time budget ends the run) when one is.

        Examples:
            >>> from vqgen.training import TrainConfig
            >>> TrainConfig().epoch_limit, TrainConfig(max_steps=500).epoch_limit, TrainConfig(epochs=3).epoch_limit
            (10, None, 3)
        """
        if self.epochs is not None:
            return self.epochs
        return DEFAULT_EPOCHS if self.max_steps is None and self.max_seconds is None else None

    def budget_spent(self, step: int, train_seconds: float) -> bool:
        """Whether ``max_steps`` or ``max_seconds`` is used up after ``step`` steps and ``train_seconds`` of
        training (a resumed run that had finished stops at once, before another step).

        Args:
            step: optimisation steps taken so far.
            train_seconds: training time so far, evaluation excluded.

        Returns:
            True when either budget is reached; never with neither budget set.

        Examples:
            >>> from vqgen.training import TrainConfig
            >>> config = TrainConfig(max_steps=100, max_seconds=60.0)
            >>> config.budget_spent(99, 10.0), config.budget_spent(100, 10.0), config.budget_spent(5, 60.0)
            (False, True, True)
        """
        steps_up = self.max_steps is not None and step >= self.max_steps
        return steps_up or (self.max_seconds is not None and train_seconds >= self.max_seconds)

    def replace(self, **overrides: Unpack[TrainOptions]) -> TrainConfig:
        """A copy with some fields changed; an unknown field raises a ``TypeError`` listing the valid ones.

        Args:
            **overrides: new values of fields ([`TrainOptions`][TrainOptions]).

        Returns:
            A new, validated config.

        Raises:
            TypeError: if a key is not a field (or a value has the wrong type).
            ValueError: if a value is out of range.

        Examples:
            >>> from vqgen.training import TrainConfig
            >>> TrainConfig(epochs=5).replace(epochs=2, seed=1)
            TrainConfig(epochs=2, batch_size=64, lr=0.001, ..., seed=1, ...)
            >>> TrainConfig().replace(epoch=2)
            Traceback (most recent call last):
            TypeError: unknown training options ['epoch']; TrainConfig accepts ['epochs', 'batch_size', ...]
        """
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise TypeError(f"unknown training options {unknown}; TrainConfig accepts {fields}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for ``metrics.json`` and logs).

        Returns:
            ``{field: value}`` of every field.

        Examples:
            >>> from vqgen.training import TrainConfig
            >>> settings = TrainConfig(epochs=2).to_dict()
            >>> settings["epochs"], settings["batch_size"], len(settings)
            (2, 64, 26)
        """
        return dataclasses.asdict(self)


class TrainOptions(TypedDict, total=False):
    """[`TrainConfig`][TrainConfig]'s fields as keyword arguments, each optional: what ``fit_vqvae(model, data,
    **options)``, ``fit_prior`` and ``TrainConfig.replace`` take (a test keeps the two in step).

    Examples:
        >>> from vqgen.training.config import TrainConfig, TrainOptions
        >>> options: TrainOptions = {"epochs": 2, "batch_size": 32}
        >>> TrainConfig().replace(**options).batch_size
        32
    """

    epochs: int | None
    batch_size: int
    lr: float
    weight_decay: float
    grad_clip: float | None
    max_steps: int | None
    seed: int
    device: str | torch.device | None
    checkpoint_dir: str | os.PathLike[str] | None
    overwrite: bool
    keep: Literal["best", "last"]
    progress: bool
    eval_batch_size: int | None
    max_seconds: float | None
    save_states: bool
    save_every: int | None
    keep_states: int
    precision: Literal["fp32", "bf16", "fp16"]
    grad_accum: int
    schedule: Literal["constant", "cosine"]
    warmup_steps: int
    ema_decay: float | None
    compile: bool
    backend: Literal["gloo", "nccl"] | None
    num_workers: int
    tensorboard: bool


class FitOptions(TrainOptions, total=False):
    """The options of one stage of [`TwoStageModel.fit`][vqgen.two_stage.TwoStageModel.fit]: ``TrainConfig``'s
    fields, or a whole ``config``, and a training state to ``resume`` from.

    Examples:
        >>> from vqgen.training.config import FitOptions, TrainConfig
        >>> stage1: FitOptions = {"config": TrainConfig(epochs=5), "checkpoint_dir": "runs/stage1"}
        >>> sorted(stage1)
        ['checkpoint_dir', 'config']
    """

    config: TrainConfig
    resume: str | os.PathLike[str]
