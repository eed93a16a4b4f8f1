"""vqgen: two-stage generative image models.

A VQ-VAE (an [`Encoder`][Encoder], a [`Quantizer`][Quantizer] and a [`Decoder`][Decoder]) compresses images into grids
of discrete codes; an [`AutoregressivePrior`][AutoregressivePrior] learns to generate those grids. Every part is
registered by name and can be swapped with one word::

    import vqgen
    vqgen.available("prior")                  # ['gated_pixelcnn', 'pixelcnn', 'rnn', ...]
    prior = vqgen.build("prior", "gated_pixelcnn", num_categories=512)
"""

from importlib import metadata as _metadata

from .config import Configurable
from .interfaces import AutoregressivePrior, Component, Decoder, Encoder, Quantizer, QuantizerOutput
from .persistence import from_pretrained, load_config, save_pretrained
from .registry import available, build, build_from_spec, register, registry
from .training.runtime import seed_everything

try:
    __version__ = _metadata.version("vqgen")
except _metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

# Registers the built-in implementations, and exposes the data and metrics subpackages.
from . import _builtin, data, metrics, presets  # noqa: E402,F401
from .two_stage import NotFittedError, TwoStageModel  # noqa: E402

__all__ = [
    "AutoregressivePrior",
    "Component",
    "Configurable",
    "Decoder",
    "Encoder",
    "NotFittedError",
    "Quantizer",
    "QuantizerOutput",
    "TwoStageModel",
    "__version__",
    "available",
    "data",
    "metrics",
    "presets",
    "build",
    "build_from_spec",
    "from_pretrained",
    "load_config",
    "register",
    "registry",
    "save_pretrained",
    "seed_everything",
]
