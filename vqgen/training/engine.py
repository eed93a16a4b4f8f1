"""The one training loop: every fit (stage 1, priors, the FID classifier) supplies a [`Task`][Task]; this runs it.

A task says what one batch costs ([`Task.step`][Task.step]: the loss and the terms to log) and how to evaluate ([`Task.
evaluate`][Task.
evaluate]); the engine does the rest, the same way for every model::

    history = train(model, MyTask(...), loader_or_tensors, config, resume="runs/x")

- data: an [`EpochLoader`][vqgen.training.batches.EpochLoader] (see
  [`make_loader`][vqgen.training.batches.make_loader]), so in-memory tensors and streamed files take the same
  ``DataLoader`` path;
- distributed: under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` (NCCL on CUDA, gloo on the
  CPU), each rank reads its shard, epoch means are all-reduced, only rank 0 writes files, logs and shows progress, and
  every stop (``max_steps``, ``max_seconds``, a rank out of data) is agreed by all ranks, so none waits forever;
- precision: ``bf16`` autocast (CPU and CUDA) or ``fp16`` autocast with a gradient scaler (CUDA);
- optimisation: Adam, linear warm-up then constant or cosine learning rate, gradient accumulation and clipping, an
  optional exponential moving average of the weights ([`WeightAverage`][WeightAverage]: evaluated, saved and copied into
  the model at the end);
- checkpoints: the kept model (``save_pretrained``, best or last epoch) and ``metrics.json`` as before, plus
  resumable training states ([`vqgen.training.state`][vqgen.training.state]) every ``save_every`` steps and at every
  epoch end; ``resume=`` continues bit for bit where a state was written (same seed, one process, same device and
  build);
- output folders: a fresh run gets a new run id (recorded in its states, kept when it is resumed) and refuses a
  ``checkpoint_dir`` holding another run's states or model unless ``overwrite=True``, which deletes them first.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ..persistence import load_state_strict
from .batches import EpochLoader
from .config import TrainConfig
from .distributed import DistContext, all_reduce_, any_rank, setup
from .history import CheckpointKeeper, MetricsHistory, RunningMeans, progress
from .optim import make_adam, make_schedule
from .runtime import seed_everything
from .state import STATE_DIR, capture_rng, clear_run, load_state, restore_rng, run_artifacts, run_ids, save_state
from .writable import check_writable

__all__ = ["StepOutput", "Task", "WeightAverage", "train"]

logger = logging.getLogger(__name__)

#: Options that may change when resuming (budgets, output, display); every other TrainConfig field must match.
RESUMABLE_CHANGES = frozenset(
    {"epochs", "max_steps", "max_seconds", "checkpoint_dir", "progress", "save_every", "save_states", "keep_states",
     "device", "num_workers", "tensorboard", "compile", "eval_batch_size", "keep", "backend", "overwrite"}
)  # fmt: skip


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


def _autocast(config: TrainConfig, device: torch.device):
    if config.precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _check_precision(config: TrainConfig, device: torch.device) -> None:
    if config.precision == "fp16" and device.type != "cuda":
        raise ValueError(
            f"precision='fp16' needs a CUDA device (float16 autocast with a gradient scaler), but training runs on "
            f"{device}; use precision='bf16' on the CPU"
        )


def _model_identity(model: nn.Module) -> Any:
    to_spec = getattr(model, "to_spec", None)
    return to_spec() if callable(to_spec) else type(model).__qualname__


_ABSENT = "(absent)"


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """``"path.key: old -> new"`` for every leaf where two JSON-like values differ (mappings by key, sequences of
    one length by index), e.g. ``model.quantizer.config.num_codes: 16 -> 8``."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys = sorted(set(old) | set(new), key=str)
        return [d for k in keys for d in _differences(old.get(k, _ABSENT), new.get(k, _ABSENT), f"{path}.{k}")]
    if isinstance(old, (list, tuple)) and isinstance(new, (list, tuple)) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in _differences(a, b, f"{path}.{i}")]
    if old == new:
        return []
    show = [value if value is _ABSENT else repr(value) for value in (old, new)]
    return [f"{path.lstrip('.')}: {show[0]} -> {show[1]}"]


