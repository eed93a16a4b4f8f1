"""Training loops: stage 1 (:func:`fit_vqvae`), stage 2 (:func:`fit_prior`) and the pieces every loop shares.

- :func:`fit_vqvae` / :func:`evaluate_vqvae` train and evaluate a :class:`~vqgen.autoencoders.VQVAE`.
- :func:`fit_prior` / :func:`evaluate_prior` train and evaluate any :class:`~vqgen.AutoregressivePrior` on pixels or
  code grids; :func:`encode_codes` turns a dataset into code grids.
- :class:`TrainConfig` holds the settings of a run (epochs, batch size, learning rate, device, seed, checkpoints).
- :func:`~vqgen.training.engine.train` is the one loop behind all of them (and the FID classifier): each fit supplies
  a :class:`~vqgen.training.engine.Task` (its step and its evaluation); the engine reads a ``DataLoader``, runs under
  ``torchrun`` with ``DistributedDataParallel``, mixes precision and resumes from crash-safe training states.
- :mod:`vqgen.training.common` has the reusable parts: seeding, device choice, batching, progress bars, Adam,
  running means, the metrics history and the checkpoint keeper.
"""

from .common import CheckpointKeeper, MetricsHistory, RunningMeans, TrainConfig, resolve_device, seed_everything
from .engine import StepOutput, Task, train
from .prior import encode_codes, evaluate_prior, fit_prior
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
