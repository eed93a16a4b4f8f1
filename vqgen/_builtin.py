"""Imports the modules of the built-in implementations so that their ``@register`` decorators run.

Add one import line here for each module that registers components.
"""

from . import classifier, two_stage  # noqa: F401
from .autoencoders import conv, flat, vqvae  # noqa: F401
from .priors import baselines, gated_pixelcnn, pixelcnn, pixelcnn_pp, rnn, transformer  # noqa: F401
from .quantizers import ema, fsq, vq  # noqa: F401