def _model_differences(old: Any, new: Any) -> list[str]:
    """The differences of two model identities (specs ``{"kind", "name", "config"}``), the spec's own ``config``
    level left out of the paths: ``model.prior.config.num_layers: 6 -> 8`` for a TwoStageModel."""
    if not (isinstance(old, Mapping) and isinstance(new, Mapping)):
        return _differences(old, new, "model")
    outer = _differences({k: v for k, v in old.items() if k != "config"},
                         {k: v for k, v in new.items() if k != "config"}, "model")  # fmt: skip
    return outer + _differences(old.get("config"), new.get("config"), "model")


def _listed(differences: list[str], most: int = 4) -> str:
    shown = ", ".join(differences[:most])
    return shown + (f" and {len(differences) - most} more" if len(differences) > most else "")


def _check_resumable(state: Mapping[str, Any], *, task: Task, model: nn.Module, config: TrainConfig,
                     ctx: DistContext) -> None:  # fmt: skip
    where = state["path"]
    if state["task"] != task.name:
        raise ValueError(f"resume: {where} is a state of a {state['task']!r} fit, not of {task.name!r}")
    identity = _model_identity(model)
    if state["model_identity"] != identity:
        raise ValueError(
            f"resume: {where} holds another model ({_listed(_model_differences(state['model_identity'], identity))}); "
            "resume with the model (and config) the state was written by"
        )
    saved = {k: v for k, v in state["config"].items() if k not in RESUMABLE_CHANGES}
    now = {k: v for k, v in config.to_dict().items() if k in saved}
    changed = _differences(saved, now, "")
    if changed:
        raise ValueError(
            f"resume: {where} was trained with other settings ({_listed(changed)}); resume with those (only budgets, "
            "output and display options may change)"
        )
    if state["world_size"] != ctx.world_size:
        raise ValueError(
            f"resume: {where} was written by {state['world_size']} process(es), but this run has {ctx.world_size}; "
            f"the data position and shuffling are per rank, so resume with --nproc_per_node {state['world_size']}"
        )


def _claim_checkpoint_dir(config: TrainConfig, *, run_id: str | None, resumed: bool) -> bool:
    """Check ``config.checkpoint_dir`` before training; returns whether another run must be cleared out of it first.

    A folder holding nothing of a run, or (resuming) only this run's states, is taken as it is; one holding another
    run's states or model is refused unless ``config.overwrite``.
    """
    if config.checkpoint_dir is None:
        return False
    directory = Path(config.checkpoint_dir)
    if directory.exists() and not directory.is_dir():
        raise ValueError(
            f"checkpoint_dir {directory} is a file, not a folder; give the folder to write the model, metrics.json and "
            "train_state/ to"
        )
    found = run_artifacts(directory)
    if not found or (resumed and run_ids(directory) == {run_id}):
        return False
    if config.overwrite:
        return True
    raise ValueError(
        f"checkpoint_dir {directory} already holds another run ({', '.join(found)}); continue it with resume=, write "
        "to another folder, or pass overwrite=True to delete that run first"
    )


