"""Quantizers: map encoder outputs ``(B, D, *spatial)`` to the nearest of K codebook vectors (VQ-VAE, arXiv:1711.00937).

Three are registered: ``"vq"`` ([`VectorQuantizer`][VectorQuantizer], codebook learned by its loss), ``"ema"``
([`EMAVectorQuantizer`][EMAVectorQuantizer], codebook learned by exponential moving averages) and ``"fsq"``
([`FiniteScalarQuantizer`][FiniteScalarQuantizer], per-dimension rounding onto an implicit grid, arXiv:2309.15505).
Build them by name::

    quantizer = vqgen.build("quantizer", "ema", num_codes=512, dim=64)
    out = quantizer(z)          # z (B, 64, h, w) -> out.quantized (B, 64, h, w), out.codes (B, h, w)

The shared pure helpers (nearest-code search, fused losses, statistics, k-means) live in
[`vqgen.quantizers.codebook`][vqgen.quantizers.codebook].
"""

from .base import CodebookQuantizer
from .ema import EMAVectorQuantizer
from .fsq import FiniteScalarQuantizer
from .vq import VectorQuantizer

__all__ = ["CodebookQuantizer", "EMAVectorQuantizer", "FiniteScalarQuantizer", "VectorQuantizer"]
