"""Stage 2: train an [`AutoregressivePrior`][vqgen.AutoregressivePrior] on grids of integers — pixels or VQ-VAE codes.

The objective is the negative log-likelihood of the data under the prior's raster-order factorisation — the mean of
its per-value NLL, [`likelihood.nll`][vqgen.likelihoods.Likelihood.nll], with the values themselves as the input
(teacher forcing) — optimised with Adam::

    from vqgen.data import load_dataset
    from vqgen.training.prior import fit_prior

    train, test = load_dataset("mnist"), load_dataset("mnist", split="test")
    prior = vqgen.build("prior", "gated_pixelcnn", num_categories=256)
    history = fit_prior(prior, train, eval_data=test, epochs=5, checkpoint_dir="runs/prior")
    history[-1]["eval"]["bits_per_dim"]

Data is anything holding integer grids: a [`vqgen.data`][vqgen.data] dataset (its uint8 ``.images`` are the values, its
``.labels`` the class condition), uint8 pixels ``(N, C, H, W)``, or code grids ``(N, 1, h, w)`` / ``(N, h, w)`` int64
(see [`encode_codes`][vqgen.autoencoders.vqvae.encode_codes]). Values are converted to int64 per batch, on the training
device.

Each epoch records, for the training batches (mean over the epoch) and the held-out data (whole split, eval mode; a
streamed split, such as the code grids of a [`CodeGridDataset`][vqgen.data.CodeGridDataset], is read batch by batch):
``bits_per_dim``, the negative log-likelihood in bits per value (per sub-pixel for images), and ``nll``, the same in
nats.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from .. import checks
from ..autoencoders.vqvae import encode_codes  # noqa: F401  (stage-1 inference, re-exported for old imports)
from ..interfaces import AutoregressivePrior
from ..metrics.likelihood import LN2, batches_bits_per_dim, bits_per_dim
from .batches import eval_batches, first_tensor, is_stream, item_shape, loader_for
from .config import TrainConfig, TrainOptions
from .engine import StepOutput, Task, train
from .history import MetricsHistory
from .inputs import InMemoryData, TrainData, batch_indices
from .runtime import resolve_device

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["PriorTask", "as_grids", "evaluate_prior", "fit_prior"]

logger = logging.getLogger(__name__)


def as_grids(data: InMemoryData, *, name: str = "data") -> Tensor:
    """Integer grids ``(N, C, H, W)`` from a [`vqgen.data`][vqgen.data] dataset (``.images``) or a tensor.

    uint8 pixels and int64 codes are returned unchanged (not copied, not moved); ``(N, h, w)`` code grids, as
    [`VQVAE.encode`][vqgen.autoencoders.vqvae.VQVAE.encode] returns them, gain the channel axis.

    Args:
        data: a dataset, or integer grids ``(N, C, H, W)`` or ``(N, h, w)``.
        name: the argument's name in error messages.

    Returns:
        ``(N, C, H, W)`` integer grids.

    Raises:
        TypeError: if ``data`` holds no tensor, or floats or bools.
        ValueError: if it is neither 3-D nor 4-D, or empty.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.training.prior import as_grids
        >>> as_grids(torch.zeros(10, 7, 7, dtype=torch.long)).shape               # codes gain their channel axis
        torch.Size([10, 1, 7, 7])
        >>> as_grids(vqgen.data.load_dataset("digits")).dtype                      # pixels stay uint8
        torch.uint8
        >>> as_grids(torch.rand(10, 1, 7, 7))
        Traceback (most recent call last):
        TypeError: data must hold integer values (uint8 pixels or int64 codes), got torch.float32; ...
    """
    grids = getattr(data, "images", data)
    if not isinstance(grids, Tensor):
        raise TypeError(
            f"{name} must be a vqgen.data dataset (with .images) or an integer tensor (N, C, H, W), "
            f"got {type(data).__name__}"
        )
    if grids.ndim == 3:
        grids = grids[:, None]  # (N, 1, h, w)
    checks.check_tensor(grids, name=name, ndim=4)
    if grids.is_floating_point() or grids.dtype == torch.bool:
        raise TypeError(
            f"{name} must hold integer values (uint8 pixels or int64 codes), got {grids.dtype}; a prior models the "
            "values themselves, so pass uint8 images rather than images scaled to [0, 1]"
        )
    if grids.shape[0] == 0:
        raise ValueError(f"{name} is empty: it has shape {tuple(grids.shape)}")
    return grids


def _resolve_cond(prior: AutoregressivePrior, data: Any, cond: Any, n: int, *, name: str) -> Tensor | None:
    """The condition of each example: ``cond`` if given, else the dataset's labels for class-conditional priors."""
    if cond is None and prior.num_classes is not None:
        cond = getattr(data, "labels", None)
        if cond is None:
            raise ValueError(
                f"{type(prior).__name__} is conditioned on {prior.num_classes} classes, but {name} has no .labels; "
                f"pass the labels as {name.replace('data', 'cond')}=..."
            )
    if cond is None:
        prior.check_cond(None, batch=n)
        return None
    prior.check_cond(cond, batch=n)
    return cond


