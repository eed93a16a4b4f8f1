"""Autoregressive priors over integer grids (pixels or VQ-VAE codes), and their samplers."""

from .code_prior import build_code_prior
from .embedding import IndexInput
from .gated_pixelcnn import GatedPixelCNN
from .pixelcnn import PixelCNN
from .sampling import NaiveStepper, Stepper, draw, filter_logits, sample

__all__ = [
    "GatedPixelCNN",
    "build_code_prior",
    "IndexInput",
    "NaiveStepper",
    "PixelCNN",
    "Stepper",
    "draw",
    "filter_logits",
    "sample",
]
