"""Stage 1: train a [`VQVAE`][vqgen.autoencoders.VQVAE] (encoder + quantizer + decoder) on images.

The objective is equation 3 of the VQ-VAE paper (arXiv:1711.00937): reconstruction MSE on ``[0, 1]`` pixels plus the
quantizer's codebook and beta-weighted commitment losses, optimised with Adam::

    from vqgen.training import fit_vqvae
    history = fit_vqvae(model, train.images, eval_data=test, epochs=5, checkpoint_dir="runs/vqvae")
    history[-1]["eval"]["reconstruction_mse"]

Each epoch records, for the training data (means over the epoch's batches) and the held-out data (over the whole
split, the model in eval mode):

- ``loss``: the total objective; ``reconstruction_mse``: MSE between reconstruction and input, pixels in ``[0, 1]``;
- ``codebook_loss`` and ``commitment_loss`` (unweighted);
- ``perplexity``: ``exp(entropy)`` of the histogram of all codes chosen in the epoch (or split), the effective number
  of codes in use; ``usage``: the fraction of the codebook chosen at least once.
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ..autoencoders.vqvae import VQVAE
from ..metrics.codebook import CodebookUsage
from .batches import first_tensor, is_stream, loader_for
from .common import (
    InMemoryData,
    MetricsHistory,
    RunningMeans,
    TrainConfig,
    TrainData,
    as_images,
    batch_indices,
    images_to_float,
    resolve_device,
)
from .engine import StepOutput, Task, train

__all__ = ["VQVAETask", "evaluate_vqvae", "fit_vqvae"]

logger = logging.getLogger(__name__)


def _check_model(model: object) -> VQVAE:
    if not isinstance(model, VQVAE):
        raise TypeError(
            f"model must be a vqgen VQVAE (encoder + quantizer + decoder), got {type(model).__name__}; "
            "build one with vqgen.build('model', 'vqvae', encoder=..., quantizer=..., decoder=...)"
        )
    return model


def _check_images_fit(model: VQVAE, images: Tensor, *, name: str) -> None:
    if images.shape[1] != model.in_channels:
        raise ValueError(
            f"{name} has {images.shape[1]} channels (shape {tuple(images.shape)}) but the model's encoder takes "
            f"{model.in_channels}; build the encoder with in_channels={images.shape[1]}"
        )
    model.code_shape(images.shape[1:])  # raises a clear error for sizes the encoder cannot divide


def _batch_terms(out: Any) -> dict[str, Tensor]:
    return {
        "loss": out.loss.detach(),
        "reconstruction_mse": out.reconstruction_loss.detach(),
        "codebook_loss": out.codebook_loss.detach(),
        "commitment_loss": out.commitment_loss.detach(),
    }


def _usage(usage: CodebookUsage) -> dict[str, float]:
    figures = usage.compute()
    return {"perplexity": float(figures["perplexity"]), "usage": float(figures["usage"])}


@torch.no_grad()
def evaluate_vqvae(
    model: VQVAE, data: InMemoryData, *, batch_size: int = 256, device: str | torch.device | None = None
) -> dict[str, float]:
    """Held-out metrics of a VQ-VAE over a whole dataset, in eval mode (see the module docstring for the keys).

    Args:
        model: the model; it is moved to ``device`` (default: where its parameters are) and restored to its
            previous train/eval mode afterwards.
        data: a [`vqgen.data`][vqgen.data] dataset or images ``(N, C, H, W)`` (uint8, or float in ``[0, 1]``).
        batch_size: examples per forward pass.
        device: where to compute; ``None`` uses the model's device.
    """
    model = _check_model(model)
    images = as_images(data, name="data")
    _check_images_fit(model, images, name="data")
    device = model.device if device is None else resolve_device(device)
    model.to(device)
    was_training = model.training
    model.eval()
    means = RunningMeans()
    usage = CodebookUsage(model.num_codes, sync_on_compute=False).to(device)  # every rank evaluates everything
    try:
        for index in batch_indices(len(images), batch_size, shuffle=False):
            x = images_to_float(images[index], device)  # (B, C, H, W)
            out = model(x)
            means.add(_batch_terms(out), weight=len(index))
            usage.update(out.codes)
    finally:
        model.train(was_training)
    return {**means.means(), **_usage(usage)}


class VQVAETask(Task):
    """Stage 1 for the engine: equation 3 of arXiv:1711.00937 per batch; the epoch's code histogram; held-out
    metrics by [`evaluate_vqvae`][evaluate_vqvae]."""

    name = "vqvae"
    monitor = "reconstruction_mse"

    def __init__(self, model: VQVAE, held_out: Tensor | None = None, *, eval_batch_size: int = 256) -> None:
        self.model, self.held_out, self.eval_batch_size = model, held_out, eval_batch_size
        self.has_eval = held_out is not None
        self.usage = CodebookUsage(model.num_codes)  # summed over ranks: the histogram of the global batches

    def start_epoch(self) -> None:
        self.usage = self.usage.to(self.model.device)
        self.usage.reset()

    def step(self, forward: Any, batch: Any) -> StepOutput:
        x = images_to_float(first_tensor(batch), self.model.device)  # (B, C, H, W) in [0, 1]
        out = forward(x)
        self.usage.update(out.codes)
        return StepOutput(out.loss, _batch_terms(out), weight=x.shape[0])

    def epoch_metrics(self, means: dict[str, float]) -> dict[str, float]:
        return {**means, **_usage(self.usage)}

    def evaluate(self, model: Any) -> dict[str, float] | None:
        return evaluate_vqvae(model, self.held_out, batch_size=self.eval_batch_size)

    def images(self, model: Any) -> Tensor | None:
        if self.held_out is None:
            return None
        originals = images_to_float(self.held_out[:8], model.device)
        with torch.no_grad():
            model.eval()
            reconstructions = model.reconstruct(originals)
            model.train()
        return torch.cat([originals, reconstructions.clamp(0, 1)])  # (16, C, H, W): originals above reconstructions

    def state_dict(self) -> dict[str, Any]:
        return {"histogram": self.usage.histogram}

    def load_state_dict(self, state: Any) -> None:
        self.usage.histogram.copy_(state["histogram"])


def fit_vqvae(
    model: VQVAE,
    train_data: TrainData,
    *,
    eval_data: TrainData | None = None,
    config: TrainConfig | None = None,
    resume: str | Path | None = None,
    **options: Any,
) -> MetricsHistory:
    """Train ``model`` in place with Adam; returns the per-epoch history (also logged and saved in checkpoints).

    Args:
        model: a [`VQVAE`][vqgen.autoencoders.VQVAE].
        train_data: a [`vqgen.data`][vqgen.data] dataset or images ``(N, C, H, W)`` uint8 (or float in ``[0, 1]``);
            scaled to ``[0, 1]`` floats batch by batch, on the training device. A ``torch.utils.data`` dataset without
            in-memory ``.images`` (e.g. a lazily decoded folder), an ``IterableDataset`` or a ``DataLoader`` is
            streamed (its items: images, or ``(images, labels)``).
        eval_data: held-out data of the same kind, evaluated after every epoch; it decides the ``"best"`` checkpoint.
        config: a [`TrainConfig`][vqgen.training.TrainConfig]; defaults to ``TrainConfig()``.
        resume: continue from a training state (a ``checkpoint_dir`` of an earlier run, or one of its
            ``train_state/step-*`` directories); see [`vqgen.training.engine`][vqgen.training.engine].
        **options: overrides of ``config`` fields, e.g. ``epochs=5, batch_size=128, lr=2e-4, device="cuda",
            seed=1, checkpoint_dir="runs/x", keep="last", progress=False, max_steps=100, precision="bf16"``.

    Returns:
        A [`MetricsHistory`][vqgen.training.MetricsHistory] (a list) of ``{"epoch", "step", "seconds", "train": {...},
        "eval": {...}}``, the last two holding ``loss``, ``reconstruction_mse``, ``codebook_loss``,
        ``commitment_loss``, ``perplexity`` and ``usage`` (``"eval"`` only with ``eval_data``).

    With ``checkpoint_dir`` set, the directory receives ``config.json`` + ``model.safetensors`` (the model of the best
    epoch by held-out reconstruction MSE, or of the last epoch, see ``keep``), ``metrics.json`` (the settings, the
    history and the saved epoch) and ``train_state/`` (resumable states). The model object keeps the weights of the
    *last* step.
    """
    model = _check_model(model)
    config = (config or TrainConfig()).replace(**options)
    if is_stream(train_data):
        source, shape = train_data, None
    else:
        source = as_images(train_data, name="train_data")
        _check_images_fit(model, source, name="train_data")
        shape = list(source.shape[1:])
    held_out = None
    if eval_data is not None:
        held_out = as_images(eval_data, name="eval_data")
        _check_images_fit(model, held_out, name="eval_data")
    task = VQVAETask(model, held_out, eval_batch_size=config.eval_batch_size or config.batch_size)
    history = train(model, task, loader_for(source, config=config), config, resume=resume,
                    settings={"image_shape": shape})  # fmt: skip
    _warn_unused_codes(task.usage.histogram)
    return history


def _warn_unused_codes(histogram: Tensor, *, threshold: float = 0.5) -> None:
    """Warn when fewer than ``threshold`` of the codes were chosen: the codebook is larger than the data fills.

    Args:
        histogram: ``(K,)`` counts of each code over the last training epoch (the state of ``CodebookUsage``).
        threshold: the fraction of the codebook below which to warn.
    """
    num_codes, seen = histogram.numel(), int(histogram.sum())
    used = int((histogram > 0).sum())
    if seen == 0 or used >= threshold * num_codes:
        return
    smaller = 2 ** max(1, math.ceil(math.log2(max(used, 2))))
    warnings.warn(
        f"only {used} of {num_codes} codes used ({100 * used / num_codes:.1f} %) by the {seen} encoder outputs "
        f"(latent vectors) of the last training epoch: the data (or the training so far) does not fill the "
        f"codebook; train longer, or use a smaller one (num_codes={smaller}), which also gives the prior fewer "
        "categories to learn",
        UserWarning,
        stacklevel=3,
    )
