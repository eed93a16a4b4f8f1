"""Deprecated location: the sampling loop moved to [`vqgen.sampling`][vqgen.sampling], beside
[`vqgen.interfaces`][vqgen.interfaces]."""

import warnings

from ..sampling import *  # noqa: F403
from ..sampling import __all__  # noqa: F401

warnings.warn("vqgen.priors.sampling moved to vqgen.sampling; import from there", DeprecationWarning, stacklevel=2)
