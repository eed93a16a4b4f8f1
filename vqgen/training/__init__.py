"""Training loops: stage 1 (:func:`fit_vqvae`) and the pieces every loop shares (:mod:`vqgen.training.common`).

- :func:`fit_vqvae` / :func:`evaluate_vqvae` train and evaluate a :class:`~vqgen.autoencoders.VQVAE`.
- :class:`TrainConfig` holds the settings of a run (epochs, batch size, learning rate, device, seed, checkpoints).
- :mod:`vqgen.training.common` has the reusable parts: seeding, device choice, batching, progress bars, Adam,
  running means, the metrics history and the checkpoint keeper.
"""

from .common import CheckpointKeeper, MetricsHistory, RunningMeans, TrainConfig, resolve_device, seed_everything
from .stage1 import evaluate_vqvae, fit_vqvae

__all__ = [
    "CheckpointKeeper",
    "MetricsHistory",
    "RunningMeans",
    "TrainConfig",
    "evaluate_vqvae",
    "fit_vqvae",
    "resolve_device",
    "seed_everything",
]
