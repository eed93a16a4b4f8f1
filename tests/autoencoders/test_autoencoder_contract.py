"""The autoencoder contract (`vqgen.testing.test_autoencoders`) over every registered pair, and the bases."""

from __future__ import annotations

import pytest

import vqgen
from vqgen.testing.test_autoencoders import *  # noqa: F403


def test_the_builtin_pairs_are_registered():
    assert {"conv", "flat"} <= set(vqgen.available("encoder")) & set(vqgen.available("decoder"))


def test_the_bases_store_the_facts_and_old_style_subclasses_still_work():
    """Encoder/Decoder store ``in_channels``/``latent_dim``/``downsample`` (``upsample``) handed to their
    ``__init__``; a subclass written for 0.x that overrides the properties instead still works, and one that does
    neither gets an error naming the fact."""

    class New(vqgen.Encoder):
        def __init__(self) -> None:
            super().__init__(3, 8, downsample=4)

        def forward(self, x):
            return x

    class Old(vqgen.Decoder):
        latent_dim, out_channels, upsample = 5, 1, 2  # what 0.x plugins declared as properties

        def forward(self, z):
            return z

    class Forgetful(vqgen.Encoder):
        def forward(self, x):
            return x

    new = New()
    assert (new.in_channels, new.latent_dim, new.downsample) == (3, 8, 4)
    assert new.latent_shape((3, 16, 12)) == (4, 3)
    old = Old()
    assert (old.latent_dim, old.out_channels, old.upsample) == (5, 1, 2)
    with pytest.raises(TypeError, match=r"Forgetful did not pass in_channels to Encoder.__init__"):
        _ = Forgetful().in_channels
    with pytest.raises(ValueError, match="downsample"):

        class Zero(vqgen.Encoder):
            def __init__(self) -> None:
                super().__init__(1, 4, downsample=0)

            def forward(self, x):
                return x

        Zero()