@torch.no_grad()
def evaluate_prior(
    prior: AutoregressivePrior,
    data: TrainData,
    *,
    cond: Tensor | None = None,
    batch_size: int = 256,
    device: str | torch.device | None = None,
    num_workers: int = 0,
) -> dict[str, float]:
    """Held-out ``bits_per_dim`` and ``nll`` (nats per value) of ``prior`` over a whole dataset, in eval mode.

    Args:
        prior: the prior; moved to ``device`` (default: where its parameters are), its train/eval mode restored.
        data: a [`vqgen.data`][vqgen.data] dataset or integer grids ``(N, C, H, W)`` (see [`as_grids`][as_grids]), or
            streamed data: a dataset without in-memory ``.images`` whose items are ``(grid (C, H, W), label)`` (a
            [`CodeGridDataset`][vqgen.data.CodeGridDataset], an [`ImageFolderDataset`][vqgen.data.ImageFolderDataset]
            for a pixel prior) or a ``DataLoader`` of such batches, read in order, batch by batch; each batch's values
            are checked against ``num_categories``.
        cond: ``(N,)`` labels or ``(N, cond_dim)`` vectors; default: ``data.labels`` for class-conditional priors
            (streamed data: the labels of each batch).
        batch_size: examples per forward pass.
        device: where to compute; ``None`` uses the prior's device.
        num_workers: DataLoader worker processes that read streamed ``data``.

    Returns:
        ``{"bits_per_dim", "nll"}``: the means over every value of the dataset.

    Raises:
        TypeError: if ``data`` is not integer grids, or ``batch_size`` not an int.
        ValueError: if the grids or conditions do not fit the prior, ``cond`` is given with streamed data, or
            ``batch_size`` < 1.

    Examples:
        >>> import vqgen
        >>> from vqgen.training import evaluate_prior
        >>> uniform = vqgen.build("prior", "uniform", num_categories=256)
        >>> evaluate_prior(uniform, vqgen.data.load_dataset("digits", split="test"))       # 8 bits per pixel
        {'bits_per_dim': 8.0..., 'nll': 5.545...}
    """
    checks.check_positive(batch_size, name="batch_size", integer=True)
    streamed = is_stream(data)
    if streamed:
        if cond is not None:
            raise ValueError("cond is for in-memory data; streamed data brings its labels with each item")
        batches: Any = (
            _stream_batch(prior, batch) for batch in eval_batches(data, batch_size, num_workers=num_workers)
        )
    else:
        grids = as_grids(data, name="data")
        cond = _resolve_cond(prior, data, cond, len(grids), name="data")
        batches = (
            (grids[index], None if cond is None else cond[index])
            for index in batch_indices(len(grids), batch_size, shuffle=False)
        )
    prior.to(prior.device if device is None else resolve_device(device))
    bits = batches_bits_per_dim(prior, batches)
    return {"bits_per_dim": bits, "nll": bits * LN2}


def _stream_batch(prior: AutoregressivePrior, batch: Any) -> tuple[Tensor, Tensor | None]:
    """Values ``(B, C, H, W)`` and labels (for a class-conditional prior) of a streamed batch, checked as it comes."""
    values = first_tensor(batch)
    if values.ndim == 3:
        values = values[:, None]  # (B, 1, h, w) code grids
    checks.check_tensor(values, name="data", ndim=4)
    if values.shape[1] != prior.channels:
        raise ValueError(
            f"data has {values.shape[1]} channels (shape {tuple(values.shape)}) but the prior models {prior.channels}"
        )
    checks.check_indices(values, num_categories=prior.num_categories, name="data")
    labels = None
    if prior.num_classes is not None:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError(
                f"{type(prior).__name__} is conditioned on {prior.num_classes} classes, but the streamed data has "
                "no labels: its items must be (values, label)"
            )
        labels = batch[1]
    return values, labels


