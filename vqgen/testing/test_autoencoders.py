"""The autoencoder contract: every registered encoder with its same-named decoder (plugins included) must pass it:
shapes, dtypes, clear errors, save/load.

Run it with ``pytest --pyargs vqgen.testing``, or on one pair with
[`check_autoencoder`][vqgen.testing.check_autoencoder].
"""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.testing.seeding import contract_seed  # noqa: F401  (an autouse fixture: seed 0 for every case)

PAIRS = [name for name in vqgen.available("encoder") if name in vqgen.available("decoder")]


def _pair(name: str, channels: int = 1):
    enc_cls, dec_cls = vqgen.registry("encoder").get(name), vqgen.registry("decoder").get(name)
    encoder = vqgen.build("encoder", name, **{**enc_cls.tiny_config(), "in_channels": channels})
    decoder = vqgen.build("decoder", name, **{**dec_cls.tiny_config(), "out_channels": channels})
    return encoder, decoder


def _valid_side(encoder) -> int:
    """The smallest image side the encoder accepts among 2x and 1x its downsampling factor."""
    for multiple in (2, 1):
        side = encoder.downsample * multiple
        try:
            encoder.latent_shape((encoder.in_channels, side, side))
        except ValueError:
            continue
        return side
    raise AssertionError(f"{type(encoder).__name__} accepts neither 2x nor 1x its downsample factor")


def test_every_encoder_has_a_decoder():
    assert set(vqgen.available("encoder")) <= set(vqgen.available("decoder"))


@pytest.mark.parametrize("name", PAIRS)
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_dtypes_and_gradients(name, channels):
    encoder, decoder = _pair(name, channels)
    assert encoder.in_channels == decoder.out_channels == channels
    assert encoder.latent_dim == decoder.latent_dim
    assert encoder.downsample == decoder.upsample
    side = _valid_side(encoder)
    x = torch.rand(3, channels, side, side)
    z = encoder(x)
    h, w = encoder.latent_shape((channels, side, side))
    assert z.shape == (3, encoder.latent_dim, h, w) and z.dtype == torch.float32
    assert h * encoder.downsample == side
    y = decoder(z)
    assert y.shape == x.shape and y.dtype == torch.float32
    (y - x).square().mean().backward()
    for module in (encoder, decoder):
        for pname, p in module.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
    # Examples are independent: changing image 0 leaves the latents of image 1 alone.
    x2 = x.clone()
    x2[0] = torch.rand_like(x2[0])
    z2 = encoder(x2)
    assert torch.allclose(z2[1:], z[1:], atol=1e-6) and not torch.allclose(z2[0], z[0])


@pytest.mark.parametrize("name", PAIRS)
def test_wrong_channel_count(name):
    encoder, decoder = _pair(name, 1)
    side = _valid_side(encoder)
    with pytest.raises(ValueError, match="1 channels"):
        encoder(torch.rand(2, 3, side, side))
    z = encoder(torch.rand(2, 1, side, side))
    with pytest.raises(ValueError, match=f"{decoder.latent_dim} channels"):
        decoder(torch.rand(2, decoder.latent_dim + 1, *z.shape[-2:]))


@pytest.mark.parametrize("name", PAIRS)
def test_non_finite_inputs(name):
    encoder, decoder = _pair(name)
    side = _valid_side(encoder)
    x = torch.rand(2, 1, side, side)
    x[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        encoder(x)
    z = encoder(torch.rand(2, 1, side, side))
    z[0, 0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="non-finite"):
        decoder(z)


@pytest.mark.parametrize("name", PAIRS)
def test_uint8_and_wrong_rank_inputs(name):
    encoder, _ = _pair(name)
    side = _valid_side(encoder)
    with pytest.raises(TypeError, match=r"float\(\) / 255"):
        encoder(torch.zeros(2, 1, side, side, dtype=torch.uint8))
    with pytest.raises(ValueError, match="4 dimensions"):
        encoder(torch.rand(1, side, side))
    with pytest.raises(TypeError, match="torch.Tensor"):
        encoder([[0.0]])


@pytest.mark.parametrize("name", PAIRS)
def test_size_not_divisible(name):
    encoder, _ = _pair(name)
    side = _valid_side(encoder) + 1
    with pytest.raises(ValueError, match=f"{side - 1}|{encoder.downsample}") as info:
        encoder(torch.rand(1, 1, side, side))
    assert f"{side}x{side}" in str(info.value)
    with pytest.raises(ValueError):
        encoder.latent_shape((1, side, side))


@pytest.mark.parametrize("name", PAIRS)
def test_save_load_round_trip(name, tmp_path):
    encoder, decoder = _pair(name, 3)
    side = _valid_side(encoder)
    x = torch.rand(2, 3, side, side)
    encoder.save_pretrained(tmp_path / "enc")
    decoder.save_pretrained(tmp_path / "dec")
    encoder2 = vqgen.Encoder.from_pretrained(tmp_path / "enc")
    decoder2 = vqgen.Decoder.from_pretrained(tmp_path / "dec")
    assert encoder2.to_spec() == encoder.to_spec() and decoder2.to_spec() == decoder.to_spec()
    with torch.no_grad():
        torch.testing.assert_close(decoder2(encoder2(x)), decoder.eval()(encoder.eval()(x)), rtol=0, atol=0)
    rebuilt = vqgen.build_from_spec(encoder.to_spec())
    assert dict(rebuilt.config) == dict(encoder.config)
