"""Stage 1: train a [`VQVAE`][vqgen.autoencoders.VQVAE] (encoder + quantizer + decoder) on images.

The objective is equation 3 of the VQ-VAE paper (arXiv:1711.00937): reconstruction MSE on ``[0, 1]`` pixels plus the
quantizer's codebook and beta-weighted commitment losses, optimised with Adam::

    from vqgen.training import fit_vqvae
    history = fit_vqvae(model, train.images, eval_data=test, epochs=5, checkpoint_dir="runs/vqvae")
    history[-1]["eval"]["reconstruction_mse"]

Each epoch records, for the training data (means over the epoch's batches) and the held-out data (over the whole
split, the model in eval mode; a streamed split is read batch by batch, never whole):

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
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from ..autoencoders.vqvae import VQVAE
from ..metrics.codebook import CodebookUsage
from .batches import eval_batches, first_tensor, is_stream, item_shape, loader_for
from .config import TrainConfig, TrainOptions
from .engine import StepOutput, Task, train
from .history import MetricsHistory, RunningMeans
from .inputs import TrainData, as_images, batch_indices, images_to_float
from .runtime import resolve_device

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["VQVAETask", "evaluate_vqvae", "fit_vqvae"]

logger = logging.getLogger(__name__)


def _check_model(model: object) -> VQVAE:
    if not isinstance(model, VQVAE):
        raise TypeError(
            f"model must be a vqgen VQVAE (encoder + quantizer + decoder), got {type(model).__name__}; "
            "build one with vqgen.build('model', 'vqvae', encoder=..., quantizer=..., decoder=...)"
        )
    return model


def _check_images_fit(model: VQVAE, shape: tuple[int, ...], *, name: str) -> None:
    """Raise unless images of ``shape`` ``(N, C, H, W)`` (or one image, ``(C, H, W)``) fit the model's encoder."""
    if len(shape) < 3:
        raise ValueError(f"{name} must hold images (C, H, W), got shape {tuple(shape)}")
    if shape[-3] != model.in_channels:
        raise ValueError(
            f"{name} has {shape[-3]} channels (shape {tuple(shape)}) but the model's encoder takes "
            f"{model.in_channels}; build the encoder with in_channels={shape[-3]}"
        )
    model.code_shape(tuple(shape[-3:]))  # raises a clear error for sizes the encoder cannot divide


def _check_same_channels(train_shape: tuple[int, ...] | None, eval_shape: tuple[int, ...] | None) -> None:
    """Raise when the held-out images have other channels than the training images (e.g. the splits of an image
    folder, each read as greyscale or colour by what it holds)."""
    if train_shape is None or eval_shape is None or train_shape[-3] == eval_shape[-3]:
        return
    raise ValueError(
        f"eval_data has {eval_shape[-3]} channels but train_data has {train_shape[-3]}; load both alike (the splits "
        "of an image folder can differ, one greyscale and one with colour images: pass mode='RGB' to load_dataset "
        "for both, or mode='L')"
    )


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
    model: VQVAE,
    data: TrainData,
    *,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
) -> dict[str, float]:
    """Held-out metrics of a VQ-VAE over a whole dataset, in eval mode (see the module docstring for the keys).

    Args:
        model: the model; it is moved to ``device`` (default: where its parameters are) and restored to its
            previous train/eval mode afterwards.
        data: a [`vqgen.data`][vqgen.data] dataset or images ``(N, C, H, W)`` (uint8, or float in ``[0, 1]``), or
            streamed data (a dataset without in-memory ``.images``, such as
            [`ImageFolderDataset`][vqgen.data.ImageFolderDataset], or a ``DataLoader``), read in order, batch by
            batch.
        batch_size: examples per forward pass.
        device: where to compute; ``None`` uses the model's device.
        num_workers: DataLoader worker processes that read streamed ``data``.

    Returns:
        ``{"loss", "reconstruction_mse", "codebook_loss", "commitment_loss", "perplexity", "usage"}`` over the whole
        dataset (perplexity and usage of the histogram of all its codes).

    Raises:
        TypeError: if ``model`` is not a VQVAE, or ``data`` holds no images.
        ValueError: if the images do not fit the model, or float images lie outside ``[0, 1]``.

    Examples:
        >>> import vqgen
        >>> from vqgen.autoencoders import VQVAE
        >>> from vqgen.training import evaluate_vqvae
        >>> model = VQVAE.from_names({"encoder": "conv", "quantizer": "vq"})
        >>> metrics = evaluate_vqvae(model, vqgen.data.load_dataset("digits", split="test"))
        >>> sorted(metrics)
        ['codebook_loss', 'commitment_loss', 'loss', 'perplexity', 'reconstruction_mse', 'usage']
    """
    model = _check_model(model)
    if not is_stream(data):
        data = as_images(data, name="data")  # float images: their range is checked here, once
        _check_images_fit(model, tuple(data.shape), name="data")
    return _evaluate(model, data, batch_size=batch_size, device=device, num_workers=num_workers)