class PriorTask(Task):
    """Stage 2 for the engine: the mean per-value NLL of the prior's likelihood (teacher forcing); held-out bits/dim
    by [`evaluate_prior`][evaluate_prior]."""

    name = "prior"
    monitor = "bits_per_dim"

    def __init__(
        self,
        prior: AutoregressivePrior,
        held_out: TrainData | None = None,
        held_out_cond: Tensor | None = None,
        *,
        conditional: bool = False,
        eval_batch_size: int = 256,
        grid_shape: list[int] | None = None,
        num_workers: int = 0,
    ) -> None:
        self.prior, self.held_out, self.held_out_cond = prior, held_out, held_out_cond
        self.conditional, self.eval_batch_size = conditional, eval_batch_size
        self.grid_shape, self.num_workers = grid_shape, num_workers
        self.has_eval = held_out is not None

    def step(self, forward: Any, batch: Any) -> StepOutput:
        device = self.prior.device
        values = batch if isinstance(batch, Tensor) else batch[0]
        if values.ndim == 3:
            values = values[:, None]  # (B, 1, h, w) code grids
        x = values.to(device, non_blocking=True).long()  # (B, C, H, W)
        c = batch[1].to(device) if self.conditional and not isinstance(batch, Tensor) else None
        loss = self.prior.likelihood.nll(forward(x, c), x).mean()  # forward: the DDP-wrapped or compiled prior
        return StepOutput(loss, {"nll": loss.detach()}, weight=x.shape[0])

    def epoch_metrics(self, means: dict[str, float]) -> dict[str, float]:
        return {"bits_per_dim": bits_per_dim(means["nll"], 1), "nll": means["nll"]}  # nll is per value already

    def evaluate(self, model: Any) -> dict[str, float] | None:
        return evaluate_prior(
            model, self.held_out, cond=self.held_out_cond, batch_size=self.eval_batch_size,
            num_workers=self.num_workers,
        )  # fmt: skip

    def images(self, model: Any) -> Tensor | None:
        if model.num_categories != 256 or model.channels not in (1, 3) or self.held_out is None:
            return None  # only pixel priors draw images by themselves
        if self.grid_shape is None:
            return None
        generator = torch.Generator(device=model.device).manual_seed(0)
        cond = None
        if model.num_classes is not None:
            cond = self.held_out_cond[:8] if self.held_out_cond is not None else torch.arange(8) % model.num_classes
            cond = cond.to(model.device)
        samples = model.sample(8, tuple(self.grid_shape[1:]), cond, generator=generator)
        return samples.float() / 255


