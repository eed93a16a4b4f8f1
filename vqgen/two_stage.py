"""TwoStageModel: a VQ-VAE (stage 1) and an autoregressive prior over its code grids (stage 2).

```
fit:    images ──► stage 1 (encoder + quantizer + decoder) ──► codes of the dataset ──► stage 2 (prior)
sample: prior ──► codes (n, h, w) ──► quantizer.embed ──► decoder ──► images (n, C, H, W)
```

This is the workflow of the VQ-VAE paper (arXiv:1711.00937, section 4): the prior is fit after the autoencoder, on
its codes, and samples are decoded by the autoencoder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from . import checks
from .autoencoders.vqvae import VQVAE, _component
from .interfaces import AutoregressivePrior, Component, Decoder, Encoder, Quantizer
from .priors.code_prior import build_code_prior
from .registry import register
from .two_stage_fitting import TwoStageFitting
from .two_stage_sampling import TwoStageSampling

__all__ = ["NotFittedError", "TwoStageModel"]

logger = logging.getLogger(__name__)


class NotFittedError(ValueError):
    """A model was used for something that needs a stage it has not been trained for yet.

    A ``ValueError``, not an ``AttributeError``: raised inside a property (``image_shape``, ``code_shape``), an
    ``AttributeError`` would be swallowed by ``nn.Module.__getattr__`` and turned into "object has no attribute".

    Examples:
        >>> from vqgen import NotFittedError, TwoStageModel
        >>> model = TwoStageModel.from_config({"encoder": "conv", "quantizer": "vq", "prior": "gated_pixelcnn"})
        >>> try:
        ...     model.sample(4)
        ... except NotFittedError as error:
        ...     print(error)
        sample needs the prior (stage 2) to be trained first; call model.fit(dataset) or model.fit_prior(dataset)
    """


@register("model", "two_stage")
class TwoStageModel(TwoStageFitting, TwoStageSampling, Component):
    """A VQ-VAE and an autoregressive prior over its codes, trained and sampled as one model.

    Build it from components, or by names with [`from_config`][from_config], where swapping ``vq`` for ``ema`` or
    ``rnn`` for ``gated_pixelcnn`` is one word.

    Args:
        encoder: the stage-1 encoder (instance or spec), as for [`VQVAE`][vqgen.autoencoders.VQVAE].
        quantizer: the stage-1 quantizer (instance or spec).
        decoder: the stage-1 decoder (instance or spec).
        prior: an [`AutoregressivePrior`][vqgen.AutoregressivePrior] (or its spec) with one channel and
            ``num_categories == quantizer.num_codes``.

    Raises:
        ValueError: if the parts do not fit together (latent sizes, codebook size vs the prior's categories).
        TypeError: if a part is neither a component of its kind nor a spec.

    Examples:
        >>> import vqgen
        >>> from vqgen import TwoStageModel
        >>> model = TwoStageModel.from_config({
        ...     "encoder": {"name": "conv", "in_channels": 1, "latent_dim": 16},
        ...     "quantizer": {"name": "ema", "num_codes": 256},
        ...     "prior": {"name": "gated_pixelcnn", "num_layers": 8},
        ... })
        >>> digits = vqgen.data.load_dataset("digits")                     # (1, 16, 16) images, offline
        >>> histories = model.fit(digits, stage1={"max_steps": 2}, stage2={"max_steps": 2})   # a short run
        >>> model.image_shape, model.code_shape, model.sample(16).shape    # images: float in [0, 1]
        ((1, 16, 16), (4, 4), torch.Size([16, 1, 16, 16]))

        The same from instances (here with mismatched sizes, refused):

        >>> TwoStageModel(
        ...     encoder=vqgen.build("encoder", "conv", latent_dim=16),
        ...     quantizer=vqgen.build("quantizer", "vq", num_codes=512, dim=16),
        ...     decoder=vqgen.build("decoder", "conv", latent_dim=16),
        ...     prior=vqgen.build("prior", "gated_pixelcnn", num_categories=256),
        ... )
        Traceback (most recent call last):
        ValueError: the prior models 256 categories but the quantizer has 512 codes; build the prior with ...
    """

    def __init__(
        self,
        encoder: Encoder | Mapping[str, Any] | None = None,
        quantizer: Quantizer | Mapping[str, Any] | None = None,
        decoder: Decoder | Mapping[str, Any] | None = None,
        prior: AutoregressivePrior | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.vqvae = VQVAE(encoder=encoder, quantizer=quantizer, decoder=decoder)
        self.prior: AutoregressivePrior = _component(prior, AutoregressivePrior, name="prior")
        self._check_prior(self.prior)
        # Facts learnt while fitting, saved with the weights: the image shape (C, H, W) and which stages are trained.
        self.register_buffer("image_shape_", torch.zeros(3, dtype=torch.long))
        self.register_buffer("fitted_", torch.zeros(2, dtype=torch.bool))

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TwoStageModel:
        """Build from names and options; missing sizes are filled in so that the parts fit.

        ``config`` has the keys ``encoder``, ``quantizer``, ``prior`` and optionally ``decoder``; each a name
        (``"conv"``) or a dict ``{"name": ..., **options}``. Filled in when absent: the quantizer's ``dim`` (the
        encoder's ``latent_dim``), the decoder (same name and options as the encoder, ``in_channels`` becoming
        ``out_channels``), and what every prior over code grids gets from
        [`build_code_prior`][vqgen.priors.code_prior.build_code_prior]: ``num_categories`` (the codebook size),
        ``channels`` (1) and ``input_mode="embed"``.

        Args:
            config: ``{"encoder": ..., "quantizer": ..., "prior": ..., "decoder": ...}`` (``decoder`` optional),
                each a registered name or ``{"name": name, **options}``; a preset's
                [`config`][vqgen.presets.Preset.config], or the ``model:`` of a ``vqgen fit`` run file.

        Returns:
            A new, untrained model.

        Raises:
            TypeError: if ``config`` has other keys, or an option is not one its component takes.
            ValueError: if ``prior``, ``encoder`` or ``quantizer`` is missing, or a name is unknown.

        Examples:
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_config({
            ...     "encoder": {"name": "conv", "in_channels": 3, "latent_dim": 32},
            ...     "quantizer": {"name": "fsq", "levels": [8, 5, 5, 5]},
            ...     "prior": "gated_pixelcnn",
            ... })
            >>> model.num_codes, model.prior.num_categories, model.vqvae.decoder.out_channels
            (1000, 1000, 3)
            >>> TwoStageModel.from_config({"encoder": "conv", "quantizer": "vq"})
            Traceback (most recent call last):
            ValueError: TwoStageModel config needs ['prior'], e.g. {'encoder': 'conv', ...}
        """
        unknown = sorted(set(config) - {"encoder", "quantizer", "decoder", "prior"})
        if unknown:
            raise TypeError(f"unknown TwoStageModel config keys {unknown}; expected encoder, quantizer, decoder, prior")
        if "prior" not in config:
            raise ValueError("TwoStageModel config needs ['prior'], e.g. {'encoder': 'conv', ...}")
        vqvae = VQVAE.from_names({key: value for key, value in config.items() if key != "prior"})
        encoder, quantizer, decoder = vqvae.encoder, vqvae.quantizer, vqvae.decoder
        prior = build_code_prior(config["prior"], num_codes=quantizer.num_codes)
        return cls(encoder=encoder, quantizer=quantizer, decoder=decoder, prior=prior)

    @classmethod
    def from_preset(cls, name: str, *, in_channels: int | None = None) -> TwoStageModel:
        """Build the model of the preset ``name`` of [`vqgen.presets`][vqgen.presets] (``"mnist-small"`` is the
        README's configuration); train it with the budget it was measured at, ``model.fit(train, **preset.budget)``.

        Args:
            name: one of ``vqgen.presets.names()``.
            in_channels: the images' channels, when they differ from the preset's (3 for colour).

        Returns:
            A new, untrained model.

        Raises:
            ValueError: no preset has that name (the message lists them).

        Examples:
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("mnist-small")
            >>> model.num_codes, type(model.prior).__name__, model.prior.num_classes
            (512, 'GatedPixelCNN', 10)
            >>> TwoStageModel.from_preset("mnist-small", in_channels=3).vqvae.in_channels
            3
        """
        from . import presets

        return cls.from_config(presets.get(name).config(in_channels))

    def config_child(self, argument: str) -> Component | None:
        """``encoder``, ``quantizer`` and ``decoder`` live in ``vqvae``; ``prior`` is ``prior``.

        Args:
            argument: a constructor argument: ``"encoder"``, ``"quantizer"``, ``"decoder"`` or ``"prior"``.

        Returns:
            The part that argument became, or ``None`` for another name.

        Examples:
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_config({"encoder": "conv", "quantizer": "vq", "prior": "rnn"})
            >>> model.config_child("quantizer") is model.vqvae.quantizer, model.config_child("prior") is model.prior
            (True, True)
        """
        return self.prior if argument == "prior" else self.vqvae.config_child(argument)

    # ----------------------------------------------------------------------------------------------- properties

    @property
    def num_codes(self) -> int:
        """K, the codebook size (= the prior's number of categories).

        Examples:
            >>> from vqgen import TwoStageModel
            >>> TwoStageModel.from_config({"encoder": "conv", "quantizer": {"name": "vq", "num_codes": 64},
            ...                            "prior": "rnn"}).num_codes
            64
        """
        return self.vqvae.num_codes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of the images the model was fit on.

        Raises:
            NotFittedError: before stage 1 is trained.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> model.image_shape
            Traceback (most recent call last):
            vqgen.two_stage.NotFittedError: image_shape needs the autoencoder (stage 1) to be trained first; ...
            >>> _ = model.fit_stage1(vqgen.data.load_dataset("digits"), max_steps=2)
            >>> model.image_shape
            (1, 16, 16)
        """
        self._require(0, "image_shape")
        return tuple(int(s) for s in self.image_shape_)  # type: ignore[return-value]

    @property
    def code_shape(self) -> tuple[int, int]:
        """``(h, w)`` of the code grid the prior generates.

        Raises:
            NotFittedError: before stage 1 is trained.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> _ = model.fit_stage1(vqgen.data.load_dataset("digits"), max_steps=2)   # 16x16 images, 2 stages
            >>> model.code_shape
            (4, 4)
        """
        return tuple(self.vqvae.code_shape(self.image_shape))  # type: ignore[return-value]

    def _check_prior(self, prior: AutoregressivePrior) -> None:
        """Raise unless ``prior`` models this model's code grids: one channel of ``num_codes`` categories."""
        if prior.num_categories != self.vqvae.num_codes:
            raise ValueError(
                f"the prior models {prior.num_categories} categories but the quantizer has "
                f"{self.vqvae.num_codes} codes; build the prior with num_categories={self.vqvae.num_codes}"
            )
        if prior.channels != 1:
            raise ValueError(f"a prior over code grids has channels=1, got a prior with channels={prior.channels}")

    def _require(self, stage: int, action: str) -> None:
        if not bool(self.fitted_[stage]):
            what = ("the autoencoder (stage 1)", "fit_stage1") if stage == 0 else ("the prior (stage 2)", "fit_prior")
            raise NotFittedError(
                f"{action} needs {what[0]} to be trained first; call model.fit(dataset) or model.{what[1]}(dataset)"
            )

    # ------------------------------------------------------------------------------------------------ inference

    def encode(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` (uint8, or float in ``[0, 1]``) → codes ``(B, h, w)`` int64.

        Args:
            images: ``(B, C, H, W)`` of the shape the model was fit on.

        Returns:
            ``(B, h, w)`` int64 codes in ``[0, num_codes)``, on the model's device.

        Raises:
            NotFittedError: before stage 1 is trained.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> digits = vqgen.data.load_dataset("digits")
            >>> _ = model.fit_stage1(digits, max_steps=2)
            >>> model.encode(digits.images[:8]).shape
            torch.Size([8, 4, 4])
        """
        self._require(0, "encode")
        self.vqvae.eval()
        return self.vqvae.encode(images.to(self.device))

    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, h, w)`` int64 → images ``(B, C, H, W)`` float, clamped to ``[0, 1]``.

        Args:
            codes: ``(B, h, w)`` integer codes in ``[0, num_codes)``.

        Returns:
            ``(B, C, H, W)`` float images in ``[0, 1]``.

        Raises:
            NotFittedError: before stage 1 is trained.
            TypeError: if ``codes`` is not an integer tensor.
            ValueError: if it is not 3-D, or holds a value outside ``[0, num_codes)``.

        Examples:
            >>> import torch, vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> _ = model.fit_stage1(vqgen.data.load_dataset("digits"), max_steps=2)
            >>> images = model.decode(torch.randint(16, (8, 4, 4)))
            >>> images.shape, bool(images.min() >= 0) and bool(images.max() <= 1)
            (torch.Size([8, 1, 16, 16]), True)
        """
        self._require(0, "decode")
        checks.check_tensor(codes, name="codes", ndim=3)
        self.vqvae.eval()
        return self.vqvae.decode(codes.to(self.device)).clamp_(0, 1)

    def reconstruct(self, images: Tensor) -> Tensor:
        """``decode(encode(images))``: ``(B, C, H, W)`` float in ``[0, 1]``.

        Args:
            images: ``(B, C, H, W)`` uint8, or float in ``[0, 1]``, of the shape the model was fit on.

        Returns:
            ``(B, C, H, W)`` float reconstructions in ``[0, 1]``.

        Raises:
            NotFittedError: before stage 1 is trained.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> digits = vqgen.data.load_dataset("digits")
            >>> _ = model.fit_stage1(digits, max_steps=2)
            >>> model.reconstruct(digits.images[:8]).shape
            torch.Size([8, 1, 16, 16])
        """
        return self.decode(self.encode(images))
