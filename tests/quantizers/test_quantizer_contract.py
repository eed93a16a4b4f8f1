"""The quantizer contract (`vqgen.testing.test_quantizers`) over every registered quantizer, and the built-ins."""

import vqgen
from vqgen.testing.test_quantizers import *  # noqa: F403


def test_builtins_are_registered():
    assert {"vq", "ema"} <= set(vqgen.available("quantizer"))