def fit_prior(
    prior: AutoregressivePrior,
    train_data: TrainData,
    *,
    eval_data: TrainData | None = None,
    cond: Tensor | None = None,
    eval_cond: Tensor | None = None,
    metadata: Mapping[str, object] | None = None,
    config: TrainConfig | None = None,
    resume: str | Path | None = None,
    **options: Unpack[TrainOptions],
) -> MetricsHistory:
    """Train ``prior`` in place by maximum likelihood with Adam; returns the per-epoch history.

    With ``checkpoint_dir`` set, the directory receives the prior (``save_pretrained``: ``config.json`` +
    ``model.safetensors``, of the best epoch by held-out bits/dim, or the last, see ``keep``) and ``metrics.json``,
    whose ``"settings"`` hold the training options, ``grid_shape`` ``[C, H, W]`` (what ``vqgen sample``
    draws by default) and ``metadata``. The prior object keeps the weights of the *last* step.

    Args:
        prior: any [`AutoregressivePrior`][vqgen.AutoregressivePrior]; its ``num_categories`` and ``channels`` must fit
            the data.
        train_data: a [`vqgen.data`][vqgen.data] dataset, uint8 pixels ``(N, C, H, W)``, or code grids ``(N, 1, h, w)``
            / ``(N, h, w)`` int64 (see [`as_grids`][as_grids]).
        eval_data: held-out data of the same kind, or streamed (a [`CodeGridDataset`][vqgen.data.CodeGridDataset], ...:
            read batch by batch, never whole), evaluated after every epoch; it decides the ``"best"`` checkpoint.
        cond: ``(N,)`` class labels or ``(N, cond_dim)`` vectors for conditional priors; default: ``.labels`` of the
            dataset when the prior is class-conditional.
        eval_cond: the same for in-memory ``eval_data`` (streamed data brings its labels with each item).
        metadata: extra JSON-able facts written into ``metrics.json`` under ``"settings"`` (e.g. the dataset name).
        config: a [`TrainConfig`][vqgen.training.TrainConfig]; defaults to ``TrainConfig()``.
        resume: continue from a training state (a ``checkpoint_dir`` of an earlier run, or one of its
            ``train_state/step-*`` directories); see [`vqgen.training.engine`][vqgen.training.engine].
        **options: overrides of ``config`` fields ([`TrainOptions`][vqgen.training.config.TrainOptions]):
            ``epochs``, ``batch_size``, ``lr``, ``max_steps``, ``max_seconds`` (training time, checked after every
            step; evaluation does not count), ``device``, ``seed``, ``checkpoint_dir``, ``keep``, ``progress``, ...

    Returns:
        A [`MetricsHistory`][vqgen.training.MetricsHistory] (a list) of ``{"epoch", "step", "seconds", "train": {...},
        "eval": {...}}`` with ``bits_per_dim`` and ``nll`` in each split (``"eval"`` only with ``eval_data``).

    Raises:
        TypeError: if ``prior`` is not an AutoregressivePrior, the data is not integer grids, or an option is unknown
            or of the wrong type.
        ValueError: if the grids (channels, values) or conditions do not fit the prior, ``eval_cond`` is given with
            streamed ``eval_data``, an option is out of range, or ``checkpoint_dir`` holds another run.
        OSError: if ``checkpoint_dir`` cannot be written.

    Examples:
        >>> import vqgen
        >>> from vqgen.training import fit_prior
        >>> train = vqgen.data.load_dataset("digits", size=8)                   # (1, 8, 8) uint8 pixels
        >>> test = vqgen.data.load_dataset("digits", size=8, split="test")
        >>> prior = vqgen.build("prior", "gated_pixelcnn", num_categories=256, num_classes=10,
        ...                     hidden_channels=16, num_layers=3)               # a pixel model, by class
        >>> history = fit_prior(prior, train, eval_data=test, max_steps=3, checkpoint_dir="runs/pixels")
        >>> history[-1]["step"], sorted(history[-1]["eval"])                  # the labels: train.labels
        (3, ['bits_per_dim', 'nll'])
    """
    if not isinstance(prior, AutoregressivePrior):
        raise TypeError(f"prior must be a vqgen AutoregressivePrior, got {type(prior).__name__}")
    config = (config or TrainConfig()).replace(**options)
    if is_stream(train_data):
        source, shape, cond = train_data, _grid_shape(train_data), None  # labels come with each batch
        conditional = prior.num_classes is not None
    else:
        grids = as_grids(train_data, name="train_data")
        if grids.shape[1] != prior.channels:
            raise ValueError(
                f"train_data has {grids.shape[1]} channels (shape {tuple(grids.shape)}) but the prior models "
                f"{prior.channels}; build it with channels={grids.shape[1]}"
            )
        checks.check_indices(grids, num_categories=prior.num_categories, name="train_data")
        cond = _resolve_cond(prior, train_data, cond, len(grids), name="train_data")
        source, shape, conditional = grids, list(grids.shape[1:]), cond is not None
    held_out = held_out_cond = None
    if eval_data is not None and is_stream(eval_data):  # read batch by batch at every evaluation, never whole
        if eval_cond is not None:
            raise ValueError(
                "eval_cond is for in-memory eval_data; streamed eval_data brings its labels with each item"
            )
        held_out, eval_shape = eval_data, _grid_shape(eval_data)
        if shape is not None and eval_shape is not None and eval_shape != shape:
            raise ValueError(f"eval_data has grids {tuple(eval_shape)}, train_data {tuple(shape)}")
        shape = shape or eval_shape
    elif eval_data is not None:
        held_out = as_grids(eval_data, name="eval_data")
        if shape is not None and list(held_out.shape[1:]) != shape:
            raise ValueError(f"eval_data has grids {tuple(held_out.shape[1:])}, train_data {tuple(shape)}")
        checks.check_indices(held_out, num_categories=prior.num_categories, name="eval_data")
        held_out_cond = _resolve_cond(prior, eval_data, eval_cond, len(held_out), name="eval_data")
        shape = shape or list(held_out.shape[1:])
    if shape is not None:
        _log_short_sight(prior, shape[1], shape[2])
    task = PriorTask(prior, held_out, held_out_cond, conditional=conditional,
                     eval_batch_size=config.eval_batch_size or config.batch_size, grid_shape=shape,
                     num_workers=config.num_workers)  # fmt: skip
    settings = {"grid_shape": shape, "metadata": dict(metadata or {})}
    return train(prior, task, loader_for(source, cond, config=config), config, resume=resume, settings=settings)


def _grid_shape(data: Any) -> list[int] | None:
    """``[C, H, W]`` of one example of streamed ``data`` (``(h, w)`` code grids gain their channel), if it can tell."""
    shape = item_shape(data)
    if shape is None or len(shape) not in (2, 3):
        return None
    return [1, *shape] if len(shape) == 2 else list(shape)


def _log_short_sight(prior: AutoregressivePrior, height: int, width: int) -> None:
    """Say so when the prior's last position cannot see the top rows of the grids it is about to learn.

    Logged, not warned: the default pixel priors see 19 of MNIST's 28 rows, as PixelCNNs of that depth always have;
    for code grids, where every position carries a stroke or a garment's part, it is worth a look.
    """
    rows = prior.rows_in_view(height, width)
    if rows is not None and rows < height:
        logger.info(
            "%s sees the last %d of the %d rows of a %dx%d grid from its last position (its receptive field); "
            "more layers (or a wider first kernel) let it see the whole grid",
            type(prior).__name__, rows, height, height, width,
        )  # fmt: skip
