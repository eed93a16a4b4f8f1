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

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..state_loading import load_state_strict
from .averaging import WeightAverage
from .batches import EpochLoader
from .config import TrainConfig
from .distributed import DistContext, all_reduce_, any_rank, setup
from .history import CheckpointKeeper, MetricsHistory, RunningMeans, progress
from .logs import log_epoch, tensorboard_writer, write_tensorboard
from .optim import make_adam, make_schedule
from .resume import check_resumable, claim_checkpoint_dir, model_identity
from .runtime import capture_rng, restore_rng, seed_everything
from .state import STATE_DIR, clear_run, load_state, save_state
from .task import StepOutput, Task
from .writable import check_writable

__all__ = ["StepOutput", "Task", "WeightAverage", "train"]

logger = logging.getLogger(__name__)


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

    Raises:
        ValueError: a state that does not fit this run, a ``checkpoint_dir`` holding another run (without
            ``overwrite=True``) or that is a file, ``fp16`` off CUDA, training states without a ``checkpoint_dir``.
        OSError: a ``checkpoint_dir`` that cannot be written (before the first step), or a full disk.

    Examples:
        A prior fit on random code grids by its [`PriorTask`][vqgen.training.prior.PriorTask] (a task of your own:
        see [`Task`][vqgen.training.task.Task]), its batches from [`loader_for`][vqgen.training.batches.loader_for]:

        >>> import torch, vqgen
        >>> from vqgen.training import TrainConfig, train
        >>> from vqgen.training.batches import loader_for
        >>> from vqgen.training.prior import PriorTask
        >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=16)
        >>> codes = torch.randint(16, (64, 1, 4, 4))                        # (N, 1, h, w) code grids
        >>> config = TrainConfig(epochs=2, batch_size=32, progress=False, seed=1)
        >>> history = train(prior, PriorTask(prior), loader_for(codes, config=config), config)
        >>> len(history), history[-1]["step"], sorted(history[-1])
        (2, 4, ['epoch', 'lr', 'seconds', 'step', 'train', 'train_seconds'])
    """
    if (config.save_states or config.save_every is not None) and not config.checkpoint_dir:
        raise ValueError("save_states / save_every need checkpoint_dir: the directory to write training states to")
    state = load_state(resume) if resume is not None else None
    run_id = state["run_id"] if state is not None else uuid.uuid4().hex  # kept on resume, new for a fresh run
    clear = claim_checkpoint_dir(config, run_id=run_id, resumed=state is not None)
    ctx = setup(config.device, config.backend)
    if ctx.is_main:  # rank 0 alone writes: a read-only folder fails now, not after an epoch of training
        check_writable(config.checkpoint_dir)
    if clear and ctx.is_main:
        logger.info("overwrite=True: deleting the earlier run in %s", config.checkpoint_dir)
        clear_run(config.checkpoint_dir)
    if config.precision == "fp16" and ctx.device.type != "cuda":
        raise ValueError(
            f"precision='fp16' needs a CUDA device (float16 autocast with a gradient scaler), but training runs on "
            f"{ctx.device}; use precision='bf16' on the CPU"
        )
    seed_everything(config.seed + ctx.rank)
    model.to(ctx.device).train()
    loader = loader(ctx) if callable(loader) and not isinstance(loader, EpochLoader) else loader
    run = _Run(model, task, loader, config, ctx, run_id=run_id, settings=settings)
    if state is not None:
        run.resume(state)
    while not run.finished:
        run.epoch()
    return run.finish()


@dataclass
class _Position:
    """Where a run stands: optimiser steps taken, the epoch it is in, the batches of that epoch already consumed,
    and the training seconds up to the start of the epoch (evaluation excluded)."""

    step: int = 0
    epoch: int = 1
    skip: int = 0
    train_seconds: float = 0.0


class _Run:
    """One call of [`train`][train]: the model, its optimiser and everything a training state holds, and the three
    things done to them — [`resume`][resume], [`epoch`][epoch] (steps; a state every ``save_every`` steps) and
    [`save`][save]."""

    def __init__(
        self, model: nn.Module, task: Task, loader: EpochLoader, config: TrainConfig, ctx: DistContext, *,
        run_id: str, settings: Mapping[str, Any] | None,
    ) -> None:  # fmt: skip
        self.model, self.task, self.loader, self.config, self.ctx = model, task, loader, config, ctx
        self.run_id = run_id
        self.optimizer = make_adam(model, config)
        self.per_epoch = loader.batches_per_epoch
        self.epochs = config.epoch_limit  # None: no limit, a step or time budget ends the run
        total_steps = config.max_steps
        if self.per_epoch is not None and self.epochs is not None:
            planned = self.epochs * math.ceil(self.per_epoch / config.grad_accum)
            total_steps = planned if total_steps is None else min(total_steps, planned)
        self.clock = 0.0  # training seconds at the last optimiser step (agreed by all ranks): the time schedule's
        self.schedule = make_schedule(self.optimizer, config, total_steps, elapsed=lambda: self.clock)
        self.scaler = torch.amp.GradScaler(ctx.device.type, enabled=config.precision == "fp16")
        self.average = WeightAverage(model, config.ema_decay) if config.ema_decay is not None else None
        self.forward: Callable[..., Any] = model
        if ctx.distributed:
            ids = [ctx.device.index] if ctx.device.type == "cuda" else None
            self.forward = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        if config.compile:
            self.forward = torch.compile(self.forward)
        split = "eval" if task.has_eval else "train"
        self.keeper = CheckpointKeeper(
            config.checkpoint_dir if ctx.is_main else None, keep=config.keep, monitor=(split, task.monitor),
            settings={**config.to_dict(), "world_size": ctx.world_size, **dict(settings or {})},
        )  # fmt: skip
        self.history = MetricsHistory()
        self.at = _Position()
        self.epoch_state: dict[str, Any] | None = None  # the partial epoch of a state written mid-epoch
        wants_states = config.save_states or config.save_every is not None
        self.state_dir = Path(config.checkpoint_dir) / STATE_DIR if wants_states else None
        self.writer = tensorboard_writer(config, ctx)
        self.started = self.epoch_start = time.perf_counter()
        self.spent = False  # resumed with its budget used up
        self.finished = False

    @property
    def evaluated(self) -> nn.Module:
        """What is evaluated, kept and saved: the weight average when there is one, else the model."""
        return self.average.module if self.average is not None else self.model

    def resume(self, state: Mapping[str, Any]) -> None:
        """Continue where ``state`` was written (checked first): weights, optimiser, schedule, generators, position.

        A resumed run that had used its budget trains no more: stopped at an epoch's end, it is done; stopped inside
        one, that epoch ends at once, without a step, so that its record (lost from the state) is made again.
        """
        check_resumable(state, task=self.task, model=self.model, config=self.config, ctx=self.ctx)
        load_state_strict(self.model, state["model"], source=state["path"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule.load_state_dict(state["schedule"])
        self.scaler.load_state_dict(state["scaler"])
        if self.average is not None:
            self.average.load_state_dict(state["average"])
        self.at = _Position(state["step"], state["epoch"], state["batches_done"], state["train_seconds"])
        self.clock = self.at.train_seconds
        self.history.extend(state["history"])
        self.keeper.best_value, self.keeper.best_epoch = state["keeper"]["best_value"], state["keeper"]["best_epoch"]
        self.epoch_state = state["epoch_state"] if self.at.skip else None
        restore_rng(state["rng_rank"][self.ctx.rank])
        self.spent = self.config.budget_spent(self.at.step, self.at.train_seconds)
        self.finished = self.spent and not self.at.skip
        logger.info("resumed from %s at step %d (epoch %d, %d batches in)", state["path"], self.at.step,
                    self.at.epoch, self.at.skip)  # fmt: skip

    def epoch(self) -> None:
        """Train one epoch (or what is left of it), record it, keep the model and save a state at its end."""
        config, at, task = self.config, self.at, self.task
        self.model.train()
        task.start_epoch()
        means = RunningMeans()
        if self.epoch_state is not None:
            means.load_state_dict(self.epoch_state["means"])
            task.load_state_dict(self.epoch_state["task"])
            self.epoch_state = None
        label = f"epoch {at.epoch}" + (f"/{self.epochs}" if self.epochs is not None else "")
        bar = progress([], total=self.per_epoch, desc=label, enabled=config.progress and self.ctx.is_main)
        bar.update(at.skip)
        done, stop_here = self._steps(means, bar)
        bar.close()
        # An epoch without a batch (empty data) ends the run too, or a run without an epoch limit would never end.
        stop = stop_here or (config.max_steps is not None and at.step >= config.max_steps) or done == 0
        mid_epoch = stop_here and (self.per_epoch is None or done < self.per_epoch)
        if mid_epoch:
            self.save(done, at.epoch, means)  # resumable where it stopped (a larger budget continues this epoch)
        at.train_seconds += time.perf_counter() - self.epoch_start
        self._record(means)
        at.skip, at.epoch = 0, at.epoch + 1
        if not mid_epoch:
            self.save(0, at.epoch, None)
        self.finished = stop or (self.epochs is not None and at.epoch > self.epochs)

    def _steps(self, means: RunningMeans, bar: Any) -> tuple[int, bool]:
        """The batches of the epoch, a step every ``grad_accum`` of them; returns the batches done and whether a
        budget stopped it. Every stop is agreed by all ranks, or one would wait for the others forever."""
        config, at, ctx = self.config, self.at, self.ctx
        done, pending, stop = at.skip, 0, self.spent  # a resumed, spent budget ends its epoch at once
        self.spent = False
        self.epoch_start = time.perf_counter()
        batches = self.loader.epoch(at.epoch, skip=at.skip)
        while True:
            batch = next(batches, None)
            ended = batch is None
            if ctx.distributed:
                ended, stop = any_rank([ended, stop], ctx.device)
            if ended or stop:
                break
            with _autocast(config, ctx.device):
                out = self.task.step(self.forward, batch)
            self.scaler.scale(out.loss / config.grad_accum).backward()
            means.add(out.terms, weight=out.weight)
            done, pending = done + 1, pending + 1
            bar.update(1)
            if pending < config.grad_accum:
                continue
            self._optimizer_step()
            pending = 0
            if at.step % 10 == 0:
                bar.set_postfix({k: f"{float(v):.4g}" for k, v in list(out.terms.items())[:2]})
            stop = config.budget_spent(at.step, self.clock)
            if config.save_every and at.step % config.save_every == 0:  # every rank, or all_gather would hang
                self.save(done, at.epoch, means)
        if pending:  # the epoch ended inside an accumulation group: step with what was accumulated
            self._optimizer_step()
        return done, stop

    def _optimizer_step(self) -> None:
        """Clip, step, advance the clock, the schedule and the weight average."""
        config = self.config
        if config.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), config.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.clock = _agreed(self.at.train_seconds + time.perf_counter() - self.epoch_start, config, self.ctx)
        self.schedule.step()
        if self.average is not None:
            self.average.update(self.model)
        self.at.step += 1

    def _record(self, means: RunningMeans) -> None:
        """The epoch's record (train means over all ranks, held-out figures), logged, kept in the history."""
        record = _epoch_record(self.task, self.model, self.evaluated, means, self.at.epoch, self.at.step,
                               self.ctx.device)  # fmt: skip
        record["train_seconds"] = self.at.train_seconds
        record["lr"] = self.optimizer.param_groups[0]["lr"]
        record["seconds"] = time.perf_counter() - self.started
        self.history.append(record)
        if self.ctx.is_main:
            log_epoch(self.task.name, record)
            if self.writer is not None:
                write_tensorboard(self.writer, record, self.task, self.evaluated)
        self.keeper.update(self.evaluated, self.history)

    def save(self, batches_done: int, epoch: int, means: RunningMeans | None) -> None:
        """Write a training state (rank 0, every rank's generators gathered): at ``epoch`` after ``batches_done`` of
        its batches; ``means`` of that partial epoch, or ``None`` at an epoch's end."""
        if self.state_dir is None:
            return
        rng = [capture_rng()]
        if self.ctx.distributed:  # every rank's generators, gathered on rank 0
            gathered: list[Any] = [None] * self.ctx.world_size
            dist.all_gather_object(gathered, dict(rng[0]))
            rng = gathered
        if not self.ctx.is_main:
            return
        at, task = self.at, self.task
        elapsed = time.perf_counter() - self.epoch_start if means is not None else 0.0
        body = {
            "task": task.name, "model_identity": model_identity(self.model), "config": self.config.to_dict(),
            "world_size": self.ctx.world_size, "step": at.step, "epoch": epoch, "batches_done": batches_done,
            "train_seconds": at.train_seconds + elapsed,
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "schedule": self.schedule.state_dict(), "scaler": self.scaler.state_dict(),
            "average": self.average.state_dict() if self.average is not None else None,
            "rng_rank": rng, "history": list(self.history),
            "keeper": {"best_value": self.keeper.best_value, "best_epoch": self.keeper.best_epoch},
            "epoch_state": {"means": means.state_dict(), "task": task.state_dict()} if means is not None else None,
        }  # fmt: skip
        save_state(self.state_dir, body, step=at.step, keep=self.config.keep_states, run_id=self.run_id)

    def finish(self) -> MetricsHistory:
        """The weight average (if any) into the model, which is what gets evaluated and sampled; the history."""
        if self.average is not None:
            self.model.load_state_dict(self.average.module.state_dict())
        if self.writer is not None:
            self.writer.close()
        return self.history


