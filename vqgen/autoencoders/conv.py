"""Convolutional encoder and decoder of the VQ-VAE (van den Oord et al., arXiv:1711.00937, section 4.1).

The paper's image model: "The encoder consists of 2 strided convolutional layers with stride 2 and window size 4x4,
followed by two residual 3x3 blocks (implemented as ReLU, 3x3 conv, ReLU, 1x1 conv), all having 256 hidden units. The
decoder similarly has two residual 3x3 blocks, followed by two transposed convolutions with stride 2 and window size
4x4." The layout follows DeepMind's Sonnet example (``sonnet/examples/vqvae_example.ipynb``): a 3x3 convolution
after the strided stack, and a 1x1 convolution projecting to the latent dimension ``D`` just before quantization.

The number of stride-2 stages ``num_downsamples`` is configurable (downsampling by ``2 ** num_downsamples``). The
defaults are smaller than the paper's (64 hidden channels, 32 residual channels, ``D = 16``) so that a model trains
on a CPU in minutes; pass ``hidden_channels=256, residual_channels=256, latent_dim=64`` for the paper's widths.

Pixels: the encoder takes float images in ``[0, 1]`` and centres them (``x - 0.5``) itself; the decoder outputs
pixel *values* (not logits) that approximate ``[0, 1]`` without a squashing non-linearity, trained with MSE against
the ``[0, 1]`` images. Clamp them (or use [`vqgen.images.to_uint8`][vqgen.images.to_uint8]) before display.
"""

from __future__ import annotations

from torch import Tensor, nn

from .. import checks
from ..interfaces import Decoder, Encoder
from ..registry import register

__all__ = ["ConvDecoder", "ConvEncoder", "ResidualStack"]


class ResidualStack(nn.Module):
    """``num_blocks`` residual blocks ``x + conv1x1(relu(conv3x3(relu(x))))``, then a ReLU (arXiv:1711.00937).

    Shapes are preserved: ``(B, channels, H, W) -> (B, channels, H, W)``.
    """

    def __init__(self, channels: int, residual_channels: int, num_blocks: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(channels, residual_channels, kernel_size=3, padding=1),
                nn.ReLU(),
                nn.Conv2d(residual_channels, channels, kernel_size=1),
            )
            for _ in range(num_blocks)
        )

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = x + block(x)
        return nn.functional.relu(x)


