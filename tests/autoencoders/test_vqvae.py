"""VQVAE: composition checks with clear errors, the output dataclass, encode/decode, save/load."""

from __future__ import annotations

import dataclasses
import inspect

import pytest
import torch

import vqgen
from vqgen.autoencoders import VQVAE, VQVAEOutput

TINY = {"hidden_channels": 8, "residual_channels": 4, "num_downsamples": 1}


def _quantizer(name: str, *, dim: int, num_codes: int) -> vqgen.Quantizer:
    """``num_codes`` where the quantizer takes it; otherwise (FSQ: K is implied by its levels) its tiny config."""
    cls = vqgen.registry("quantizer").get(name)
    if "num_codes" in inspect.signature(cls.__init__).parameters:
        return vqgen.build("quantizer", name, num_codes=num_codes, dim=dim)
    return vqgen.build("quantizer", name, **{**cls.tiny_config(), "dim": dim})


def _model(quantizer: str = "vq", *, dim: int = 4, channels: int = 1, num_codes: int = 16) -> VQVAE:
    return vqgen.build(
        "model",
        "vqvae",
        encoder=vqgen.build("encoder", "conv", in_channels=channels, latent_dim=dim, **TINY),
        quantizer=_quantizer(quantizer, dim=dim, num_codes=num_codes),
        decoder=vqgen.build("decoder", "conv", out_channels=channels, latent_dim=dim, **TINY),
    )


@pytest.mark.parametrize("quantizer", vqgen.available("quantizer"))
def test_forward_output(quantizer):
    model = _model(quantizer, channels=3)
    x = torch.rand(2, 3, 8, 8)
    out = model(x)
    assert isinstance(out, VQVAEOutput)
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.loss = 0
    assert out.reconstruction.shape == x.shape and out.reconstruction.dtype == torch.float32
    assert out.codes.shape == (2, 4, 4) and out.codes.dtype == torch.int64
    assert int(out.codes.max()) < model.num_codes
    torch.testing.assert_close(out.reconstruction_loss, (out.reconstruction - x).square().mean())
    z = model.encoder(x)
    beta = getattr(model.quantizer, "beta", 0.0)  # quantizers without a commitment loss (FSQ) have no beta
    expected_quantizer_loss = out.codebook_loss + beta * out.commitment_loss
    torch.testing.assert_close(out.loss, out.reconstruction_loss + expected_quantizer_loss)
    assert z.shape == (2, 4, 4, 4)
    assert 1 <= float(out.perplexity) <= model.num_codes and 0 < float(out.usage) <= 1
    out.loss.backward()
    assert model.encoder.to_latent.weight.grad is not None and model.decoder.from_latent.weight.grad is not None
    assert (model.num_codes, model.latent_dim, model.in_channels, model.downsample) == (
        model.quantizer.num_codes,
        4,
        3,
        2,
    )
    assert model.code_shape((3, 8, 8)) == (4, 4)


def test_encode_decode_is_the_decoder_of_the_quantized_latents():
    model = _model().eval()
    x = torch.rand(3, 1, 8, 8)
    codes = model.encode(x)
    assert codes.shape == (3, 4, 4) and codes.dtype == torch.int64
    with torch.no_grad():
        quantized = model.quantizer(model.encoder(x)).quantized
        expected = model.decoder(quantized)
        torch.testing.assert_close(model.decode(codes), expected)
        torch.testing.assert_close(model.reconstruct(x), expected)
        torch.testing.assert_close(model(x).reconstruction, expected)


def test_uint8_input_is_scaled():
    model = _model().eval()
    pixels = torch.randint(0, 256, (2, 1, 8, 8), dtype=torch.uint8)
    torch.testing.assert_close(model.encode(pixels), model.encode(pixels.float() / 255))
    torch.testing.assert_close(model(pixels).reconstruction_loss, model(pixels.float() / 255).reconstruction_loss)


def test_decode_rejects_bad_codes():
    model = _model()
    with pytest.raises(ValueError, match=r"\[0, 16\)"):
        model.decode(torch.full((1, 4, 4), 16))
    with pytest.raises(TypeError, match="int64"):
        model.decode(torch.zeros(1, 4, 4))


def test_latent_dim_mismatch_names_both_numbers():
    with pytest.raises(ValueError, match=r"encoder.latent_dim=8, quantizer.dim=16, decoder.latent_dim=8"):
        VQVAE(
            encoder=vqgen.build("encoder", "conv", latent_dim=8, **TINY),
            quantizer=vqgen.build("quantizer", "vq", num_codes=16, dim=16),
            decoder=vqgen.build("decoder", "conv", latent_dim=8, **TINY),
        )
    with pytest.raises(ValueError, match=r"decoder.latent_dim=5"):
        VQVAE(
            encoder=vqgen.build("encoder", "conv", latent_dim=4, **TINY),
            quantizer=vqgen.build("quantizer", "vq", num_codes=16, dim=4),
            decoder=vqgen.build("decoder", "conv", latent_dim=5, **TINY),
        )


def test_channel_and_scale_mismatches():
    quantizer = vqgen.build("quantizer", "vq", num_codes=16, dim=4)
    with pytest.raises(ValueError, match=r"takes 3 image channels .* produces 1"):
        VQVAE(
            encoder=vqgen.build("encoder", "conv", in_channels=3, latent_dim=4, **TINY),
            quantizer=quantizer,
            decoder=vqgen.build("decoder", "conv", out_channels=1, latent_dim=4, **TINY),
        )
    with pytest.raises(ValueError, match=r"downsamples by 2 but the decoder upsamples by 4"):
        VQVAE(
            encoder=vqgen.build("encoder", "conv", latent_dim=4, **TINY),
            quantizer=quantizer,
            decoder=vqgen.build("decoder", "conv", latent_dim=4, **{**TINY, "num_downsamples": 2}),
        )


def test_wrong_component_types():
    encoder = vqgen.build("encoder", "conv", latent_dim=4, **TINY)
    decoder = vqgen.build("decoder", "conv", latent_dim=4, **TINY)
    with pytest.raises(TypeError, match="quantizer must be a Quantizer"):
        VQVAE(encoder=encoder, quantizer=decoder, decoder=decoder)
    with pytest.raises(TypeError, match="encoder must be an? Encoder"):
        VQVAE(quantizer=vqgen.build("quantizer", "vq", num_codes=4, dim=4), decoder=decoder)


def test_wrong_images_for_the_model():
    model = _model()
    with pytest.raises(ValueError, match="1 channels"):
        model(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="multiples of 2"):
        model(torch.rand(1, 1, 7, 8))
    with pytest.raises(ValueError, match="non-finite"):
        model(torch.full((1, 1, 8, 8), float("nan")))


@pytest.mark.parametrize("quantizer", vqgen.available("quantizer"))
def test_save_load_round_trip_and_specs(quantizer, tmp_path):
    model = _model(quantizer)
    model(torch.rand(4, 1, 8, 8))  # a training step may change quantizer buffers (EMA, k-means state)
    model.eval()
    model.save_pretrained(tmp_path)
    loaded = vqgen.from_pretrained(tmp_path)
    assert isinstance(loaded, VQVAE) and loaded.to_spec() == model.to_spec()
    assert model.config["quantizer"]["name"] == quantizer
    x = torch.rand(2, 1, 8, 8)
    torch.testing.assert_close(loaded.encode(x), model.encode(x))
    torch.testing.assert_close(loaded.reconstruct(x), model.reconstruct(x))
    from_specs = VQVAE(**{key: value for key, value in model.config.items()})
    assert from_specs.to_spec() == model.to_spec()