def train(
    model: nn.Module,
    task: Task,
    loader: EpochLoader | Callable[[DistContext], EpochLoader],
    config: TrainConfig,
    *,
    resume: str | Path | None = None,
    settings: Mapping[str, Any] | None = None,
) -> MetricsHistory:
    """Train ``model`` in place on the batches of ``loader``, each costed by ``task``; returns the history.

    Args:
        model: the module to train (its parameters must be trainable).
        task: the step and the evaluation.
        loader: an [`EpochLoader`][EpochLoader], or a function of this process's [`DistContext`][DistContext] returning
            one (so that it can shard over ranks).
        config: the settings (see [`TrainConfig`][vqgen.training.TrainConfig]).
        resume: a training state (or a ``checkpoint_dir`` holding ``train_state/``) to continue from.
        settings: extra JSON-able facts written into ``metrics.json`` beside the config.

    Returns:
        The per-epoch history: ``{"epoch", "step", "train": {...}, "eval": {...}, "train_seconds", "seconds"}``.
    """
    wants_states = config.save_states or config.save_every is not None
    if wants_states and not config.checkpoint_dir:
        raise ValueError("save_states / save_every need checkpoint_dir: the directory to write training states to")
    state = load_state(resume) if resume is not None else None
    run_id = state["run_id"] if state is not None else uuid.uuid4().hex  # kept on resume, new for a fresh run
    clear = _claim_checkpoint_dir(config, run_id=run_id, resumed=state is not None)
    check_writable(config.checkpoint_dir)  # a read-only folder fails now, not after an epoch of training
    ctx = setup(config.device, config.backend)
    if clear and ctx.is_main:
        logger.info("overwrite=True: deleting the earlier run in %s", config.checkpoint_dir)
        clear_run(config.checkpoint_dir)
    _check_precision(config, ctx.device)
    device = ctx.device
    seed_everything(config.seed + ctx.rank)
    model.to(device).train()
    loader = loader(ctx) if callable(loader) and not isinstance(loader, EpochLoader) else loader
    optimizer = make_adam(model, config)
    per_epoch = loader.batches_per_epoch
    epochs = config.epoch_limit  # None: no limit, a step or time budget ends the run
    total_steps = config.max_steps
    if per_epoch is not None and epochs is not None:
        planned = epochs * math.ceil(per_epoch / config.grad_accum)
        total_steps = planned if total_steps is None else min(total_steps, planned)
    clock = [0.0]  # training seconds at the last optimiser step (agreed by all ranks): the time-budget schedule's
    schedule = make_schedule(optimizer, config, total_steps, elapsed=lambda: clock[0])
    scaler = torch.amp.GradScaler(device.type, enabled=config.precision == "fp16")
    average = WeightAverage(model, config.ema_decay) if config.ema_decay is not None else None
    forward: Callable[..., Any] = model
    if ctx.distributed:
        ids = [device.index] if device.type == "cuda" else None
        forward = nn.parallel.DistributedDataParallel(model, device_ids=ids)
    if config.compile:
        forward = torch.compile(forward)

    split = "eval" if task.has_eval else "train"
    all_settings = {**config.to_dict(), "world_size": ctx.world_size, **dict(settings or {})}
    keeper = CheckpointKeeper(
        config.checkpoint_dir if ctx.is_main else None, keep=config.keep, monitor=(split, task.monitor),
        settings=all_settings,
    )  # fmt: skip
    history = MetricsHistory()
    step, epoch, skip, train_seconds = 0, 1, 0, 0.0
    epoch_state: dict[str, Any] | None = None
    if state is not None:
        _check_resumable(state, task=task, model=model, config=config, ctx=ctx)
        load_state_strict(model, state["model"], source=state["path"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        if average is not None:
            average.load_state_dict(state["average"])
        step, epoch, skip, train_seconds = state["step"], state["epoch"], state["batches_done"], state["train_seconds"]
        clock[0] = train_seconds
        history.extend(state["history"])
        keeper.best_value, keeper.best_epoch = state["keeper"]["best_value"], state["keeper"]["best_epoch"]
        epoch_state = state["epoch_state"] if skip else None
        restore_rng(state["rng_rank"][ctx.rank])
        logger.info("resumed from %s at step %d (epoch %d, %d batches in)", state["path"], step, epoch, skip)
    state_dir = Path(config.checkpoint_dir) / STATE_DIR if wants_states else None
    writer = _tensorboard(config, ctx)

    def save(batches_done: int, epoch_now: int, means: RunningMeans | None) -> None:
        if state_dir is None:
            return
        rng = [capture_rng()]
        if ctx.distributed:  # every rank's generators, gathered on rank 0
            gathered: list[Any] = [None] * ctx.world_size
            dist.all_gather_object(gathered, _plain_rng(rng[0]))
            rng = gathered
        if not ctx.is_main:
            return
        body = {
            "task": task.name, "model_identity": _model_identity(model), "config": config.to_dict(),
            "world_size": ctx.world_size, "step": step, "epoch": epoch_now, "batches_done": batches_done,
            "train_seconds": train_seconds + (time.perf_counter() - epoch_start if means is not None else 0.0),
            "model": model.state_dict(), "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
            "scaler": scaler.state_dict(), "average": average.state_dict() if average is not None else None,
            "rng_rank": rng, "history": list(history),
            "keeper": {"best_value": keeper.best_value, "best_epoch": keeper.best_epoch},
            "epoch_state": {"means": means.state_dict(), "task": task.state_dict()} if means is not None else None,
        }  # fmt: skip
        save_state(state_dir, body, step=step, keep=config.keep_states, run_id=run_id)

    started = time.perf_counter()
    # A resumed run that had used its budget trains no more: stopped at an epoch's end, it is done; stopped inside
    # one, that epoch ends at once, without a step, so that its record (lost from the state) is made again.
    spent = config.budget_spent(step, train_seconds)
    stop = spent and not skip
    epoch_start = time.perf_counter()
    while (epochs is None or epoch <= epochs) and not stop:
        model.train()
        task.start_epoch()
        means = RunningMeans()
        if epoch_state is not None:
            means.load_state_dict(epoch_state["means"])
            task.load_state_dict(epoch_state["task"])
            epoch_state = None
        batches = loader.epoch(epoch, skip=skip)
        done = skip
        bar = progress([], total=per_epoch, desc=f"epoch {epoch}" + (f"/{epochs}" if epochs is not None else ""),
                       enabled=config.progress and ctx.is_main)  # fmt: skip
        bar.update(skip)
        epoch_start = time.perf_counter()
        pending, stop_here = 0, spent
        while True:
            batch = next(batches, None)
            ended = batch is None
            if ctx.distributed:
                ended, stop_here = any_rank([ended, stop_here], device)
            if ended or stop_here:
                break
            with _autocast(config, device):
                out = task.step(forward, batch)
            scaler.scale(out.loss / config.grad_accum).backward()
            means.add(out.terms, weight=out.weight)
            done, pending = done + 1, pending + 1
            bar.update(1)
            if pending == config.grad_accum:
                _optimizer_step(model, optimizer, scaler, config)
                clock[0] = _agreed(train_seconds + time.perf_counter() - epoch_start, config, ctx)
                schedule.step()
                if average is not None:
                    average.update(model)
                step, pending = step + 1, 0
                if step % 10 == 0:
                    bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(out.terms.items())[:2]})
                stop_here = (config.max_steps is not None and step >= config.max_steps) or (
                    config.max_seconds is not None and clock[0] >= config.max_seconds
                )
                if config.save_every and step % config.save_every == 0:  # every rank, or all_gather would hang
                    save(done, epoch, means)
        if pending:  # the epoch ended inside an accumulation group: step with what was accumulated
            _optimizer_step(model, optimizer, scaler, config)
            clock[0] = _agreed(train_seconds + time.perf_counter() - epoch_start, config, ctx)
            schedule.step()
            if average is not None:
                average.update(model)
            step += 1
        bar.close()
        # An epoch without a batch (empty data) ends the run too, or a run without an epoch limit would never end.
        stop = stop_here or (config.max_steps is not None and step >= config.max_steps) or done == 0
        mid_epoch = stop_here and (per_epoch is None or done < per_epoch)
        if mid_epoch:
            save(done, epoch, means)  # resumable where it stopped (a larger budget continues this epoch)
        train_seconds += time.perf_counter() - epoch_start
        record = _epoch_record(task, model, average, means, epoch, step, device)
        record["train_seconds"] = train_seconds
        record["lr"] = optimizer.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        if ctx.is_main:
            _log_epoch(task.name, record)
            if writer is not None:
                _write_tensorboard(writer, record, task, average.module if average is not None else model)
        keeper.update(average.module if average is not None else model, history)
        skip, epoch = 0, epoch + 1
        if not mid_epoch:
            save(0, epoch, None)
    if average is not None:  # the average is what gets evaluated and sampled from
        model.load_state_dict(average.module.state_dict())
    if writer is not None:
        writer.close()
    return history


