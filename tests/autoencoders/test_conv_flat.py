"""The conv and flat autoencoders specifically: downsampling factors, widths, configuration errors."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.autoencoders import ConvDecoder, ConvEncoder, FlatDecoder, FlatEncoder, ResidualStack


@pytest.mark.parametrize(("stages", "side", "latent"), [(0, 5, 5), (1, 8, 4), (2, 28, 7), (3, 32, 4)])
def test_conv_downsamples_by_powers_of_two(stages, side, latent):
    kw = {"hidden_channels": 8, "residual_channels": 4, "latent_dim": 3, "num_downsamples": stages}
    encoder, decoder = ConvEncoder(**kw), ConvDecoder(**kw)
    assert encoder.downsample == decoder.upsample == 2**stages
    z = encoder(torch.rand(2, 1, side, side))
    assert z.shape == (2, 3, latent, latent)
    assert decoder(z).shape == (2, 1, side, side)


def test_conv_defaults_are_the_paper_layout_at_small_width():
    encoder = vqgen.build("encoder", "conv")
    strided = [m for m in encoder.modules() if isinstance(m, torch.nn.Conv2d) and m.stride == (2, 2)]
    assert [m.kernel_size for m in strided] == [(4, 4), (4, 4)]
    assert [len(encoder.residual.blocks), encoder.downsample, encoder.latent_dim] == [2, 4, 16]
    decoder = vqgen.build("decoder", "conv")
    transposed = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(m.kernel_size, m.stride) for m in transposed] == [((4, 4), (2, 2))] * 2


def test_residual_stack_blocks_are_relu_3x3_relu_1x1():
    stack = ResidualStack(6, 3, num_blocks=2)
    kinds = [type(m).__name__ for m in stack.blocks[0]]
    assert kinds == ["ReLU", "Conv2d", "ReLU", "Conv2d"]
    assert stack.blocks[0][1].kernel_size == (3, 3) and stack.blocks[0][3].kernel_size == (1, 1)
    x = torch.randn(1, 6, 4, 4)
    assert stack(x).shape == x.shape and (stack(x) >= 0).all()


def test_conv_28_by_4_gives_a_7x7_grid_and_30_fails():
    encoder = ConvEncoder(hidden_channels=8, residual_channels=4, latent_dim=4)
    assert encoder.latent_shape((1, 28, 28)) == (7, 7)
    with pytest.raises(ValueError, match=r"multiples of 4; got 30x28"):
        encoder(torch.rand(1, 1, 30, 28))


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_downsamples": -1}, ValueError, "num_downsamples"),
        ({"num_downsamples": 1.5}, ValueError, "num_downsamples"),
        ({"latent_dim": 0}, ValueError, "latent_dim"),
        ({"hidden_channels": "64"}, TypeError, "hidden_channels"),
        ({"num_residual_blocks": -2}, ValueError, "num_residual_blocks"),
    ],
)
def test_conv_bad_config(kwargs, error, match):
    with pytest.raises(error, match=match):
        ConvEncoder(**kwargs)
    with pytest.raises(error, match=match):
        ConvDecoder(**kwargs)


def test_flat_is_one_code_per_image():
    encoder = FlatEncoder(in_channels=3, image_size=8, hidden_features=16, latent_dim=5)
    decoder = FlatDecoder(out_channels=3, image_size=8, hidden_features=16, latent_dim=5)
    z = encoder(torch.rand(4, 3, 8, 8))
    assert z.shape == (4, 5, 1, 1) and encoder.latent_shape((3, 8, 8)) == (1, 1)
    assert decoder(z).shape == (4, 3, 8, 8)
    assert encoder.downsample == decoder.upsample == 8


def test_flat_rejects_other_sizes_and_grids():
    encoder, decoder = FlatEncoder(image_size=8, latent_dim=4), FlatDecoder(image_size=8, latent_dim=4)
    with pytest.raises(ValueError, match=r"built for 8x8 images \(image_size\), got 16x16"):
        encoder(torch.rand(1, 1, 16, 16))
    with pytest.raises(ValueError, match=r"\(B, D, 1, 1\)"):
        decoder(torch.rand(1, 4, 2, 2))
    with pytest.raises(ValueError, match="image_size"):
        FlatEncoder(image_size=0)


def test_decoder_output_is_centred_pixels_not_logits():
    """With zero weights the decoders output 0.5 everywhere: the middle of the [0, 1] pixel range."""
    for decoder in (ConvDecoder(**ConvDecoder.tiny_config()), FlatDecoder(**FlatDecoder.tiny_config())):
        for p in decoder.parameters():
            torch.nn.init.zeros_(p)
        out = decoder(
            torch.randn(
                2, 4, 1 if isinstance(decoder, FlatDecoder) else 4, 1 if isinstance(decoder, FlatDecoder) else 4
            )
        )
        assert torch.allclose(out, torch.full_like(out, 0.5))
