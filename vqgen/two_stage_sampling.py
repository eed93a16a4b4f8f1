"""The sampling methods of [`TwoStageModel`][vqgen.two_stage.TwoStageModel]: codes from the prior, decoded images,
and completion of partly known images.

A mixin of ``TwoStageModel`` (which documents them): it reads the model's ``vqvae`` and ``prior``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import Tensor

from . import checks
from .interfaces import AutoregressivePrior
from .prefix import codes_kept, pixel_mask
from .sampling import SamplingOptions
from .training.inputs import images_to_float

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .sampling import SamplingSettings

__all__ = ["TwoStageSampling"]


class TwoStageSampling:
    """[`sample_codes`][vqgen.two_stage.TwoStageModel.sample_codes], [`sample`][vqgen.two_stage.TwoStageModel.sample]
    and [`complete`][vqgen.two_stage.TwoStageModel.complete] of a ``TwoStageModel``."""

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