def _evaluate(
    model: VQVAE, data: Any, *, batch_size: int, device: str | torch.device | None, num_workers: int
) -> dict[str, float]:
    """[`evaluate_vqvae`][evaluate_vqvae] of checked in-memory images ``(N, C, H, W)``, or of streamed data, whose
    batches are checked as they come."""
    device = model.device if device is None else resolve_device(device)
    streamed = is_stream(data)
    if streamed:  # read in order, batch by batch
        batches = (first_tensor(batch) for batch in eval_batches(data, batch_size, num_workers=num_workers))
    else:
        batches = (data[index] for index in batch_indices(len(data), batch_size, shuffle=False))
    model.to(device)
    was_training = model.training
    model.eval()
    means = RunningMeans()
    usage = CodebookUsage(model.num_codes, sync_on_compute=False).to(device)  # every rank evaluates everything
    try:
        for batch in batches:
            if streamed:
                _check_images_fit(model, tuple(batch.shape), name="data")
            x = images_to_float(batch, device, check=streamed, name="data")  # (B, C, H, W)
            out = model(x)
            means.add(_batch_terms(out), weight=len(x))
            usage.update(out.codes)
    finally:
        model.train(was_training)
    if not means.means():
        raise ValueError("data is empty: there is nothing to evaluate")
    return {**means.means(), **_usage(usage)}


