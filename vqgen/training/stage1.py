"""Stage 1: train a :class:`~vqgen.autoencoders.VQVAE` (encoder + quantizer + decoder) on images.

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
import time
from typing import Any

import torch
from torch import Tensor, nn

from ..autoencoders.vqvae import VQVAE
from ..metrics.codebook import perplexity
from .common import (
    CheckpointKeeper,
    MetricsHistory,
    RunningMeans,
    TrainConfig,
    as_images,
    batch_indices,
    images_to_float,
    make_adam,
    num_batches,
    progress,
    resolve_device,
    seed_everything,
)

__all__ = ["evaluate_vqvae", "fit_vqvae"]

logger = logging.getLogger(__name__)


def _histogram_statistics(counts: Tensor) -> dict[str, float]:
    """Perplexity and usage of a ``(K,)`` code histogram."""
    return {"perplexity": float(perplexity(counts)), "usage": float((counts > 0).double().mean())}


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
        "loss": out.loss,
        "reconstruction_mse": out.reconstruction_loss,
        "codebook_loss": out.codebook_loss,
        "commitment_loss": out.commitment_loss,
    }


@torch.no_grad()
def evaluate_vqvae(
    model: VQVAE, data: Any, *, batch_size: int = 256, device: str | torch.device | None = None
) -> dict[str, float]:
    """Held-out metrics of a VQ-VAE over a whole dataset, in eval mode (see the module docstring for the keys).

    Args:
        model: the model; it is moved to ``device`` (default: where its parameters are) and restored to its
            previous train/eval mode afterwards.
        data: a :mod:`vqgen.data` dataset or images ``(N, C, H, W)`` (uint8, or float in ``[0, 1]``).
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
    counts = torch.zeros(model.num_codes, dtype=torch.long, device=device)
    try:
        for index in batch_indices(len(images), batch_size, shuffle=False):
            x = images_to_float(images[index], device)  # (B, C, H, W)
            out = model(x)
            means.add(_batch_terms(out), weight=len(index))
            counts += torch.bincount(out.codes.flatten(), minlength=model.num_codes)
    finally:
        model.train(was_training)
    return {**means.means(), **_histogram_statistics(counts)}


def fit_vqvae(
    model: VQVAE, train_data: Any, *, eval_data: Any = None, config: TrainConfig | None = None, **options: Any
) -> MetricsHistory:
    """Train ``model`` in place with Adam; returns the per-epoch history (also logged and saved in checkpoints).

    Args:
        model: a :class:`~vqgen.autoencoders.VQVAE`.
        train_data: a :mod:`vqgen.data` dataset or images ``(N, C, H, W)`` uint8 (or float in ``[0, 1]``); scaled
            to ``[0, 1]`` floats batch by batch, on the training device.
        eval_data: held-out data of the same kind, evaluated after every epoch; it decides the ``"best"`` checkpoint.
        config: a :class:`~vqgen.training.TrainConfig`; defaults to ``TrainConfig()``.
        **options: overrides of ``config`` fields, e.g. ``epochs=5, batch_size=128, lr=2e-4, device="cuda",
            seed=1, checkpoint_dir="runs/x", keep="last", progress=False, max_steps=100``.

    Returns:
        A :class:`~vqgen.training.MetricsHistory` (a list) of ``{"epoch", "step", "seconds", "train": {...},
        "eval": {...}}``, the last two holding ``loss``, ``reconstruction_mse``, ``codebook_loss``,
        ``commitment_loss``, ``perplexity`` and ``usage`` (``"eval"`` only with ``eval_data``).

    With ``checkpoint_dir`` set, the directory receives ``config.json`` + ``model.safetensors`` (the model of the best
    epoch by held-out reconstruction MSE, or of the last epoch, see ``keep``) and ``metrics.json`` (the settings, the
    history and the saved epoch). The model object keeps the weights of the *last* step.
    """
    model = _check_model(model)
    config = (config or TrainConfig()).replace(**options)
    images = as_images(train_data, name="train_data")
    _check_images_fit(model, images, name="train_data")
    held_out = None
    if eval_data is not None:
        held_out = as_images(eval_data, name="eval_data")
        _check_images_fit(model, held_out, name="eval_data")
    generator = seed_everything(config.seed)
    device = resolve_device(config.device)
    model.to(device).train()
    optimizer = make_adam(model, config)
    monitor = ("eval", "reconstruction_mse") if held_out is not None else ("train", "reconstruction_mse")
    keeper = CheckpointKeeper(config.checkpoint_dir, keep=config.keep, monitor=monitor, settings=config.to_dict())
    history = MetricsHistory()
    step, started = 0, time.perf_counter()
    logger.info("training %s on %d images (%s) for %d epochs on %s", type(model).__name__, len(images),
                "x".join(map(str, images.shape[1:])), config.epochs, device)  # fmt: skip
    for epoch in range(1, config.epochs + 1):
        model.train()
        means = RunningMeans()
        counts = torch.zeros(model.num_codes, dtype=torch.long, device=device)
        batches = progress(
            batch_indices(len(images), config.batch_size, generator=generator),
            total=num_batches(len(images), config.batch_size),
            desc=f"epoch {epoch}/{config.epochs}",
            enabled=config.progress,
        )
        for index in batches:
            x = images_to_float(images[index], device)  # (B, C, H, W) in [0, 1]
            out = model(x)
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            if config.grad_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
            step += 1
            terms = {key: value.detach() for key, value in _batch_terms(out).items()}
            means.add(terms, weight=len(index))
            counts += torch.bincount(out.codes.detach().flatten(), minlength=model.num_codes)
            if step % 10 == 0:
                batches.set_postfix(loss=f"{float(terms['loss']):.4f}", mse=f"{float(terms['reconstruction_mse']):.4f}")
            if config.max_steps is not None and step >= config.max_steps:
                break
        batches.close()
        record: dict[str, Any] = {
            "epoch": epoch,
            "step": step,
            "train": {**means.means(), **_histogram_statistics(counts)},
        }
        if held_out is not None:
            record["eval"] = evaluate_vqvae(model, held_out, batch_size=config.eval_batch_size or config.batch_size)
        record["seconds"] = time.perf_counter() - started
        history.append(record)
        _log_epoch(record)
        keeper.update(model, history)
        if config.max_steps is not None and step >= config.max_steps:
            break
    return history


def _log_epoch(record: dict[str, Any]) -> None:
    parts = [f"epoch {record['epoch']} (step {record['step']}, {record['seconds']:.1f}s)"]
    for split in ("train", "eval"):
        if split in record:
            m = record[split]
            parts.append(
                f"{split}: loss {m['loss']:.4f} mse {m['reconstruction_mse']:.5f} "
                f"perplexity {m['perplexity']:.1f} usage {m['usage']:.2f}"
            )
    logger.info(" | ".join(parts))
