"""Imports the modules of the built-in implementations so that their ``@register`` decorators run.

Add one import line here for each module that registers components.
"""
from .autoencoders import conv, flat, vqvae  # noqa: F401
from .quantizers import ema, vq  # noqa: F401
from .priors import rnn  # noqa: F401
from .priors import gated_pixelcnn, pixelcnn  # noqa: F401
from . import classifier  # noqa: F401
from .priors import baselines  # noqa: F401
from . import two_stage  # noqa: F401