def _stage_widths(hidden_channels: int, num_stages: int) -> list[int]:
    """Channel widths after each stride-2 stage: doubling up to ``hidden_channels`` (``[32, 64]`` for 64 and 2)."""
    return [max(1, hidden_channels // 2 ** (num_stages - 1 - i)) for i in range(num_stages)]


def _check_config(
    channels: int, hidden_channels: int, residual_channels: int, latent_dim: int, num_downsamples: int, blocks: int
) -> None:
    checks.check_positive(channels, name="channels", integer=True)
    checks.check_positive(hidden_channels, name="hidden_channels", integer=True)
    checks.check_positive(residual_channels, name="residual_channels", integer=True)
    checks.check_positive(latent_dim, name="latent_dim", integer=True)
    for value, name in ((num_downsamples, "num_downsamples"), (blocks, "num_residual_blocks")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be an int >= 0, got {value!r}")


@register("encoder", "conv")
class ConvEncoder(Encoder):
    """Strided-convolution encoder: ``(B, C, H, W)`` in ``[0, 1]`` → ``(B, D, H / 2**n, W / 2**n)``.

    Args:
        in_channels: C, image channels (1 for MNIST, 3 for CIFAR-10).
        hidden_channels: width after the last strided stage and in the residual stack (paper: 256).
        residual_channels: hidden width inside each residual block (paper: 256; Sonnet: 32).
        latent_dim: D, the channels of the output, to match the quantizer's ``dim`` (paper: 64 on CIFAR-10).
        num_downsamples: n, the number of 4x4 stride-2 convolutions; images must be divisible by ``2**n``
            (paper: 2, e.g. 28x28 → 7x7 or 32x32 → 8x8).
        num_residual_blocks: residual 3x3 blocks after the strided stack (paper: 2).

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a width is not positive, or ``num_downsamples`` or ``num_residual_blocks`` is negative.

    Examples:
        >>> import torch, vqgen
        >>> encoder = vqgen.build("encoder", "conv", in_channels=3, latent_dim=64)      # CIFAR-10: 32x32 → 8x8
        >>> encoder(torch.rand(2, 3, 32, 32)).shape
        torch.Size([2, 64, 8, 8])
        >>> vqgen.build("encoder", "conv", num_downsamples=3).latent_shape((1, 28, 28))
        Traceback (most recent call last):
        ValueError: ConvEncoder downsamples by 8, so image height and width must be multiples of 8; got 28x28 ...
    """

    def __init__(
        self,
        in_channels: int = 1,
        hidden_channels: int = 64,
        residual_channels: int = 32,
        latent_dim: int = 16,
        num_downsamples: int = 2,
        num_residual_blocks: int = 2,
    ) -> None:
        _check_config(in_channels, hidden_channels, residual_channels, latent_dim, num_downsamples, num_residual_blocks)
        super().__init__(in_channels, latent_dim, downsample=2**num_downsamples)
        layers: list[nn.Module] = []
        width = in_channels
        for i, out in enumerate(_stage_widths(hidden_channels, num_downsamples)):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Conv2d(width, out, kernel_size=4, stride=2, padding=1))  # (B, out, H/2, W/2)
            width = out
        if num_downsamples:
            layers.append(nn.ReLU())
        layers.append(nn.Conv2d(width, hidden_channels, kernel_size=3, padding=1))
        self.body = nn.Sequential(*layers)
        self.residual = ResidualStack(hidden_channels, residual_channels, num_residual_blocks)
        self.to_latent = nn.Conv2d(hidden_channels, latent_dim, kernel_size=1)  # pre-quantization projection

    TINY_CONFIG = {"hidden_channels": 8, "residual_channels": 4, "latent_dim": 4, "num_downsamples": 1}
    """Widths of 8 and 4, 4-dimensional latents, one downsampling stage."""

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` ``(B, C, H, W)`` float in ``[0, 1]`` to latents ``(B, D, H / 2**n, W / 2**n)``.

        Args:
            x: ``(B, C, H, W)`` float images in ``[0, 1]``; ``H`` and ``W`` multiples of ``2**n``.

        Returns:
            ``(B, D, H / 2**n, W / 2**n)`` latents.

        Raises:
            TypeError: if ``x`` is not a floating-point tensor.
            ValueError: if ``x`` has other channels, NaN or inf, or sides that ``2**n`` does not divide.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import ConvEncoder
            >>> ConvEncoder(latent_dim=16)(torch.rand(4, 1, 28, 28)).shape
            torch.Size([4, 16, 7, 7])
        """
        self.check_input(x)
        h = self.body(x - 0.5)  # (B, hidden, h, w)
        return self.to_latent(self.residual(h))  # (B, D, h, w)


@register("decoder", "conv")
class ConvDecoder(Decoder):
    """Mirror of [`ConvEncoder`][ConvEncoder]: ``(B, D, h, w)`` → ``(B, C, h * 2**n, w * 2**n)`` pixel values.

    A 3x3 convolution from ``D`` to ``hidden_channels``, the residual stack, then ``n`` 4x4 stride-2 transposed
    convolutions. The output is linear (no sigmoid): pixel values approximating ``[0, 1]``, not logits.

    Args:
        out_channels: C, image channels produced.
        hidden_channels: width of the residual stack and the first transposed convolution (paper: 256).
        residual_channels: hidden width inside each residual block.
        latent_dim: D, the channels of the input codes' vectors.
        num_downsamples: n, the number of stride-2 transposed convolutions (upsampling by ``2**n``).
        num_residual_blocks: residual 3x3 blocks before upsampling (paper: 2).

    Raises:
        TypeError: if a size is not an int.
        ValueError: if a width is not positive, or ``num_downsamples`` or ``num_residual_blocks`` is negative.

    Examples:
        >>> import torch, vqgen
        >>> decoder = vqgen.build("decoder", "conv", out_channels=3, latent_dim=64)     # 8x8 → 32x32
        >>> decoder(torch.randn(2, 64, 8, 8)).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        out_channels: int = 1,
        hidden_channels: int = 64,
        residual_channels: int = 32,
        latent_dim: int = 16,
        num_downsamples: int = 2,
        num_residual_blocks: int = 2,
    ) -> None:
        _check_config(
            out_channels, hidden_channels, residual_channels, latent_dim, num_downsamples, num_residual_blocks
        )
        super().__init__(latent_dim, out_channels, upsample=2**num_downsamples)
        self.from_latent = nn.Conv2d(latent_dim, hidden_channels, kernel_size=3, padding=1)
        self.residual = ResidualStack(hidden_channels, residual_channels, num_residual_blocks)
        widths = _stage_widths(hidden_channels, num_downsamples)[::-1]  # e.g. [64, 32]
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            out = widths[i + 1] if i + 1 < len(widths) else out_channels
            layers.append(nn.ConvTranspose2d(width, out, kernel_size=4, stride=2, padding=1))  # (B, out, 2h, 2w)
            if i + 1 < len(widths):
                layers.append(nn.ReLU())
        if not num_downsamples:
            layers.append(nn.Conv2d(hidden_channels, out_channels, kernel_size=3, padding=1))
        self.body = nn.Sequential(*layers)

    TINY_CONFIG = {"hidden_channels": 8, "residual_channels": 4, "latent_dim": 4, "num_downsamples": 1}
    """Widths of 8 and 4, 4-dimensional latents, one upsampling stage: the mirror of the tiny encoder."""

    def forward(self, z: Tensor) -> Tensor:
        """Decode ``z`` ``(B, D, h, w)`` to pixel values ``(B, C, h * 2**n, w * 2**n)`` approximating ``[0, 1]``.

        Args:
            z: ``(B, D, h, w)`` latents (codebook vectors).

        Returns:
            ``(B, C, h * 2**n, w * 2**n)`` pixel values, not clamped.

        Raises:
            TypeError: if ``z`` is not a floating-point tensor.
            ValueError: if ``z`` has another width than ``latent_dim``, or holds NaN or inf.

        Examples:
            >>> import torch
            >>> from vqgen.autoencoders import ConvDecoder
            >>> ConvDecoder(latent_dim=16)(torch.randn(4, 16, 7, 7)).shape
            torch.Size([4, 1, 28, 28])
        """
        self.check_input(z)
        h = self.residual(self.from_latent(z))  # (B, hidden, h, w)
        return self.body(h) + 0.5  # (B, C, H, W)