def _autocast(config: TrainConfig, device: torch.device):
    if config.precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if config.precision == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def _agreed(elapsed: float, config: TrainConfig, ctx: DistContext) -> float:
    """The training seconds so far; under torchrun the slowest rank's when a time-budget schedule reads them, so
    that every rank steps with the same learning rate."""
    if not (ctx.distributed and config.max_seconds is not None and config.schedule == "cosine"):
        return elapsed
    return float(all_reduce_(torch.tensor([elapsed], dtype=torch.float64, device=ctx.device), "max"))


def _epoch_record(task: Task, model: nn.Module, evaluated: nn.Module, means: RunningMeans, epoch: int, step: int,
                  device: torch.device) -> dict[str, Any]:  # fmt: skip
    state = means.state_dict()
    keys = sorted(state["sums"])
    totals = torch.tensor([state["sums"][k] for k in keys] + [state["weight"]], dtype=torch.float64, device=device)
    totals = all_reduce_(totals).tolist()  # sums over ranks: the means of the global batches
    reduced = RunningMeans()
    reduced.load_state_dict({"sums": dict(zip(keys, totals[:-1])), "weight": totals[-1]})
    record: dict[str, Any] = {"epoch": epoch, "step": step, "train": task.epoch_metrics(reduced.means())}
    if task.has_eval:
        record["eval"] = task.evaluate(evaluated)
        model.train()
    return record