def _optimizer_step(model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any, config: TrainConfig) -> None:
    if config.grad_clip is not None:
        scaler.unscale_(optimizer)
        nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)


def _agreed(elapsed: float, config: TrainConfig, ctx: Any) -> float:
    """The training seconds so far; under torchrun the slowest rank's when a time-budget schedule reads them, so
    that every rank steps with the same learning rate."""
    if not (ctx.distributed and config.max_seconds is not None and config.schedule == "cosine"):
        return elapsed
    return float(all_reduce_(torch.tensor([elapsed], dtype=torch.float64, device=ctx.device), "max"))


def _epoch_record(task: Task, model: nn.Module, average: Any, means: RunningMeans, epoch: int, step: int,
                  device: torch.device) -> dict[str, Any]:  # fmt: skip
    state = means.state_dict()
    keys = sorted(state["sums"])
    totals = torch.tensor([state["sums"][k] for k in keys] + [state["weight"]], dtype=torch.float64, device=device)
    totals = all_reduce_(totals).tolist()  # sums over ranks: the means of the global batches
    reduced = RunningMeans()
    reduced.load_state_dict({"sums": dict(zip(keys, totals[:-1])), "weight": totals[-1]})
    record: dict[str, Any] = {"epoch": epoch, "step": step, "train": task.epoch_metrics(reduced.means())}
    if task.has_eval:
        record["eval"] = task.evaluate(average.module if average is not None else model)
        model.train()
    return record


