"""Named two-stage configurations, each with the training budget it was measured at: defined once, used everywhere.

The README's configuration is ``"mnist-small"``; ``vqgen fit`` trains it by default (``--preset`` picks another),
``vqgen demo`` runs the ``*-demo`` presets, and the figures and quality benchmarks build their models from these
entries, so that none of them can drift from the others::

    import vqgen
    from vqgen import TwoStageModel

    preset = vqgen.presets.get("mnist-small")
    model = TwoStageModel.from_preset("mnist-small")             # = TwoStageModel.from_config(preset.config())
    model.fit(train, eval_data=test, **preset.budget)           # stage1={"max_seconds": 300}, stage2={...}
    images = model.sample(16, cond=torch.arange(16) % 10, temperature=preset.temperature)

``vqgen.presets.names()`` lists them; every number in them is justified beside it, and the figures they give are on
the benchmarks page.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = ["Preset", "get", "names"]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(
        {key: _frozen(value) if isinstance(value, Mapping) else value for key, value in mapping.items()}
    )


def _thawed(mapping: Mapping[str, Any]) -> dict[str, Any]:
    return {key: _thawed(value) if isinstance(value, Mapping) else copy.copy(value) for key, value in mapping.items()}


@dataclass(frozen=True)
class Preset:
    """A [`TwoStageModel`][vqgen.TwoStageModel] configuration and the budget it was measured at.

    Attributes:
        name: the preset's name, e.g. ``"mnist-small"``.
        summary: one line: what it is for.
        model: the ``TwoStageModel.from_config`` mapping (the encoder's ``in_channels`` set by [`config`][config]).
        stage1: ``fit_vqvae`` options of its budget (``max_seconds``, ``epochs``, ...).
        stage2: ``fit_prior`` options of its budget.
        temperature: the sampling temperature its figures are measured at.
        dataset: the dataset it was tuned on.

    Examples:
        >>> import vqgen
        >>> preset = vqgen.presets.get("digits-demo")
        >>> preset.dataset, preset.budget["stage1"], preset.config()["quantizer"]["num_codes"]
        ('digits', {'epochs': 15}, 32)
        >>> preset.model["quantizer"]["num_codes"] = 64          # frozen: config() hands out copies instead
        Traceback (most recent call last):
        TypeError: 'mappingproxy' object does not support item assignment
    """

    name: str
    summary: str
    model: Mapping[str, Any]
    stage1: Mapping[str, Any] = field(default_factory=dict)
    stage2: Mapping[str, Any] = field(default_factory=dict)
    temperature: float = 1.0
    dataset: str = "mnist"

    def __post_init__(self) -> None:
        """Freeze ``model``, ``stage1`` and ``stage2`` (read-only mappings, nested ones included)."""
        for key in ("model", "stage1", "stage2"):
            object.__setattr__(self, key, _frozen(getattr(self, key)))

    def config(self, in_channels: int | None = None) -> dict[str, Any]:
        """A fresh copy of ``model`` for ``TwoStageModel.from_config``, with the encoder's ``in_channels`` set when
        given (1 for grey images, 3 for colour).

        Args:
            in_channels: the images' channels; ``None`` keeps the preset's.

        Returns:
            A new, mutable dict.

        Examples:
            >>> import vqgen
            >>> config = vqgen.presets.get("mnist-small").config(in_channels=3)
            >>> config["encoder"]["in_channels"], config["quantizer"]
            (3, {'name': 'ema', 'num_codes': 512})
        """
        config = _thawed(self.model)
        if in_channels is not None:
            config["encoder"]["in_channels"] = in_channels
        return config

    @property
    def budget(self) -> dict[str, dict[str, Any]]:
        """``{"stage1": {...}, "stage2": {...}}``: fresh copies, for ``model.fit(train, **preset.budget)``.

        Examples:
            >>> import vqgen
            >>> vqgen.presets.get("mnist-small").budget
            {'stage1': {'max_seconds': 300}, 'stage2': {'max_seconds': 900}}
        """
        return {"stage1": _thawed(self.stage1), "stage2": _thawed(self.stage2)}


_CONV = {"name": "conv", "hidden_channels": 64, "residual_channels": 32, "latent_dim": 16}
# The small class-conditional gated prior: on MNIST codes it beats the library's default 15 x 64 prior per CPU-minute
# for the first ~30 one-core minutes (docs/benchmarks/method.md#quality-budget).
_SMALL_GATED = {
    "name": "gated_pixelcnn",
    "num_classes": 10,
    "hidden_channels": 48,
    "num_layers": 6,
    "head_channels": 64,
}

_PRESETS = {
    preset.name: preset
    for preset in (
        Preset(
            name="mnist-small",
            summary="The README's configuration: sharp class-conditional MNIST samples in 5 + 15 CPU-minutes",
            model={
                "encoder": {**_CONV, "in_channels": 1, "num_downsamples": 2},  # 28x28 -> 7x7 codes
                "quantizer": {"name": "ema", "num_codes": 512},  # the EMA codebook of arXiv:1711.00937 (decay 0.99)
                "prior": _SMALL_GATED,
            },
            # Training time of each stage, evaluation excluded; the epochs are unbounded under a time budget.
            stage1={"max_seconds": 300},
            stage2={"max_seconds": 900},
            temperature=0.8,  # lower FID than 1.0 on MNIST, with no loss of recognised classes
            dataset="mnist",
        ),
        Preset(
            name="digits-demo",
            summary="vqgen demo offline: scikit-learn's 8x8 digits at 16x16, about a minute per stage on 2 cores",
            model={
                "encoder": {**_CONV, "in_channels": 1, "num_downsamples": 1},  # 16x16 -> 8x8 codes (4x4: MSE 4.5x)
                # 23 steps per epoch on digits: restart codes unused for ~1 epoch (the default 100 steps is > 4
                # epochs); K=32: on 1,442 grids a small codebook lets the prior beat the independent baseline widely.
                "quantizer": {"name": "ema", "num_codes": 32, "kmeans_init": True, "restart_after": 25},
                "prior": _SMALL_GATED,  # small: 1,442 grids overfit a bigger prior (held-out bits/code rise again)
            },
            stage1={"epochs": 15},
            stage2={"epochs": 15, "max_seconds": 60},
            dataset="digits",
        ),
        Preset(
            name="mnist-demo",
            summary="vqgen demo on MNIST or Fashion-MNIST: a small codebook that a minute of prior training fills",
            model={
                "encoder": {**_CONV, "in_channels": 1, "num_downsamples": 2},
                # With K=256 (many near-duplicate codes) no prior beat the independent baseline within a minute.
                "quantizer": {"name": "ema", "num_codes": 64, "kmeans_init": True},
                "prior": _SMALL_GATED,
            },
            stage1={"epochs": 15},
            stage2={"epochs": 15, "max_seconds": 60},
            dataset="mnist",
        ),
        Preset(
            name="digits-tiny",
            summary="Seconds on a CPU, for examples and tests: 16x16 digits -> 4x4 codes of 16 (not for quality)",
            model={
                "encoder": {
                    "name": "conv",
                    "in_channels": 1,
                    "hidden_channels": 8,
                    "residual_channels": 4,
                    "latent_dim": 4,
                },  # fmt: skip
                "quantizer": {"name": "vq", "num_codes": 16},
                "prior": {"name": "gated_pixelcnn", "hidden_channels": 8, "num_layers": 2},
            },
            stage1={"max_steps": 20},
            stage2={"max_steps": 20},
            dataset="digits",
        ),
        Preset(
            name="cifar10-small",
            summary="Colour 32x32 images (the CIFAR-10 subset): 8x8 codes of a 128-code codebook",
            model={
                "encoder": {**_CONV, "in_channels": 3, "num_downsamples": 2, "latent_dim": 32},  # 32x32 -> 8x8 codes
                "quantizer": {"name": "ema", "num_codes": 128, "kmeans_init": True},
                "prior": _SMALL_GATED,
            },
            stage1={"max_seconds": 180},
            stage2={"max_seconds": 150},  # 3,500 grids: the prior overfits soon after
            dataset="cifar10",
        ),
    )
}


def names() -> list[str]:
    """The presets' names, sorted.

    Returns:
        A new list of names, for [`get`][get] or ``TwoStageModel.from_preset``.

    Examples:
        >>> import vqgen
        >>> vqgen.presets.names()
        ['cifar10-small', 'digits-demo', 'digits-tiny', 'mnist-demo', 'mnist-small']
    """
    return sorted(_PRESETS)


def get(name: str) -> Preset:
    """The preset called ``name``.

    Args:
        name: one of the [`names`][names].

    Returns:
        The preset (frozen; its ``config()`` and ``budget`` are copies).

    Raises:
        ValueError: no preset has that name (the message lists them).

    Examples:
        >>> import vqgen
        >>> vqgen.presets.get("mnist-small").summary
        "The README's configuration: sharp class-conditional MNIST samples in 5 + 15 CPU-minutes"
        >>> vqgen.presets.get("mnist")
        Traceback (most recent call last):
        ValueError: unknown preset 'mnist'; the presets are ['cifar10-small', 'digits-demo', ...]
    """
    if name not in _PRESETS:
        raise ValueError(f"unknown preset {name!r}; the presets are {names()}")
    return _PRESETS[name]
