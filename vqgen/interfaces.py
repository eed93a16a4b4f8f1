"""The four interfaces of a two-stage model, and their output types.

```
images (B,C,H,W) ──► Encoder ──► z (B,D,h,w) ──► Quantizer ──► codes (B,h,w) ──► embed ──► Decoder ──► (B,C,H,W)
                                                                   AutoregressivePrior models p(codes) (or p(pixels))
```

Each interface is an abstract ``torch.nn.Module`` that is also [`Configurable`][vqgen.config.Configurable]:
implementations are registered by name ([`vqgen.register`][vqgen.register]) and rebuilt from their captured constructor
arguments. Outputs are frozen dataclasses, read by name (``out.codes``), never by position.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass

from torch import Tensor

from . import checks
from .component import Component
from .prior_interface import CHANNEL_ORDERS, AutoregressivePrior  # noqa: F401  (CHANNEL_ORDERS: its old home)

__all__ = ["AutoregressivePrior", "Component", "Decoder", "Encoder", "Quantizer", "QuantizerOutput"]


@dataclass(frozen=True)
class QuantizerOutput:
    """What a [`Quantizer`][Quantizer] returns.

    Attributes:
        quantized: ``(B, D, *spatial)`` nearest codebook vectors, passed through the straight-through estimator
            ``z + (e - z).detach()``, so gradients reach the encoder as if quantization were the identity.
        codes: ``(B, *spatial)`` int64 indices of the nearest codebook vectors.
        loss: scalar, the quantizer's total training loss, ``codebook_loss + beta * commitment_loss``
            (equation 3 of arXiv:1711.00937 without the reconstruction term).
        codebook_loss: scalar ``|sg(z) - e|²``, which moves codebook vectors to the encoder outputs (zero, and not a
            gradient loss, for quantizers that update the codebook by other means, such as EMA).
        commitment_loss: scalar ``|z - sg(e)|²``, unweighted; keeps the encoder close to its codes.
        perplexity: scalar ``exp(H(code histogram))`` over the batch: the effective number of codes in use.
        usage: scalar in ``[0, 1]``, the fraction of the codebook used at least once in the batch.

    Examples:
        >>> import torch, vqgen
        >>> out = vqgen.build("quantizer", "vq", num_codes=8, dim=4)(torch.randn(2, 4, 3, 3))
        >>> out.quantized.shape, out.codes.shape, out.codes.dtype
        (torch.Size([2, 4, 3, 3]), torch.Size([2, 3, 3]), torch.int64)
        >>> bool(out.loss == out.codebook_loss + 0.25 * out.commitment_loss)
        True
    """

    quantized: Tensor
    codes: Tensor
    loss: Tensor
    codebook_loss: Tensor
    commitment_loss: Tensor
    perplexity: Tensor
    usage: Tensor


class Quantizer(Component, abc.ABC):
    """Maps continuous vectors to the nearest of ``num_codes`` codebook vectors (VQ-VAE, arXiv:1711.00937).

    The vector dimension is axis 1, as in convolutional feature maps: ``z`` of shape ``(B, D, *spatial)`` with any
    number of spatial axes (none, ``(L,)``, ``(h, w)``, ...). An implementation writes [`forward`][forward],
    [`embed`][embed] and the two properties, and is registered with ``@vqgen.register("quantizer", name)``.

    Examples:
        >>> import torch, vqgen
        >>> quantizer = vqgen.build("quantizer", "ema", num_codes=16, dim=4)
        >>> z = torch.randn(2, 4, 7, 7)                        # (B, D, h, w) encoder outputs
        >>> out = quantizer(z)
        >>> out.codes.shape, quantizer.embed(out.codes).shape
        (torch.Size([2, 7, 7]), torch.Size([2, 4, 7, 7]))
    """

    @property
    @abc.abstractmethod
    def num_codes(self) -> int:
        """K, the codebook size.

        Examples:
            >>> import vqgen
            >>> vqgen.build("quantizer", "fsq", levels=[8, 5, 5, 5], dim=16).num_codes
            1000
        """

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """D, the dimension of each codebook vector.

        Examples:
            >>> import vqgen
            >>> vqgen.build("quantizer", "vq", num_codes=512, dim=64).dim
            64
        """

    @abc.abstractmethod
    def forward(self, z: Tensor) -> QuantizerOutput:
        """Quantize ``z`` of shape ``(B, D, *spatial)``; see [`QuantizerOutput`][QuantizerOutput].

        Args:
            z: ``(B, D, *spatial)`` float encoder outputs, finite.

        Returns:
            The quantized vectors, their codes ``(B, *spatial)`` and the losses and statistics of the batch.

        Examples:
            >>> import torch, vqgen
            >>> out = vqgen.build("quantizer", "vq", num_codes=16, dim=4)(torch.randn(8, 4))   # no spatial axes
            >>> out.quantized.shape, out.codes.shape
            (torch.Size([8, 4]), torch.Size([8]))
        """

    def check_latents(self, z: object) -> None:
        """Raise a clear error unless ``z`` is a finite floating ``(B, D, *spatial)`` tensor with ``D = dim``: the
        input check of a quantizer's [`forward`][forward], for plugins (the built-in ones check finiteness lazily).

        Args:
            z: what a caller hands to ``forward``.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if axis 1 is not ``dim`` wide (naming the encoder's ``latent_dim``), ``z`` is empty, or it
                holds NaN or inf.

        Examples:
            >>> import torch, vqgen
            >>> quantizer = vqgen.build("quantizer", "vq", num_codes=16, dim=4)
            >>> quantizer.check_latents(torch.randn(2, 4, 3, 3))
            >>> quantizer.check_latents(torch.randn(2, 5, 3, 3))
            Traceback (most recent call last):
            ValueError: z must have dim=4 channels on axis 1 (B, D, *spatial), got 5 (shape (2, 5, 3, 3)); ...
        """
        checks.check_latents(z, self.dim)
        checks.check_finite(z, name="z")

    def check_codes(self, codes: object) -> None:
        """Raise a clear error unless ``codes`` is an integer tensor ``(B, *spatial)`` of values in ``[0, K)``.

        Args:
            codes: what a caller hands to [`embed`][embed].

        Raises:
            TypeError: if ``codes`` is not a tensor of integers.
            ValueError: if it has no axis, or a value outside ``[0, K)``.

        Examples:
            >>> import torch, vqgen
            >>> quantizer = vqgen.build("quantizer", "vq", num_codes=16, dim=4)
            >>> quantizer.check_codes(torch.tensor([[0, 15]]))
            >>> quantizer.check_codes(torch.tensor([[0, 16]]))
            Traceback (most recent call last):
            ValueError: codes must lie in [0, 16), got values in [0, 16]
        """
        checks.check_tensor(codes, name="codes", min_ndim=1)
        checks.check_indices(codes, num_categories=self.num_codes, name="codes")

    @abc.abstractmethod
    def embed(self, codes: Tensor) -> Tensor:
        """Look up codes ``(B, *spatial)`` int64 → vectors ``(B, D, *spatial)``: the way from indices to the decoder.

        Args:
            codes: ``(B, *spatial)`` integer indices in ``[0, K)``.

        Returns:
            ``(B, D, *spatial)`` codebook vectors, as ``forward``'s ``quantized`` would hold for these codes.

        Raises:
            TypeError: if ``codes`` is not an integer tensor (implementations check with [`check_codes`][check_codes]).
            ValueError: if a code lies outside ``[0, K)``.

        Examples:
            >>> import torch, vqgen
            >>> quantizer = vqgen.build("quantizer", "vq", num_codes=16, dim=4)
            >>> quantizer.embed(torch.zeros(2, 7, 7, dtype=torch.long)).shape
            torch.Size([2, 4, 7, 7])
        """


def _facts(**facts: int | None) -> dict[str, int | None]:
    """Validate the facts a subclass hands to its interface's ``__init__`` (positive ints, or ``None``)."""
    for name, value in facts.items():
        if value is not None:
            checks.check_positive(value, name=name, integer=True)
    return {name: None if value is None else int(value) for name, value in facts.items()}


def _fact_property(name: str, doc: str) -> property:
    """A read-only property of the fact ``name`` stored by [`_facts`][_facts]; ``None`` there means the subclass
    neither passed it to ``__init__`` nor overrode the property: a ``TypeError`` saying so."""

    def read(component: Component) -> int:
        value = component._facts[name]
        if value is None:
            interface = next(base.__name__ for base in type(component).__mro__ if base.__module__ == __name__)
            raise TypeError(f"{type(component).__name__} did not pass {name} to {interface}.__init__; pass it there")
        return value

    return property(read, doc=doc)


class Encoder(Component, abc.ABC):
    """Images ``(B, C, H, W)`` float in ``[0, 1]`` → latents ``(B, D, H / downsample, W / downsample)``.

    The base stores what every encoder is (``in_channels``, ``latent_dim``, ``downsample``), handed to its
    ``__init__`` by the subclass (``None`` only for subclasses that override the properties themselves, as plugins
    written for vqgen 0.x did).

    Args:
        in_channels: C, the number of image channels accepted.
        latent_dim: D, the channel count of the latents.
        downsample: the spatial reduction factor H / h (images must be divisible by it).

    Raises:
        TypeError: if a fact is given but is not an int.
        ValueError: if a fact is given but is not positive.

    Examples:
        >>> import torch, vqgen
        >>> encoder = vqgen.build("encoder", "conv", in_channels=1, latent_dim=16)       # two stages: 28 → 7
        >>> encoder.in_channels, encoder.latent_dim, encoder.downsample
        (1, 16, 4)
        >>> encoder(torch.rand(2, 1, 28, 28)).shape
        torch.Size([2, 16, 7, 7])
    """

    def __init__(
        self, in_channels: int | None = None, latent_dim: int | None = None, downsample: int | None = None
    ) -> None:
        super().__init__()
        self._facts = _facts(in_channels=in_channels, latent_dim=latent_dim, downsample=downsample)

    in_channels = _fact_property("in_channels", "C, the number of image channels accepted.")
    latent_dim = _fact_property("latent_dim", "D, the channel count of the latents.")
    downsample = _fact_property("downsample", "The spatial reduction factor H / h (images must be divisible by it).")

    def latent_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        """The ``(h, w)`` code-grid shape for images of shape ``(C, H, W)``, validating the image size.

        Args:
            image_shape: ``(C, H, W)`` of one image.

        Returns:
            ``(H / downsample, W / downsample)``.

        Raises:
            ValueError: if ``H`` or ``W`` is not a positive multiple of ``downsample``.

        Examples:
            >>> import vqgen
            >>> encoder = vqgen.build("encoder", "conv", latent_dim=16)
            >>> encoder.latent_shape((1, 28, 28))
            (7, 7)
            >>> encoder.latent_shape((1, 30, 30))
            Traceback (most recent call last):
            ValueError: ConvEncoder downsamples by 4, so image height and width must be multiples of 4; got 30x30 ...
        """
        channels, height, width = image_shape
        checks.check_image_size(height, width, self.downsample, name=type(self).__name__)
        return height // self.downsample, width // self.downsample

    def check_input(self, x: Tensor) -> None:
        """Raise a clear error unless ``x`` is a finite float ``(B, in_channels, H, W)`` batch of a usable size.

        Args:
            x: what a caller hands to ``forward``.

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: if it is not 4-D, has other channels, holds NaN or inf, or its sides are not multiples of
                ``downsample``.

        Examples:
            >>> import torch, vqgen
            >>> encoder = vqgen.build("encoder", "conv", in_channels=1, latent_dim=16)
            >>> encoder.check_input(torch.rand(2, 1, 28, 28))
            >>> encoder.check_input(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
            Traceback (most recent call last):
            TypeError: x must be a floating-point tensor (images scaled to [0, 1]), got torch.uint8; ...
        """
        checks.check_images(x, channels=self.in_channels, name="x")
        checks.check_image_size(x.shape[-2], x.shape[-1], self.downsample, name=type(self).__name__)

    @abc.abstractmethod
    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` ``(B, C, H, W)`` in ``[0, 1]`` to ``(B, D, h, w)``.

        Args:
            x: ``(B, C, H, W)`` float images in ``[0, 1]``; ``H`` and ``W`` multiples of ``downsample``.

        Returns:
            ``(B, D, H / downsample, W / downsample)`` latents, for a [`Quantizer`][Quantizer] of dimension ``D``.

        Examples:
            >>> import torch, vqgen
            >>> vqgen.build("encoder", "conv", in_channels=3, latent_dim=8)(torch.rand(2, 3, 32, 32)).shape
            torch.Size([2, 8, 8, 8])
        """


class Decoder(Component, abc.ABC):
    """Latents ``(B, D, h, w)`` → images ``(B, C, h * upsample, w * upsample)``, roughly in ``[0, 1]``.

    The base stores ``latent_dim``, ``out_channels`` and ``upsample``, as [`Encoder`][Encoder] does its facts.

    Args:
        latent_dim: D, the channel count of the latents accepted.
        out_channels: C, the number of image channels produced.
        upsample: the spatial enlargement factor H / h.

    Raises:
        TypeError: if a fact is given but is not an int.
        ValueError: if a fact is given but is not positive.

    Examples:
        >>> import torch, vqgen
        >>> decoder = vqgen.build("decoder", "conv", out_channels=1, latent_dim=16)
        >>> decoder.latent_dim, decoder.out_channels, decoder.upsample
        (16, 1, 4)
        >>> decoder(torch.randn(2, 16, 7, 7)).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self, latent_dim: int | None = None, out_channels: int | None = None, upsample: int | None = None
    ) -> None:
        super().__init__()
        self._facts = _facts(latent_dim=latent_dim, out_channels=out_channels, upsample=upsample)

    latent_dim = _fact_property("latent_dim", "D, the channel count of the latents accepted.")
    out_channels = _fact_property("out_channels", "C, the number of image channels produced.")
    upsample = _fact_property("upsample", "The spatial enlargement factor H / h.")

    def check_input(self, z: Tensor) -> None:
        """Raise a clear error unless ``z`` is a finite float ``(B, latent_dim, h, w)`` tensor.

        Args:
            z: what a caller hands to ``forward``.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if it is not 4-D, has another width than ``latent_dim``, or holds NaN or inf.

        Examples:
            >>> import torch, vqgen
            >>> decoder = vqgen.build("decoder", "conv", latent_dim=16)
            >>> decoder.check_input(torch.randn(2, 8, 7, 7))
            Traceback (most recent call last):
            ValueError: z must have 16 channels (axis 1), got shape (2, 8, 7, 7)
        """
        checks.check_images(z, channels=self.latent_dim, name="z")

    @abc.abstractmethod
    def forward(self, z: Tensor) -> Tensor:
        """Decode ``z`` ``(B, D, h, w)`` to images ``(B, C, H, W)``.

        Args:
            z: ``(B, D, h, w)`` latents, usually ``Quantizer.embed(codes)`` or ``QuantizerOutput.quantized``.

        Returns:
            ``(B, C, h * upsample, w * upsample)`` pixel values approximating ``[0, 1]`` (not clamped).

        Examples:
            >>> import torch, vqgen
            >>> vqgen.build("decoder", "conv", out_channels=3, latent_dim=8)(torch.randn(2, 8, 8, 8)).shape
            torch.Size([2, 3, 32, 32])
        """
