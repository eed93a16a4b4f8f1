"""Autoregressive priors over integer grids (pixels or VQ-VAE codes), and their samplers."""

from .sampling import NaiveStepper, Stepper, draw, filter_logits, sample

__all__ = ["NaiveStepper", "Stepper", "draw", "filter_logits", "sample"]
