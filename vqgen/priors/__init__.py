"""Autoregressive priors over integer grids (pixels or VQ-VAE codes).

The sampling loop itself lives in [`vqgen.sampling`][vqgen.sampling], beside the interface it serves; its names are
re-exported here for code written against the old ``vqgen.priors`` exports.
"""

from ..sampling import NaiveStepper, SamplingOptions, Stepper, draw, filter_logits, sample
from .code_prior import build_code_prior
from .embedding import IndexInput
from .gated_pixelcnn import GatedPixelCNN
from .pixelcnn import PixelCNN

__all__ = [
    "GatedPixelCNN",
    "IndexInput",
    "NaiveStepper",
    "PixelCNN",
    "SamplingOptions",
    "Stepper",
    "build_code_prior",
    "draw",
    "filter_logits",
    "sample",
]
