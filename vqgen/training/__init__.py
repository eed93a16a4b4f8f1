"""Training loops: stage 1 (:func:`fit_vqvae`), stage 2 (:func:`fit_prior`) and the pieces every loop shares.

- :func:`fit_vqvae` / :func:`evaluate_vqvae` train and evaluate a :class:`~vqgen.autoencoders.VQVAE`.
- :func:`fit_prior` / :func:`evaluate_prior` train and evaluate any :class:`~vqgen.AutoregressivePrior` on pixels or
  code grids; :func:`encode_codes` turns a dataset into code grids.
- :class:`TrainConfig` holds the settings of a run (epochs, batch size, learning rate, device, seed, checkpoints).
- :mod:`vqgen.training.common` has the reusable parts: seeding, device choice, batching, progress bars, Adam,
  running means, the metrics history and the checkpoint keeper.
"""

from .common import CheckpointKeeper, MetricsHistory, RunningMeans, TrainConfig, resolve_device, seed_everything
from .prior import encode_codes, evaluate_prior, fit_prior
from .stage1 import evaluate_vqvae, fit_vqvae

__all__ = [
    "CheckpointKeeper",
    "MetricsHistory",
    "RunningMeans",
    "TrainConfig",
    "encode_codes",
    "evaluate_prior",
    "evaluate_vqvae",
    "fit_prior",
    "fit_vqvae",
    "resolve_device",
    "seed_everything",
]
