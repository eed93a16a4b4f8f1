"""Pieces shared by the training engine ([`vqgen.training.engine`][vqgen.training.engine]) and the fits that feed it.

- [`TrainConfig`][TrainConfig]: validated, JSON-able settings of a run, one for every stage;
- [`seed_everything`][seed_everything], [`resolve_device`][resolve_device]: same seed, same run; ``"cuda"`` when
  available, else ``"cpu"``;
- [`MetricsHistory`][MetricsHistory]: the per-epoch history, saved in ``metrics.json``;
- [`InMemoryData`][InMemoryData], [`TrainData`][TrainData]: the types of data arguments;
- internal helpers: ``as_images``, ``check_unit_range``, ``images_to_float``, ``batch_indices`` (in-memory data and
  its batches, for evaluation); ``make_adam``, ``make_schedule`` (Adam, linear warm-up then constant or cosine learning
  rate); ``RunningMeans`` (epoch means) and ``CheckpointKeeper`` (the kept, best or last, model).

Nothing here knows about VQ-VAEs or priors.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .. import checks
from ..atomic import write_atomic
from ..persistence import save_pretrained

if TYPE_CHECKING:
    from torch.utils.data import DataLoader, Dataset

    from ..data import ImageDataset

__all__ = [
    "InMemoryData",
    "TrainData",
    "METRICS_NAME",
    "CheckpointKeeper",
    "MetricsHistory",
    "RunningMeans",
    "TrainConfig",
    "as_images",
    "batch_indices",
    "check_unit_range",
    "images_to_float",
    "make_adam",
    "make_schedule",
    "num_batches",
    "progress",
    "resolve_device",
    "seed_everything",
]

InMemoryData: TypeAlias = "ImageDataset | Tensor"
"""Data held in memory: a [`vqgen.data`][vqgen.data] dataset (its ``.images`` and ``.labels``) or a tensor
``(N, C, H, W)``: uint8 images (or float in ``[0, 1]``), or integer code grids for a prior."""

TrainData: TypeAlias = "ImageDataset | Tensor | Dataset | DataLoader"
"""What the fits train on: [`InMemoryData`][vqgen.training.common.InMemoryData], or any ``torch.utils.data``
``Dataset`` (e.g. a lazily decoded [`ImageFolderDataset`][vqgen.data.ImageFolderDataset]), ``IterableDataset`` or
``DataLoader``, streamed batch by batch (items: images, or ``(images, labels)``)."""

logger = logging.getLogger(__name__)

METRICS_NAME = "metrics.json"
#: The epochs of a run that gives no budget at all (``epochs``, ``max_steps`` and ``max_seconds`` all ``None``).
DEFAULT_EPOCHS = 10


@dataclass(frozen=True)
class TrainConfig:
    """Settings of a training run, shared by both stages (all JSON-serialisable).

    Attributes:
        epochs: passes over the training data; ``None`` (the default) means 10 when neither ``max_steps`` nor
            ``max_seconds`` is given, else no limit, so that a step or time budget alone is the budget (as
            Lightning's ``max_time``); see [`epoch_limit`][vqgen.training.TrainConfig.epoch_limit].
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
        nor ``max_seconds`` is given, and ``None`` (no limit: the step or time budget ends the run) when one is."""
        if self.epochs is not None:
            return self.epochs
        return DEFAULT_EPOCHS if self.max_steps is None and self.max_seconds is None else None

    def budget_spent(self, step: int, train_seconds: float) -> bool:
        """Whether ``max_steps`` or ``max_seconds`` is used up after ``step`` steps and ``train_seconds`` of
        training (a resumed run that had finished stops at once, before another step)."""
        steps_up = self.max_steps is not None and step >= self.max_steps
        return steps_up or (self.max_seconds is not None and train_seconds >= self.max_seconds)

    def replace(self, **overrides: Any) -> TrainConfig:
        """A copy with some fields changed; an unknown field raises a ``TypeError`` listing the valid ones."""
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = sorted(set(overrides) - set(fields))
        if unknown:
            raise TypeError(f"unknown training options {unknown}; TrainConfig accepts {fields}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (for ``metrics.json`` and logs)."""
        return dataclasses.asdict(self)


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python's, NumPy's and torch's global generators; returns a CPU ``torch.Generator`` for shuffling.

    The training engine calls it with ``TrainConfig.seed`` (plus the process's rank) when training starts; call it
    yourself before building a model to make its initial weights the seed's too::

        vqgen.seed_everything(0)
        model = vqgen.TwoStageModel.from_config(config)   # the same initial weights every time
        model.fit(train, stage1={"seed": 0}, stage2={"seed": 0})
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)  # noqa: NPY002  (seeds the legacy global generator that libraries still use)
    torch.manual_seed(seed)
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``device`` as a ``torch.device``; ``None`` picks the first CUDA device when available, else the CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(
            f"device {device!r} is not a valid torch device ('cpu', 'cuda', 'cuda:0', ...): {error}"
        ) from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use device='cpu' or None")
    return resolved


def as_images(data: Any, *, name: str = "data") -> Tensor:
    """Images ``(N, C, H, W)`` from a [`vqgen.data`][vqgen.data] dataset (its ``.images``) or a tensor.

    uint8 images (``[0, 255]``) and float images (``[0, 1]``, checked here once, see
    [`check_unit_range`][check_unit_range]) are accepted; they are returned unchanged (not copied, not moved), and
    converted per batch by [`images_to_float`][images_to_float].
    """
    images = getattr(data, "images", data)
    if not isinstance(images, Tensor):
        raise TypeError(
            f"{name} must be a vqgen.data dataset (with .images) or a (N, C, H, W) tensor, got {type(data).__name__}"
        )
    checks.check_tensor(images, name=name, ndim=4)
    if images.dtype != torch.uint8 and not images.is_floating_point():
        raise TypeError(f"{name} must hold uint8 images in [0, 255] or float images in [0, 1], got {images.dtype}")
    if images.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has shape {tuple(images.shape)}")
    return check_unit_range(images, name=name)


def check_unit_range(images: Tensor, *, name: str = "images") -> Tensor:
    """``images`` unchanged; float images must lie in ``[0, 1]`` (uint8 ones are not looked at).

    One ``aminmax`` over the tensor, where it lies: float pixels in ``[0, 255]`` (or ``[-1, 1]``) would otherwise
    train without a word, on a reconstruction error hundreds of times too large.
    """
    if not images.is_floating_point() or images.numel() == 0:
        return images
    low, high = (float(v) for v in torch.aminmax(images.detach()))
    if not (math.isfinite(low) and math.isfinite(high)):
        checks.check_finite(images, name=name)  # says how many NaN or inf there are
    if high > 1:
        fix = "divide by 255" if high > 2 else "clamp them with x.clamp(0, 1)"
        raise ValueError(
            f"{name}: float images must be in [0, 1], got values up to {_value(high)}: {fix}, or pass uint8"
        )
    if low < 0:
        fix = "map them to [0, 1] ((x + 1) / 2 for [-1, 1])" if low < -0.5 else "clamp them with x.clamp(0, 1)"
        raise ValueError(
            f"{name}: float images must be in [0, 1], got values down to {_value(low)}: {fix}, or pass uint8"
        )
    return images


def _value(x: float) -> str:
    """A pixel value for an error message: ``255.0``, ``-1.0``, ``1.00049``."""
    return f"{x:.1f}" if abs(x) >= 2 or x == round(x) else f"{x:.6g}"


def images_to_float(
    batch: Tensor, device: torch.device | str | None = None, *, check: bool = True, name: str = "images"
) -> Tensor:
    """A batch ``(B, C, H, W)`` (uint8 or float) → float32 in ``[0, 1]`` on ``device``.

    Args:
        check: raise unless float batches lie in ``[0, 1]`` ([`check_unit_range`][check_unit_range], on the batch
            where it comes from, before it moves); ``False`` for batches of data already checked whole.
        name: the data's name in that error.
    """
    if check:
        check_unit_range(batch, name=name)
    batch = batch.to(device, non_blocking=True) if device is not None else batch
    return batch.float() / 255 if batch.dtype == torch.uint8 else batch.float()


def batch_indices(
    n: int, batch_size: int, *, shuffle: bool = True, generator: torch.Generator | None = None
) -> Iterator[Tensor]:
    """Index tensors for one pass over ``n`` examples, ``batch_size`` at a time (the last batch may be smaller)."""
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    yield from order.split(batch_size)


def num_batches(n: int, batch_size: int) -> int:
    """``ceil(n / batch_size)``, the number of batches [`batch_indices`][batch_indices] yields."""
    return math.ceil(n / batch_size)


def progress(iterable: Iterable, *, total: int | None = None, desc: str = "", enabled: bool = True) -> tqdm:
    """A tqdm progress bar over ``iterable``; ``enabled=False`` makes it silent (it still iterates)."""
    return tqdm(iterable, total=total, desc=desc, disable=not enabled, leave=False, dynamic_ncols=True)


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


class RunningMeans:
    """Weighted running means of named scalars (e.g. per-batch losses weighted by batch size)."""

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._weight = 0.0

    def add(self, values: Mapping[str, float | Tensor], *, weight: float = 1.0) -> None:
        """Accumulate ``values`` (floats or 0-d tensors) with ``weight``."""
        for key, value in values.items():
            value = float(value.detach()) if isinstance(value, Tensor) else float(value)
            self._sums[key] = self._sums.get(key, 0.0) + value * weight
        self._weight += weight

    def means(self) -> dict[str, float]:
        """The weighted means so far (empty if nothing was added)."""
        if not self._weight:
            return {}
        return {key: total / self._weight for key, total in self._sums.items()}

    def state_dict(self) -> dict[str, Any]:
        """The sums and the total weight (JSON-able), to resume an epoch part-way."""
        return {"sums": dict(self._sums), "weight": self._weight}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums = {str(key): float(value) for key, value in state["sums"].items()}
        self._weight = float(state["weight"])


class MetricsHistory(list):
    """A list of per-epoch records (plain dicts), e.g. ``{"epoch": 1, "step": 200, "train": {...}, "eval": {...}}``.

    It is a ``list``, so ``history[-1]["eval"]["reconstruction_mse"]`` reads the last held-out figure.
    """

    def best(self, split: str, key: str, *, mode: Literal["min", "max"] = "min") -> dict[str, Any] | None:
        """The record with the lowest (``mode="min"``) or highest ``record[split][key]``; ``None`` if none has it."""
        scored = [record for record in self if key in record.get(split, {})]
        if not scored:
            return None
        sign = 1 if mode == "min" else -1
        return min(scored, key=lambda record: sign * record[split][key])

    def save(self, path: str | Path, *, extra: Mapping[str, Any] | None = None) -> Path:
        """Write ``{"history": [...], **extra}`` as JSON (``extra``: the run's settings, the best epoch, ...);
        atomically, with [`write_atomic`][vqgen.atomic.write_atomic]."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps({**(extra or {}), "history": list(self)}, indent=2, sort_keys=True) + "\n")
        return path


class CheckpointKeeper:
    """Saves a model with ``save_pretrained`` plus ``metrics.json`` after each epoch, keeping the best or the last.

    Args:
        directory: the checkpoint directory; ``None`` makes [`update`][update] a no-op.
        keep: ``"best"`` saves only when ``record[monitor[0]][monitor[1]]`` improves; ``"last"`` saves every time.
        monitor: ``(split, key)`` of the metric to minimise, e.g. ``("eval", "reconstruction_mse")``.
        settings: written into ``metrics.json`` beside the history (e.g. ``TrainConfig.to_dict()``).
    """

    def __init__(
        self,
        directory: str | Path | None,
        *,
        keep: Literal["best", "last"] = "best",
        monitor: tuple[str, str] = ("eval", "loss"),
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.keep, self.monitor, self.settings = keep, monitor, dict(settings or {})
        self.best_value = math.inf
        self.best_epoch: int | None = None

    def update(self, model: nn.Module, history: MetricsHistory) -> bool:
        """Consider the last record of ``history``; returns True if the model was saved."""
        record = history[-1]
        split, key = self.monitor
        value = record.get(split, {}).get(key, math.nan)
        improved = value < self.best_value  # False for NaN
        if improved:
            self.best_value, self.best_epoch = value, record.get("epoch")
        if self.directory is None:
            return False
        save = self.keep == "last" or improved or self.best_epoch is None
        if save:
            save_pretrained(model, self.directory)
            logger.info("saved %s to %s (%s/%s = %.6g)", type(model).__name__, self.directory, split, key, value)
        extra = {"settings": self.settings, "keep": self.keep, "monitor": f"{split}/{key}"}
        extra["saved_epoch"] = record.get("epoch") if self.keep == "last" else self.best_epoch
        history.save(self.directory / METRICS_NAME, extra=extra)
        return save
