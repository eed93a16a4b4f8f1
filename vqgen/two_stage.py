"""TwoStageModel: a VQ-VAE (stage 1) and an autoregressive prior over its code grids (stage 2).

```
fit:    images ──► stage 1 (encoder + quantizer + decoder) ──► codes of the dataset ──► stage 2 (prior)
sample: prior ──► codes (n, h, w) ──► quantizer.embed ──► decoder ──► images (n, C, H, W)
```

This is the workflow of the VQ-VAE paper (arXiv:1711.00937, section 4): the prior is fit after the autoencoder, on
its codes, and samples are decoded by the autoencoder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader

from . import checks
from .autoencoders.vqvae import VQVAE, _component, encode_codes
from .data.codes import CodeGridDataset, encode_to_disk
from .interfaces import AutoregressivePrior, Component, Decoder, Encoder, Quantizer
from .prefix import codes_kept, pixel_mask
from .priors.baselines import fit_closed_form
from .priors.code_prior import build_code_prior
from .registry import register
from .sampling import SamplingOptions
from .training.batches import is_stream
from .training.history import MetricsHistory
from .training.inputs import TrainData, image_shape, images_to_float
from .training.prior import fit_prior
from .training.stage1 import fit_vqvae

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .sampling import SamplingSettings
    from .training.config import FitOptions

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
class TwoStageModel(Component):
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

    # ---------------------------------------------------------------------------------------------------- fitting

    def fit(
        self,
        train_data: TrainData,
        *,
        eval_data: TrainData | None = None,
        stage1: FitOptions | None = None,
        stage2: FitOptions | None = None,
    ) -> dict[str, MetricsHistory]:
        """Train stage 1, encode the dataset to codes, then train the prior; returns both histories.

        Args:
            train_data: a [`vqgen.data`][vqgen.data] dataset (labels are used by class-conditional priors), uint8
                images ``(N, C, H, W)``, or a streamed dataset such as
                [`ImageFolderDataset`][vqgen.data.ImageFolderDataset] (its codes go to disk, see
                [`fit_prior`][vqgen.two_stage.TwoStageModel.fit_prior]).
            eval_data: held-out data, in memory or streamed (e.g. the ``test`` split of
                ``load_dataset(folder, stream=True)``: read batch by batch, its codes written beside the training
                codes), evaluated after every epoch of both stages.
            stage1: options of stage 1 ([`FitOptions`][vqgen.training.config.FitOptions]: ``TrainConfig``'s fields
                such as ``max_seconds``, ``epochs``, ``batch_size``, ``lr``, or a whole ``config``, and ``resume``).
            stage2: options of the prior, the same.

        Returns:
            ``{"stage1": history, "stage2": history}``, the [`MetricsHistory`][vqgen.training.MetricsHistory] of
            [`fit_stage1`][fit_stage1] and of [`fit_prior`][fit_prior].

        Raises:
            TypeError: if the data or an option has the wrong type (see [`fit_vqvae`][vqgen.training.fit_vqvae]).
            ValueError: if the data does not fit the model, or an option is out of range.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> train = vqgen.data.load_dataset("digits")
            >>> test = vqgen.data.load_dataset("digits", split="test")
            >>> histories = model.fit(train, eval_data=test, stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> sorted(histories), sorted(histories["stage2"][-1]["eval"])
            (['stage1', 'stage2'], ['bits_per_dim', 'nll'])
        """
        first = self.fit_stage1(train_data, eval_data=eval_data, **dict(stage1 or {}))
        second = self.fit_prior(train_data, eval_data=eval_data, **dict(stage2 or {}))
        return {"stage1": first, "stage2": second}

    def fit_stage1(
        self, train_data: TrainData, *, eval_data: TrainData | None = None, **options: Unpack[FitOptions]
    ) -> MetricsHistory:
        """Train the encoder, quantizer and decoder (see [`fit_vqvae`][vqgen.training.fit_vqvae] for ``options``).

        An earlier trained prior no longer matches the new codes: [`fit_prior`][fit_prior] must run again before
        sampling.

        Args:
            train_data: as for [`fit`][fit].
            eval_data: held-out data, evaluated after every epoch.
            **options: ``TrainConfig``'s fields, or a whole ``config``, and ``resume``
                ([`FitOptions`][vqgen.training.config.FitOptions]).

        Returns:
            The per-epoch [`MetricsHistory`][vqgen.training.MetricsHistory] of ``fit_vqvae``.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> history = model.fit_stage1(vqgen.data.load_dataset("digits"), max_steps=2, lr=2e-3)
            >>> history[-1]["step"], sorted(history[-1]["train"])[:3]
            (2, ['codebook_loss', 'commitment_loss', 'loss'])
        """
        shape = image_shape(train_data)
        history = fit_vqvae(self.vqvae, train_data, eval_data=eval_data, **options)
        self.image_shape_.copy_(torch.tensor(shape))
        self.fitted_[0] = True
        self.fitted_[1] = False  # new codes: an earlier prior no longer matches
        return history

    def fit_prior(
        self,
        train_data: TrainData,
        *,
        eval_data: TrainData | None = None,
        prior: AutoregressivePrior | None = None,
        codes_dir: str | os.PathLike[str] | None = None,
        **options: Unpack[FitOptions],
    ) -> MetricsHistory:
        """Encode ``train_data`` with the trained autoencoder and fit the prior on its codes.

        Args:
            train_data: as for [`fit`][fit]; its ``.labels`` condition class-conditional priors.
            eval_data: held-out data, in memory or streamed; streamed data is encoded batch by batch, its codes
                written to disk (under ``codes_dir/held_out``) and read back batch by batch at every evaluation.
            prior: replace the model's prior by this one first (refit another prior on a trained autoencoder).
            codes_dir: for streamed ``train_data`` (a dataset without in-memory ``.images``, such as
                [`ImageFolderDataset`][vqgen.data.ImageFolderDataset]), where its code grids are written,
                memory-mapped ([`encode_to_disk`][vqgen.data.encode_to_disk]); ``None`` uses a temporary directory
                removed afterwards. In-memory data is encoded in memory.
            **options: options of [`fit_prior`][vqgen.training.fit_prior] (``epochs``, ``max_seconds``, ...).

        A prior without trainable parameters is not trained by gradient: the ``independent`` baseline is fit in
        closed form (its per-position frequencies, [`fit`][vqgen.priors.baselines.IndependentPrior.fit]), the
        ``uniform`` one has nothing to learn; ``options`` do not apply, and the history holds one record of bits/dim.

        Returns:
            The per-epoch [`MetricsHistory`][vqgen.training.MetricsHistory] of ``fit_prior`` (bits/dim is bits per
            code).

        Raises:
            NotFittedError: before stage 1 is trained.
            ValueError: if ``prior`` does not model this model's codes, or a class-conditional prior gets data
                without labels.

        Examples:
            >>> import vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> digits = vqgen.data.load_dataset("digits")
            >>> _ = model.fit(digits, stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> rnn = vqgen.build("prior", "rnn", num_categories=model.num_codes, hidden_size=16)
            >>> history = model.fit_prior(digits, prior=rnn, max_steps=2)             # another prior, same codes
            >>> model.prior is rnn, "bits_per_dim" in history[-1]["train"]
            (True, True)
        """
        self._require(0, "fit_prior")
        if prior is not None:
            self._check_prior(prior)
            self.prior = prior
        conditional = self.prior.num_classes is not None
        trainable = any(p.requires_grad for p in self.prior.parameters())
        to_disk = trainable and (is_stream(train_data) or (eval_data is not None and is_stream(eval_data)))
        with contextlib.ExitStack() as stack:
            if to_disk and codes_dir is None:
                codes_dir = stack.enter_context(tempfile.TemporaryDirectory(prefix="vqgen-codes-"))
            held_out, eval_cond = None, None
            if eval_data is not None and to_disk and is_stream(eval_data):
                held_out = self._codes_on_disk(eval_data, os.path.join(codes_dir, "held_out"))
            elif eval_data is not None:
                held_out = encode_codes(self.vqvae, eval_data)  # (N, 1, h, w)
                eval_cond = self._labels(eval_data) if conditional else None
            if trainable and is_stream(train_data):
                codes = self._codes_on_disk(train_data, codes_dir)
                history = fit_prior(self.prior, codes, eval_data=held_out, eval_cond=eval_cond, **options)
            else:
                codes = encode_codes(self.vqvae, train_data)  # (N, 1, h, w)
                cond = self._labels(train_data) if conditional else None
                if trainable:
                    history = fit_prior(
                        self.prior, codes, eval_data=held_out, cond=cond, eval_cond=eval_cond, **options
                    )
                else:
                    history = MetricsHistory(fit_closed_form(self.prior, codes, held_out, cond, eval_cond))
        self.fitted_[1] = True
        return history

    def _codes_on_disk(self, data: Any, directory: str | os.PathLike[str]) -> CodeGridDataset:
        """The code grids of streamed ``data``, written batch by batch to ``directory`` and memory-mapped."""
        dataset = data.dataset if isinstance(data, DataLoader) else data
        return encode_to_disk(self.encode, dataset, directory, num_codes=self.num_codes)

    @staticmethod
    def _labels(data: Any) -> Tensor:
        labels = getattr(data, "labels", None)
        if labels is None:
            raise ValueError("the prior is class-conditional, but the data has no .labels; pass a labelled dataset")
        return labels

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

    def sample_codes(
        self,
        n: int,
        cond: Tensor | None = None,
        *,
        prior: AutoregressivePrior | None = None,
        prefix: Tensor | None = None,
        prefix_mask: Tensor | None = None,
        options: SamplingOptions | None = None,
        **settings: Unpack[SamplingSettings],
    ) -> Tensor:
        """Draw ``n`` code grids ``(n, h, w)`` from the prior (or from another ``prior``, e.g. a baseline).

        Args:
            n: number of grids.
            cond: ``(n,)`` class labels for a class-conditional prior.
            prior: sample from this prior instead (e.g. the ``independent`` or ``uniform`` baselines).
            prefix: ``(n, 1, h, w)`` codes to keep, and ``prefix_mask`` where (see
                [`vqgen.AutoregressivePrior.sample`][vqgen.interfaces.AutoregressivePrior.sample]).
            prefix_mask: ``(n, 1, h, w)`` bool, True where ``prefix`` is kept.
            options: a [`SamplingOptions`][vqgen.sampling.SamplingOptions].
            **settings: its fields as keywords (``temperature``, ``top_k``, ``top_p``, ``method``, ``generator``,
                ``progress``).

        Returns:
            ``(n, h, w)`` int64 codes.

        Raises:
            NotFittedError: before the stages it needs are trained (stage 1 with ``prior``, both without).
            ValueError: if ``prior`` does not model this model's codes, or a setting is out of range.

        Examples:
            >>> import torch, vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> _ = model.fit(vqgen.data.load_dataset("digits"), stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> model.sample_codes(8, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([8, 4, 4])
            >>> uniform = vqgen.build("prior", "uniform", num_categories=model.num_codes)
            >>> model.sample_codes(8, prior=uniform).shape                          # a baseline's codes
            torch.Size([8, 4, 4])
        """
        if prior is None:
            self._require(1, "sample")
            prior = self.prior
        else:
            self._require(0, "sample")
            self._check_prior(prior)
        options = SamplingOptions.of(options, **settings)
        values = prior.sample(n, self.code_shape, cond, prefix=prefix, prefix_mask=prefix_mask, options=options)
        return values[:, 0]

    def sample(
        self,
        n: int,
        cond: Tensor | None = None,
        *,
        prior: AutoregressivePrior | None = None,
        options: SamplingOptions | None = None,
        **settings: Unpack[SamplingSettings],
    ) -> Tensor:
        """Draw ``n`` images ``(n, C, H, W)`` float in ``[0, 1]``: codes from the prior, decoded.

        Args:
            n: number of images.
            cond: ``(n,)`` class labels for a class-conditional prior.
            prior: sample codes from this prior instead (e.g. the ``independent`` or ``uniform`` baselines).
            options: a [`SamplingOptions`][vqgen.sampling.SamplingOptions].
            **settings: its fields as keywords (``temperature``, ``top_k``, ``generator``, ...).

        Returns:
            ``(n, C, H, W)`` float images in ``[0, 1]``.

        Raises:
            NotFittedError: before both stages are trained (stage 1 only, with ``prior``).
            ValueError: if ``cond`` does not fit the prior, or a setting is out of range.

        Examples:
            >>> import torch, vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_config({
            ...     "encoder": {"name": "conv", "hidden_channels": 8, "residual_channels": 4, "latent_dim": 4},
            ...     "quantizer": {"name": "vq", "num_codes": 16},
            ...     "prior": {"name": "gated_pixelcnn", "num_classes": 10, "hidden_channels": 8, "num_layers": 2},
            ... })
            >>> _ = model.fit(vqgen.data.load_dataset("digits"), stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> labels = torch.arange(10)                                   # one image of each class
            >>> model.sample(10, labels, temperature=0.8, generator=torch.Generator().manual_seed(0)).shape
            torch.Size([10, 1, 16, 16])
        """
        codes = self.sample_codes(n, cond, prior=prior, options=SamplingOptions.of(options, **settings))
        with torch.inference_mode():
            images = self.decode(codes)
        return images.clone()  # outside inference mode: an ordinary tensor

    def complete(
        self,
        images: Tensor,
        mask: Tensor,
        cond: Tensor | None = None,
        *,
        options: SamplingOptions | None = None,
        **settings: Unpack[SamplingSettings],
    ) -> Tensor:
        """Fill the unknown part of ``images`` by sampling codes, keeping the known pixels.

        A code is kept when every pixel of its ``downsample x downsample`` patch is known; the others are sampled
        by the prior given the kept ones before them (raster order), then decoded. Known pixels are pasted back.

        Args:
            images: ``(B, C, H, W)`` uint8 or float in ``[0, 1]``.
            mask: ``(B, 1, H, W)``, ``(B, H, W)`` or ``(H, W)`` bool, True where the pixel is known.
            cond: class labels for a class-conditional prior.
            options: a [`SamplingOptions`][vqgen.sampling.SamplingOptions].
            **settings: its fields as keywords (``temperature``, ``generator``, ...).

        Returns:
            ``(B, C, H, W)`` float in ``[0, 1]``.

        Raises:
            NotFittedError: before both stages are trained.
            TypeError: if ``images`` or ``mask`` has the wrong type.
            ValueError: if ``mask`` does not fit ``images``.

        Examples:
            >>> import torch, vqgen
            >>> from vqgen import TwoStageModel
            >>> model = TwoStageModel.from_preset("digits-tiny")
            >>> digits = vqgen.data.load_dataset("digits")
            >>> _ = model.fit(digits, stage1={"max_steps": 2}, stage2={"max_steps": 2})
            >>> images = digits.images[:4]                                   # (4, 1, 16, 16) uint8
            >>> top_half = torch.zeros(16, 16, dtype=torch.bool)
            >>> top_half[:8] = True                                          # known: the top 8 rows
            >>> completed = model.complete(images, top_half)
            >>> completed.shape, torch.equal(completed[..., :8, :], images[..., :8, :] / 255)
            (torch.Size([4, 1, 16, 16]), True)
        """
        options = SamplingOptions.of(options, **settings)
        with torch.inference_mode():
            completed = self._complete(images, mask, cond, options)
        return completed.clone()  # outside inference mode: an ordinary tensor

    def _complete(self, images: Tensor, mask: Tensor, cond: Tensor | None, options: SamplingOptions) -> Tensor:
        self._require(1, "complete")
        x = images_to_float(checks.check_tensor(images, name="images", ndim=4), self.device)
        mask = pixel_mask(mask, x.shape).to(self.device)  # (B, 1, H, W)
        codes = self.encode(x)  # (B, h, w)
        keep = codes_kept(mask, self.vqvae.downsample)  # (B, 1, h, w)
        sampled = self.sample_codes(x.shape[0], cond, prefix=codes[:, None], prefix_mask=keep, options=options)
        filled = self.decode(sampled)
        return torch.where(mask, x, filled)
