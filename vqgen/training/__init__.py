"""Training loops: stage 1 ([`fit_vqvae`][fit_vqvae]), stage 2 ([`fit_prior`][fit_prior]) and the pieces every loop
shares.

- [`fit_vqvae`][fit_vqvae] / [`evaluate_vqvae`][evaluate_vqvae] train and evaluate a
  [`VQVAE`][vqgen.autoencoders.VQVAE].
- [`fit_prior`][fit_prior] / [`evaluate_prior`][evaluate_prior] train and evaluate any
  [`AutoregressivePrior`][vqgen.AutoregressivePrior] on pixels or code grids;
  [`encode_codes`][vqgen.autoencoders.vqvae.encode_codes] turns a
  dataset into code grids.
- [`TrainConfig`][TrainConfig] holds the settings of a run (epochs, batch size, learning rate, device, seed,
  checkpoints).
- [`train`][vqgen.training.engine.train] is the one loop behind all of them (and the FID classifier): each fit supplies
  a [`Task`][vqgen.training.engine.Task] (its step and its evaluation); the engine reads a ``DataLoader``, runs under
  ``torchrun`` with ``DistributedDataParallel``, mixes precision and resumes from crash-safe training states.
- the parts they share, one concern a module: [`config`][vqgen.training.config] (``TrainConfig``),
  [`runtime`][vqgen.training.runtime] (seeding, device), [`inputs`][vqgen.training.inputs] (data),
  [`history`][vqgen.training.history] (metrics, the kept checkpoint), ``optim`` (Adam, schedule),
  [`resume`][vqgen.training.resume] and [`state`][vqgen.training.state] (training states).
"""

from ..autoencoders.vqvae import encode_codes
from .config import TrainConfig
from .engine import StepOutput, Task, train
from .history import CheckpointKeeper, MetricsHistory, RunningMeans
from .prior import evaluate_prior, fit_prior
from .runtime import resolve_device, seed_everything
from .stage1 import evaluate_vqvae, fit_vqvae

__all__ = [
    "CheckpointKeeper",
    "MetricsHistory",
    "RunningMeans",
    "StepOutput",
    "Task",
    "TrainConfig",
    "encode_codes",
    "evaluate_prior",
    "evaluate_vqvae",
    "fit_prior",
    "fit_vqvae",
    "resolve_device",
    "seed_everything",
    "train",
]
