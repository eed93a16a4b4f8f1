"""The stage-1 model: encoder + quantizer + decoder (VQ-VAE, van den Oord et al., arXiv:1711.00937).

```
images (B,C,H,W) ──► encoder ──► z (B,D,h,w) ──► quantizer ──► codes (B,h,w) ──► embed ──► decoder ──► (B,C,H,W)
```

The training objective is equation 3 of the paper,
``L = |x - decoder(e)|² + |sg(z) - e|² + beta * |z - sg(e)|²``: the reconstruction MSE on ``[0, 1]`` pixels plus the
quantizer's own loss (``QuantizerOutput.loss``, which already holds the codebook and the beta-weighted commitment
terms).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from .. import checks
from ..interfaces import Component, Decoder, Encoder, Quantizer
from ..registry import build_from_spec, register, registry
from .codes import encode_codes

if TYPE_CHECKING:
    pass

__all__ = ["VQVAE", "VQVAEOutput", "encode_codes"]


@dataclass(frozen=True)
class VQVAEOutput:
    """What [`VQVAE.forward`][VQVAE.forward] returns.

    Attributes:
        reconstruction: ``(B, C, H, W)`` decoder output, pixel values approximating ``[0, 1]`` (not clamped).
        codes: ``(B, h, w)`` int64 code indices.
        loss: scalar training loss, ``reconstruction_loss + quantizer loss`` (equation 3 of arXiv:1711.00937).
        reconstruction_loss: scalar MSE between ``reconstruction`` and the ``[0, 1]`` input, averaged over pixels.
        codebook_loss: scalar ``|sg(z) - e|²`` (zero for EMA quantizers).
        commitment_loss: scalar ``|z - sg(e)|²``, unweighted.
        perplexity: scalar, effective number of codes used in the batch.
        usage: scalar in ``[0, 1]``, fraction of the codebook used in the batch.

    Examples:
        >>> import torch
        >>> from vqgen.autoencoders import VQVAE
        >>> out = VQVAE.from_names({"encoder": "conv", "quantizer": "vq"})(torch.rand(2, 1, 28, 28))
        >>> out.reconstruction.shape, out.codes.shape
        (torch.Size([2, 1, 28, 28]), torch.Size([2, 7, 7]))
        >>> out.loss.backward()                             # the training objective, eq. 3 of arXiv:1711.00937
    """

    reconstruction: Tensor
    codes: Tensor
    loss: Tensor
    reconstruction_loss: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor
    perplexity: Tensor
    usage: Tensor


def _component(value: Any, interface: type, *, name: str) -> nn.Module:
    """Accept a component instance or its spec ``{"kind", "name", "config"}``."""
    if isinstance(value, Mapping):
        value = build_from_spec(value)
    if not isinstance(value, interface):
        raise TypeError(
            f"{name} must be a {interface.__name__} or its spec {{'kind', 'name', 'config'}}, "
            f"got {type(value).__name__}"
        )
    return value


@register("model", "vqvae")
class VQVAE(Component):
    """Encoder + quantizer + decoder, trained together as stage 1 (arXiv:1711.00937).

    Build it from components or from their specs (as stored in ``config.json``), or by names with
    [`from_names`][from_names].

    Args:
        encoder: an [`Encoder`][vqgen.Encoder] (or its spec).
        quantizer: a [`Quantizer`][vqgen.Quantizer] (or its spec) whose ``dim`` equals the encoder's ``latent_dim``.
        decoder: a [`Decoder`][vqgen.Decoder] (or its spec) with the same ``latent_dim``, producing as many channels as
            the encoder takes and upsampling by the encoder's downsampling factor.

    Raises:
        ValueError: if the latent dimensions, channel counts or scale factors of the parts disagree.
        TypeError: if a part is neither a component of its kind nor a spec.

    Examples:
        >>> import torch, vqgen
        >>> model = vqgen.build(
        ...     "model", "vqvae",
        ...     encoder=vqgen.build("encoder", "conv", latent_dim=16),                # 28x28 -> 7x7
        ...     quantizer=vqgen.build("quantizer", "vq", num_codes=512, dim=16),
        ...     decoder=vqgen.build("decoder", "conv", latent_dim=16),
        ... )
        >>> images = torch.rand(4, 1, 28, 28)               # float in [0, 1], or uint8
        >>> model(images).loss.backward()
        >>> codes = model.eval().encode(images)
        >>> codes.shape, model.decode(codes).shape
        (torch.Size([4, 7, 7]), torch.Size([4, 1, 28, 28]))
        >>> vqgen.build("model", "vqvae", encoder={"kind": "encoder", "name": "conv", "config": {"latent_dim": 8}},
        ...             quantizer=vqgen.build("quantizer", "vq", dim=16), decoder=vqgen.build("decoder", "conv"))
        Traceback (most recent call last):
        ValueError: the latent dimensions disagree: encoder.latent_dim=8, quantizer.dim=16, decoder.latent_dim=16; ...
    """

    def __init__(
        self,
        encoder: Encoder | Mapping[str, Any] | None = None,
        quantizer: Quantizer | Mapping[str, Any] | None = None,
        decoder: Decoder | Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.encoder: Encoder = _component(encoder, Encoder, name="encoder")
        self.quantizer: Quantizer = _component(quantizer, Quantizer, name="quantizer")
        self.decoder: Decoder = _component(decoder, Decoder, name="decoder")
        enc, quant, dec = self.encoder, self.quantizer, self.decoder
        if not enc.latent_dim == quant.dim == dec.latent_dim:
            raise ValueError(
                "the latent dimensions disagree: encoder.latent_dim="
                f"{enc.latent_dim}, quantizer.dim={quant.dim}, decoder.latent_dim={dec.latent_dim}; "
                "build all three with the same D"
            )
        if enc.in_channels != dec.out_channels:
            raise ValueError(
                f"the encoder takes {enc.in_channels} image channels (in_channels) but the decoder produces "
                f"{dec.out_channels} (out_channels); build both for the same images"
            )
        if enc.downsample != dec.upsample:
            raise ValueError(
                f"the encoder downsamples by {enc.downsample} but the decoder upsamples by {dec.upsample}; "
                "build both with the same number of stages"
            )

    @classmethod
    def from_names(cls, config: Mapping[str, str | Mapping[str, Any]]) -> VQVAE:
        """Build from names and options; the sizes left out are filled in so that the parts fit.

        ``config`` has the keys ``encoder``, ``quantizer`` and optionally ``decoder``; each a name (``"conv"``) or a
        dict ``{"name": ..., **options}``. Filled in when absent: the quantizer's ``dim`` (the encoder's
        ``latent_dim``) and the decoder (the encoder's name and options, ``in_channels`` becoming ``out_channels``).

        Args:
            config: ``{"encoder": ..., "quantizer": ..., "decoder": ...}`` (``decoder`` optional).

        Returns:
            A new, untrained VQ-VAE.

        Raises:
            ValueError: if ``encoder`` or ``quantizer`` is missing, or a name is unknown.
            TypeError: if an option is not one its component takes.

        Examples:
            >>> from vqgen.autoencoders import VQVAE
            >>> model = VQVAE.from_names({"encoder": {"name": "conv", "in_channels": 3, "latent_dim": 32},
            ...                           "quantizer": {"name": "ema", "num_codes": 128}})
            >>> model.quantizer.dim, model.decoder.out_channels, model.downsample
            (32, 3, 4)
        """
        from ..priors.code_prior import named_config  # the priors import this module

        missing = [key for key in ("encoder", "quantizer") if key not in config]
        if missing:
            raise ValueError(f"the config needs {missing}, e.g. {{'encoder': 'conv', 'quantizer': 'ema', ...}}")
        enc_name, enc_cfg = named_config(config["encoder"], kind="encoder")
        encoder = registry("encoder").build(enc_name, **enc_cfg)
        dec_name, dec_cfg = named_config(config.get("decoder", enc_name), kind="decoder")
        mirrored = {("out_channels" if k == "in_channels" else k): v for k, v in encoder.config.items()}
        accepted = list(inspect.signature(registry("decoder").get(dec_name).__init__).parameters)[1:]
        decoder = registry("decoder").build(dec_name, **{k: v for k, v in mirrored.items() if k in accepted} | dec_cfg)
        q_name, q_cfg = named_config(config["quantizer"], kind="quantizer")
        q_cfg.setdefault("dim", encoder.latent_dim)
        return cls(encoder=encoder, quantizer=registry("quantizer").build(q_name, **q_cfg), decoder=decoder)

    @property
    def num_codes(self) -> int:
        """K, the codebook size.

        Examples:
            >>> from vqgen.autoencoders import VQVAE
            >>> VQVAE.from_names({"encoder": "conv", "quantizer": {"name": "vq", "num_codes": 64}}).num_codes
            64
        """
        return self.quantizer.num_codes

    @property
    def latent_dim(self) -> int:
        """D, the dimension of the codebook vectors.

        Examples:
            >>> from vqgen.autoencoders import VQVAE
            >>> VQVAE.from_names({"encoder": {"name": "conv", "latent_dim": 8}, "quantizer": "vq"}).latent_dim
            8
        """
        return self.quantizer.dim

    @property
    def in_channels(self) -> int:
        """C, the image channels.

        Examples:
            >>> from vqgen.autoencoders import VQVAE
            >>> VQVAE.from_names({"encoder": {"name": "conv", "in_channels": 3}, "quantizer": "vq"}).in_channels
            3
        """
        return self.encoder.in_channels

    @property
    def downsample(self) -> int:
        """H / h, the ratio of image size to code-grid size.

        Examples:
            >>> from vqgen.autoencoders import VQVAE
            >>> VQVAE.from_names({"encoder": {"name": "conv", "num_downsamples": 3}, "quantizer": "vq"}).downsample
            8
        """
        return self.encoder.downsample

    def code_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        """The ``(h, w)`` code grid for images of shape ``(C, H, W)``, validating the size.

        Args:
            image_shape: ``(C, H, W)`` of one image.

        Returns:
            ``(h, w)``.

        Raises:
            ValueError: if the encoder cannot divide ``H`` and ``W``.

        Examples:
            >>> from vqgen.autoencoders import VQVAE
            >>> VQVAE.from_names({"encoder": "conv", "quantizer": "vq"}).code_shape((1, 28, 28))
            (7, 7)
        """
        return self.encoder.latent_shape(image_shape)

    @staticmethod
    def _as_float(images: Tensor) -> Tensor:
        """uint8 images in ``[0, 255]`` → float in ``[0, 1]``; float images pass through unchanged."""
        checks.check_tensor(images, name="images", ndim=4)
        return images.float() / 255 if images.dtype == torch.uint8 else images

    def forward(self, images: Tensor) -> VQVAEOutput:
        """Reconstruct ``images`` ``(B, C, H, W)`` (float in ``[0, 1]``, or uint8) and compute the training loss.

        Args:
            images: ``(B, C, H, W)`` float in ``[0, 1]``, or uint8 (divided by 255).

        Returns:
            The reconstruction, codes, loss and its terms, perplexity and usage of the batch.

        Raises:
            TypeError: if ``images`` is not a tensor, or the encoder refuses its type.
            ValueError: if ``images`` is not 4-D or does not fit the encoder, or the decoder returns another shape.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import VQVAE
            >>> model = VQVAE.from_names({"encoder": "conv", "quantizer": "ema"})
            >>> out = model(torch.randint(256, (4, 1, 28, 28), dtype=torch.uint8))
            >>> sorted(name for name in vars(out) if name.endswith("loss"))
            ['codebook_loss', 'commitment_loss', 'loss', 'reconstruction_loss']
        """
        x = self._as_float(images)
        z = self.encoder(x)  # (B, D, h, w)
        q = self.quantizer(z)
        reconstruction = self.decoder(q.quantized)  # (B, C, H, W)
        if reconstruction.shape != x.shape:
            raise ValueError(f"the decoder produced shape {tuple(reconstruction.shape)} for input {tuple(x.shape)}")
        reconstruction_loss = nn.functional.mse_loss(reconstruction, x)
        return VQVAEOutput(
            reconstruction=reconstruction,
            codes=q.codes,
            loss=reconstruction_loss + q.loss,
            reconstruction_loss=reconstruction_loss,
            codebook_loss=q.codebook_loss,
            commitment_loss=q.commitment_loss,
            perplexity=q.perplexity,
            usage=q.usage,
        )

    @torch.no_grad()
    def encode(self, images: Tensor) -> Tensor:
        """Images ``(B, C, H, W)`` (float in ``[0, 1]``, or uint8) → codes ``(B, h, w)`` int64.

        Runs the quantizer in whatever mode the model is in; call ``model.eval()`` first so that quantizers with
        training-time updates (EMA, dead-code restarts) leave the codebook alone.

        Args:
            images: ``(B, C, H, W)`` float in ``[0, 1]``, or uint8.

        Returns:
            ``(B, h, w)`` int64 codes.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import VQVAE
            >>> model = VQVAE.from_names({"encoder": "conv", "quantizer": "ema"}).eval()
            >>> model.encode(torch.rand(4, 1, 28, 28)).shape
            torch.Size([4, 7, 7])
        """
        return self.quantizer(self.encoder(self._as_float(images))).codes

    @torch.no_grad()
    def decode(self, codes: Tensor) -> Tensor:
        """Codes ``(B, h, w)`` int64 → pixel values ``(B, C, H, W)`` approximating ``[0, 1]``.

        The one way from indices back to images: ``decoder(quantizer.embed(codes))``. Clamp the result, or convert
        it with [`vqgen.images.to_uint8`][vqgen.images.to_uint8], before display.

        Args:
            codes: ``(B, h, w)`` integer codes in ``[0, num_codes)``.

        Returns:
            ``(B, C, H, W)`` float pixel values, not clamped.

        Raises:
            TypeError: if ``codes`` is not an integer tensor.
            ValueError: if a code lies outside ``[0, num_codes)``.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import VQVAE
            >>> model = VQVAE.from_names({"encoder": "conv", "quantizer": {"name": "vq", "num_codes": 64}})
            >>> model.decode(torch.randint(64, (4, 7, 7))).shape
            torch.Size([4, 1, 28, 28])
        """
        checks.check_indices(codes, num_categories=self.num_codes, name="codes")
        return self.decoder(self.quantizer.embed(codes))  # (B, C, H, W)

    @torch.no_grad()
    def reconstruct(self, images: Tensor) -> Tensor:
        """``decode(encode(images))``: pixel values ``(B, C, H, W)`` approximating ``[0, 1]``.

        Args:
            images: ``(B, C, H, W)`` float in ``[0, 1]``, or uint8.

        Returns:
            ``(B, C, H, W)`` float pixel values, not clamped.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import VQVAE
            >>> model = VQVAE.from_names({"encoder": "conv", "quantizer": "vq"}).eval()
            >>> model.reconstruct(torch.rand(4, 1, 28, 28)).shape
            torch.Size([4, 1, 28, 28])
        """
        return self.decode(self.encode(images))