class VQVAETask(Task):
    """Stage 1 for the engine: equation 3 of arXiv:1711.00937 per batch; the epoch's code histogram; held-out
    metrics by [`evaluate_vqvae`][evaluate_vqvae]."""

    name = "vqvae"
    monitor = "reconstruction_mse"

    def __init__(
        self,
        model: VQVAE,
        held_out: TrainData | None = None,
        *,
        eval_batch_size: int = 256,
        streamed: bool = False,
        num_workers: int = 0,
    ) -> None:
        self.model, self.held_out, self.eval_batch_size = model, held_out, eval_batch_size
        self.streamed, self.num_workers = streamed, num_workers
        self.has_eval = held_out is not None
        self.usage = CodebookUsage(model.num_codes)  # summed over ranks: the histogram of the global batches

    def start_epoch(self) -> None:
        self.usage = self.usage.to(self.model.device)
        self.usage.reset()

    def step(self, forward: Any, batch: Any) -> StepOutput:
        # (B, C, H, W) in [0, 1]; streamed batches are checked one by one, in-memory data was checked whole
        x = images_to_float(first_tensor(batch), self.model.device, check=self.streamed, name="train_data")
        out = forward(x)
        self.usage.update(out.codes)
        return StepOutput(out.loss, _batch_terms(out), weight=x.shape[0])

    def epoch_metrics(self, means: dict[str, float]) -> dict[str, float]:
        return {**means, **_usage(self.usage)}

    def evaluate(self, model: Any) -> dict[str, float] | None:
        # held_out was checked by fit_vqvae (in memory: whole, once); streamed batches are checked as they come
        return _evaluate(model, self.held_out, batch_size=self.eval_batch_size, device=None,
                         num_workers=self.num_workers)  # fmt: skip

    def images(self, model: Any) -> Tensor | None:
        if self.held_out is None:
            return None
        if is_stream(self.held_out):
            batches = eval_batches(self.held_out, 8)
            first = first_tensor(next(batches))[:8]
            batches.close()
        else:
            first = self.held_out[:8]
        originals = images_to_float(first, model.device, check=is_stream(self.held_out), name="eval_data")
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
    **options: Unpack[TrainOptions],
) -> MetricsHistory:
    """Train ``model`` in place with Adam; returns the per-epoch history (also logged and saved in checkpoints).

    With ``checkpoint_dir`` set, the directory receives ``config.json`` + ``model.safetensors`` (the model of the best
    epoch by held-out reconstruction MSE, or of the last epoch, see ``keep``), ``metrics.json`` (the settings, the
    history and the saved epoch) and ``train_state/`` (resumable states). The model object keeps the weights of the
    *last* step.

    Args:
        model: a [`VQVAE`][vqgen.autoencoders.VQVAE].
        train_data: a [`vqgen.data`][vqgen.data] dataset or images ``(N, C, H, W)`` uint8 (or float in ``[0, 1]``);
            scaled to ``[0, 1]`` floats batch by batch, on the training device. A ``torch.utils.data`` dataset without
            in-memory ``.images`` (e.g. a lazily decoded folder), an ``IterableDataset`` or a ``DataLoader`` is
            streamed (its items: images, or ``(images, labels)``).
        eval_data: held-out data, in memory or streamed (read batch by batch, never whole), evaluated after every
            epoch; it decides the ``"best"`` checkpoint.
        config: a [`TrainConfig`][vqgen.training.TrainConfig]; defaults to ``TrainConfig()``.
        resume: continue from a training state (a ``checkpoint_dir`` of an earlier run, or one of its
            ``train_state/step-*`` directories); see [`vqgen.training.engine`][vqgen.training.engine].
        **options: overrides of ``config`` fields, e.g. ``epochs=5, batch_size=128, lr=2e-4, device="cuda",
            seed=1, checkpoint_dir="runs/x", keep="last", progress=False, max_steps=100, precision="bf16"``.

    Returns:
        A [`MetricsHistory`][vqgen.training.MetricsHistory] (a list) of ``{"epoch", "step", "seconds", "train": {...},
        "eval": {...}}``, the last two holding ``loss``, ``reconstruction_mse``, ``codebook_loss``,
        ``commitment_loss``, ``perplexity`` and ``usage`` (``"eval"`` only with ``eval_data``).

    Raises:
        TypeError: if ``model`` is not a VQVAE, the data holds no images, or an option is unknown or of the wrong type.
        ValueError: if the images do not fit the model, the splits differ in channels, an option is out of range, or
            ``checkpoint_dir`` holds another run (without ``overwrite=True``).
        OSError: if ``checkpoint_dir`` cannot be written.

    Examples:
        >>> import vqgen
        >>> from vqgen.autoencoders import VQVAE
        >>> from vqgen.training import fit_vqvae
        >>> model = VQVAE.from_names({"encoder": "conv", "quantizer": "ema"})
        >>> train = vqgen.data.load_dataset("digits")
        >>> test = vqgen.data.load_dataset("digits", split="test")
        >>> history = fit_vqvae(model, train, eval_data=test, max_steps=3, batch_size=32, checkpoint_dir="runs/vqvae")
        >>> history[-1]["step"], sorted(history[-1]["eval"])[-2:]
        (3, ['reconstruction_mse', 'usage'])
        >>> type(vqgen.from_pretrained("runs/vqvae")).__name__                    # the kept model
        'VQVAE'
    """
    model = _check_model(model)
    config = (config or TrainConfig()).replace(**options)
    if is_stream(train_data):  # float batches are checked one by one as they come
        source, shape, train_shape = train_data, None, item_shape(train_data)
    else:
        source = as_images(train_data, name="train_data")  # float images are checked here, once
        shape = train_shape = list(source.shape[1:])
    if train_shape is not None:
        _check_images_fit(model, tuple(train_shape), name="train_data")
    held_out = None
    if eval_data is not None:
        held_out = eval_data if is_stream(eval_data) else as_images(eval_data, name="eval_data")
        eval_shape = item_shape(held_out) if is_stream(held_out) else tuple(held_out.shape[1:])
        _check_same_channels(None if train_shape is None else tuple(train_shape), eval_shape)
        if eval_shape is not None:
            _check_images_fit(model, eval_shape, name="eval_data")
    task = VQVAETask(model, held_out, eval_batch_size=config.eval_batch_size or config.batch_size,
                     streamed=is_stream(train_data), num_workers=config.num_workers)  # fmt: skip
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
