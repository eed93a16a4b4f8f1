"""One code per image: an MLP encoder to a single ``D``-vector, and an MLP decoder back to the image.

The baseline of the seed experiment: a VQ-VAE whose latent grid is ``1 x 1``, so each image is represented by one
of ``K`` codebook vectors (at most ``K`` distinct reconstructions). It shows why spatial code grids matter: with the
same codebook size, the [`conv`][vqgen.autoencoders.conv] model's ``h x w`` grid of codes reconstructs far
better. The latents keep the ``(B, D, 1, 1)`` layout of the interfaces, so quantizers and priors treat it as a
``1 x 1`` grid.

Pixels: the encoder takes float images in ``[0, 1]``; the decoder outputs pixel values (not logits) approximating
``[0, 1]`` with a linear last layer, trained with MSE against the ``[0, 1]`` images.
"""

from __future__ import annotations

from collections.abc import Sequence

from einops import rearrange
from torch import Tensor, nn

from .. import checks
from ..interfaces import Decoder, Encoder
from ..registry import register

__all__ = ["FlatDecoder", "FlatEncoder"]


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers of the given sizes with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(fan_in, fan_out))
    return nn.Sequential(*layers)


def _check_config(channels: int, image_size: int, hidden_features: int, latent_dim: int, num_layers: int) -> None:
    checks.check_positive(channels, name="channels", integer=True)
    checks.check_positive(image_size, name="image_size", integer=True)
    checks.check_positive(hidden_features, name="hidden_features", integer=True)
    checks.check_positive(latent_dim, name="latent_dim", integer=True)
    checks.check_positive(num_layers, name="num_layers", integer=True)