def _plain_rng(state: Mapping[str, Any]) -> Any:
    """RNG states as plain Python objects (for ``all_gather_object``), restored to tensors by ``restore_rng``."""
    return dict(state)


def _log_epoch(name: str, record: dict[str, Any]) -> None:
    parts = [f"{name} epoch {record['epoch']} (step {record['step']}, {record['seconds']:.1f}s)"]
    for split in ("train", "eval"):
        if record.get(split):
            parts.append(f"{split}: " + ", ".join(f"{k} {v:.4g}" for k, v in record[split].items()))
    logger.info(" | ".join(parts))


def _tensorboard(config: TrainConfig, ctx: DistContext) -> Any:
    if not (config.tensorboard and ctx.is_main and config.checkpoint_dir):
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional extra is not installed
        logger.warning("tensorboard=True but the tensorboard package is missing: pip install 'vqgen[tensorboard]'")
        return None
    return SummaryWriter(str(Path(config.checkpoint_dir) / "tensorboard"))


def _write_tensorboard(writer: Any, record: dict[str, Any], task: Task, model: nn.Module) -> None:
    for split in ("train", "eval"):
        for key, value in (record.get(split) or {}).items():
            writer.add_scalar(f"{split}/{key}", value, record["step"])
    images = task.images(model)
    if images is not None:
        from ..images import make_grid

        grid = make_grid(images.float().cpu(), ncols=8)  # (H, W) or (H, W, 3) uint8
        writer.add_image("images", grid, record["step"], dataformats="HW" if grid.ndim == 2 else "HWC")
    writer.flush()
