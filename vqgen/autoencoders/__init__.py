"""Autoencoders for stage 1: encoder/decoder pairs registered under the same name, and the [`VQVAE`][VQVAE].

| name   | latents for ``(B, C, H, W)`` images | what it is                                                          |
| ------ | ----------------------------------- | ------------------------------------------------------------------- |
| `conv` | ``(B, D, H / 2**n, W / 2**n)``      | strided 4x4 convolutions + residual stacks (arXiv:1711.00937)        |
| `flat` | ``(B, D, 1, 1)``                    | MLP, one code per image: the baseline that shows why grids matter   |

Build a pair by name with ``vqgen.build("encoder", "conv", ...)`` and ``vqgen.build("decoder", "conv", ...)``.
Encoders take float images in ``[0, 1]``; decoders output pixel values approximating ``[0, 1]`` (not logits).
"""

from .conv import ConvDecoder, ConvEncoder, ResidualStack
from .flat import FlatDecoder, FlatEncoder
from .vqvae import VQVAE, VQVAEOutput

__all__ = ["VQVAE", "ConvDecoder", "ConvEncoder", "FlatDecoder", "FlatEncoder", "ResidualStack", "VQVAEOutput"]
