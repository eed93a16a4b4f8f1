"""The quantizer contract: every registered quantizer (plugins included), built with its ``tiny_config()``.

Run it with ``pytest --pyargs vqgen.testing``, or on one quantizer with
[`check_quantizer`][vqgen.testing.check_quantizer].
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

import vqgen
from vqgen.interfaces import QuantizerOutput
from vqgen.testing.seeding import contract_seed  # noqa: F401  (an autouse fixture: seed 0 for every case)

NAMES = vqgen.available("quantizer")


def _build(name: str) -> vqgen.Quantizer:
    cls = vqgen.registry("quantizer").get(name)
    return vqgen.build("quantizer", name, **cls.tiny_config())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("spatial", [(), (5,), (3, 4), (2, 3, 2)])
@pytest.mark.parametrize("training", [True, False])
def test_shapes_dtypes_and_fields(name, spatial, training):
    quantizer = _build(name).train(training)
    z = torch.randn(2, quantizer.dim, *spatial)
    out = quantizer(z)
    assert isinstance(out, QuantizerOutput)
    assert {f.name for f in dataclasses.fields(out)} == {
        "quantized",
        "codes",
        "loss",
        "codebook_loss",
        "commitment_loss",
        "perplexity",
        "usage",
    }
    assert out.quantized.shape == z.shape and out.quantized.dtype == z.dtype
    assert out.codes.shape == (2, *spatial) and out.codes.dtype == torch.int64
    assert int(out.codes.min()) >= 0 and int(out.codes.max()) < quantizer.num_codes
    for field in ("loss", "codebook_loss", "commitment_loss", "perplexity", "usage"):
        value = getattr(out, field)
        assert value.shape == () and value.is_floating_point() and torch.isfinite(value), field
    assert 1.0 - 1e-5 <= float(out.perplexity) <= min(quantizer.num_codes, out.codes.numel()) + 1e-4
    assert 0.0 < float(out.usage) <= 1.0


@pytest.mark.parametrize("name", NAMES)
def test_embed_matches_quantized_in_eval(name):
    quantizer = _build(name).eval()
    z = torch.randn(3, quantizer.dim, 4, 4)
    out = quantizer(z)
    embedded = quantizer.embed(out.codes)
    assert embedded.shape == z.shape
    torch.testing.assert_close(embedded, out.quantized)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_reaches_the_input(name):
    quantizer = _build(name)
    z = torch.randn(2, quantizer.dim, 3, 3, requires_grad=True)
    out = quantizer(z)
    (out.quantized.sum() + out.loss).backward()
    assert z.grad is not None and z.grad.shape == z.shape and torch.isfinite(z.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, tmp_path):
    quantizer = _build(name).train()
    for _ in range(3):  # move the codebook / averages away from their initial values
        quantizer(torch.randn(4, quantizer.dim, 3, 3))
    quantizer.save_pretrained(tmp_path)
    loaded = vqgen.from_pretrained(tmp_path)
    assert type(loaded) is type(quantizer) and loaded.config == quantizer.config
    for key, value in quantizer.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    z = torch.randn(2, quantizer.dim, 4, 4)
    assert torch.equal(quantizer.eval()(z).codes, loaded(z).codes)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_channel_count_is_explained(name):
    quantizer = _build(name)
    with pytest.raises(ValueError, match=rf"dim={quantizer.dim}.*got {quantizer.dim + 1}.*latent_dim"):
        quantizer(torch.randn(2, quantizer.dim + 1, 3, 3))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_is_rejected(name, bad):
    quantizer = _build(name)
    z = torch.randn(2, quantizer.dim, 3, 3)
    z[1, 0, 2, 1] = bad
    with pytest.raises(ValueError, match="non-finite"):
        quantizer(z)


@pytest.mark.parametrize("name", NAMES)
def test_embed_rejects_bad_codes(name):
    quantizer = _build(name)
    k = quantizer.num_codes
    with pytest.raises(ValueError, match=rf"\[0, {k}\).*\[0, {k}\]"):
        quantizer.embed(torch.tensor([[0, k]]))
    with pytest.raises(ValueError, match=r"\[-1, 0\]"):
        quantizer.embed(torch.tensor([[-1, 0]]))
    with pytest.raises(TypeError, match="int64"):
        quantizer.embed(torch.zeros(1, 2, 2))