@register("encoder", "flat")
class FlatEncoder(Encoder):
    """MLP encoder: ``(B, C, S, S)`` in ``[0, 1]`` → one latent vector per image ``(B, D, 1, 1)``.

    Args:
        in_channels: C, image channels.
        image_size: S, the side of the (square) images; inputs of another size are rejected.
        hidden_features: width of the hidden layers.
        latent_dim: D, to match the quantizer's ``dim``.
        num_layers: number of linear layers (``num_layers - 1`` hidden layers).

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is not positive.

    Examples:
        >>> import torch, vqgen
        >>> encoder = vqgen.build("encoder", "flat", image_size=28, latent_dim=16)      # one code per image
        >>> encoder(torch.rand(4, 1, 28, 28)).shape
        torch.Size([4, 16, 1, 1])
    """

    def __init__(
        self,
        in_channels: int = 1,
        image_size: int = 28,
        hidden_features: int = 256,
        latent_dim: int = 16,
        num_layers: int = 3,
    ) -> None:
        _check_config(in_channels, image_size, hidden_features, latent_dim, num_layers)
        super().__init__(in_channels, latent_dim, downsample=image_size)  # one latent position per image
        self.image_size = image_size
        self.mlp = _mlp([in_channels * image_size**2] + [hidden_features] * (num_layers - 1) + [latent_dim])

    TINY_CONFIG = {"image_size": 8, "hidden_features": 16, "latent_dim": 4, "num_layers": 2}
    """8x8 images, 16 hidden features, 4-dimensional latents, two layers."""

    def _check_size(self, height: int, width: int) -> None:
        if (height, width) != (self.image_size, self.image_size):
            raise ValueError(
                f"FlatEncoder was built for {self.image_size}x{self.image_size} images (image_size), got "
                f"{height}x{width}; build it with image_size matching the data"
            )

    def latent_shape(self, image_shape: Sequence[int]) -> tuple[int, ...]:
        """Always ``(1, 1)``; the images ``(C, H, W)`` must be ``S x S``.

        Args:
            image_shape: ``(C, H, W)`` of one image.

        Returns:
            ``(1, 1)``.

        Raises:
            ValueError: if the images are not ``S x S``.

        Examples:
            >>> from vqgen.autoencoders import FlatEncoder
            >>> FlatEncoder(image_size=28).latent_shape((1, 28, 28))
            (1, 1)
            >>> FlatEncoder(image_size=28).latent_shape((1, 32, 32))
            Traceback (most recent call last):
            ValueError: FlatEncoder was built for 28x28 images (image_size), got 32x32; build it with image_size ...
        """
        self._check_size(image_shape[-2], image_shape[-1])
        return 1, 1

    def check_input(self, x: Tensor) -> None:
        """Like [`Encoder.check_input`][vqgen.interfaces.Encoder.check_input], but the images must be exactly ``S x S``.

        Args:
            x: what a caller hands to ``forward``.

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: if it is not 4-D, has other channels, holds NaN or inf, or is not ``S x S``.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import FlatEncoder
            >>> FlatEncoder(image_size=8).check_input(torch.rand(2, 1, 8, 8))
        """
        checks.check_images(x, channels=self.in_channels, name="x")
        self._check_size(x.shape[-2], x.shape[-1])

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` ``(B, C, S, S)`` float in ``[0, 1]`` to ``(B, D, 1, 1)``.

        Args:
            x: ``(B, C, S, S)`` float images in ``[0, 1]``.

        Returns:
            ``(B, D, 1, 1)``: one latent vector per image.

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: if ``x`` has other channels, NaN or inf, or is not ``S x S``.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import FlatEncoder
            >>> FlatEncoder(image_size=8, latent_dim=4)(torch.rand(3, 1, 8, 8)).shape
            torch.Size([3, 4, 1, 1])
        """
        self.check_input(x)
        z = self.mlp(rearrange(x - 0.5, "b c h w -> b (c h w)"))  # (B, D)
        return rearrange(z, "b d -> b d 1 1")


@register("decoder", "flat")
class FlatDecoder(Decoder):
    """MLP decoder: one latent vector per image ``(B, D, 1, 1)`` → images ``(B, C, S, S)``.

    Args:
        out_channels: C, image channels produced.
        image_size: S, the side of the square images produced.
        hidden_features: width of the hidden layers.
        latent_dim: D, the dimension of the input vectors.
        num_layers: number of linear layers.

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a size is not positive.

    Examples:
        >>> import torch, vqgen
        >>> decoder = vqgen.build("decoder", "flat", image_size=28, latent_dim=16)
        >>> decoder(torch.randn(4, 16, 1, 1)).shape
        torch.Size([4, 1, 28, 28])
    """

    def __init__(
        self,
        out_channels: int = 1,
        image_size: int = 28,
        hidden_features: int = 256,
        latent_dim: int = 16,
        num_layers: int = 3,
    ) -> None:
        _check_config(out_channels, image_size, hidden_features, latent_dim, num_layers)
        super().__init__(latent_dim, out_channels, upsample=image_size)
        self.image_size = image_size
        self.mlp = _mlp([latent_dim] + [hidden_features] * (num_layers - 1) + [out_channels * image_size**2])

    TINY_CONFIG = {"image_size": 8, "hidden_features": 16, "latent_dim": 4, "num_layers": 2}
    """8x8 images, 16 hidden features, 4-dimensional latents, two layers: the mirror of the tiny encoder."""

    def check_input(self, z: Tensor) -> None:
        """Like [`Decoder.check_input`][vqgen.interfaces.Decoder.check_input], but the latent grid must be ``1 x 1``.

        Args:
            z: what a caller hands to ``forward``.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if it is not 4-D, has another width than ``latent_dim``, holds NaN or inf, or is not
                ``(B, D, 1, 1)``.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import FlatDecoder
            >>> FlatDecoder(latent_dim=16).check_input(torch.randn(2, 16, 7, 7))
            Traceback (most recent call last):
            ValueError: FlatDecoder takes one latent per image, shape (B, D, 1, 1); got (2, 16, 7, 7)
        """
        checks.check_images(z, channels=self.latent_dim, name="z")
        if tuple(z.shape[-2:]) != (1, 1):
            raise ValueError(f"FlatDecoder takes one latent per image, shape (B, D, 1, 1); got {tuple(z.shape)}")

    def forward(self, z: Tensor) -> Tensor:
        """Decode ``z`` ``(B, D, 1, 1)`` to pixel values ``(B, C, S, S)`` approximating ``[0, 1]``.

        Args:
            z: ``(B, D, 1, 1)``, one latent vector per image.

        Returns:
            ``(B, C, S, S)`` pixel values, not clamped.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if ``z`` is not ``(B, D, 1, 1)``, or holds NaN or inf.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import FlatDecoder
            >>> FlatDecoder(image_size=8, latent_dim=4)(torch.randn(3, 4, 1, 1)).shape
            torch.Size([3, 1, 8, 8])
        """
        self.check_input(z)
        x = self.mlp(rearrange(z, "b d 1 1 -> b d"))  # (B, C * S * S)
        return rearrange(x, "b (c h w) -> b c h w", c=self.out_channels, h=self.image_size) + 0.5
