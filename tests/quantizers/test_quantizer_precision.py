"""Quantizers compute in float32 even under bf16 autocast, and return ``quantized`` in the input dtype."""

from __future__ import annotations

import pytest
import torch

from vqgen.quantizers import EMAVectorQuantizer, VectorQuantizer


@pytest.mark.parametrize("cls", [VectorQuantizer, EMAVectorQuantizer])
def test_bf16_autocast_matches_float32(cls):
    reference = cls(num_codes=256, dim=16, restart_after=0)
    under_autocast = cls(num_codes=256, dim=16, restart_after=0)
    under_autocast.load_state_dict(reference.state_dict())
    z = torch.randn(4, 16, 16, 16).to(torch.bfloat16)  # bf16 encoder outputs: 1,024 vectors
    expected = reference(z.float())  # plain float32, no autocast
    z_bf16 = z.clone().requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = under_autocast(z_bf16)
    assert out.quantized.dtype == torch.bfloat16
    assert torch.equal(out.codes, expected.codes)
    assert out.loss.dtype == torch.float32
    torch.testing.assert_close(out.loss, expected.loss)
    for name, tensor in under_autocast.state_dict().items():  # the EMA update ran in float32, identically
        assert tensor.dtype in (torch.float32, torch.int64, torch.bool), name
        assert torch.equal(tensor, reference.state_dict()[name]), name
    (out.quantized.float().sum() + out.loss).backward()
    assert z_bf16.grad.dtype == torch.bfloat16 and torch.isfinite(z_bf16.grad).all()


@pytest.mark.parametrize("cls", [VectorQuantizer, EMAVectorQuantizer])
def test_float32_input_is_not_searched_in_bf16_under_autocast(cls):
    quantizer = cls(num_codes=512, dim=32).eval()
    z = torch.randn(8, 32, 16, 16)  # values that bf16 would round: near-ties would flip
    expected = quantizer(z)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = quantizer(z)
    assert out.quantized.dtype == torch.float32
    assert torch.equal(out.codes, expected.codes)
    assert torch.equal(out.quantized, expected.quantized)


def test_a_module_cast_to_bf16_still_searches_in_float32():
    quantizer = VectorQuantizer(num_codes=32, dim=8)
    z = torch.randn(2, 8, 5, 5).to(torch.bfloat16)
    quantizer = quantizer.to(torch.bfloat16)
    expected = VectorQuantizer(num_codes=32, dim=8).eval()
    expected.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in quantizer.state_dict().items()})
    out = quantizer(z.clone().requires_grad_())
    assert out.quantized.dtype == torch.bfloat16 and quantizer.weight.dtype == torch.bfloat16
    assert torch.equal(out.codes, expected(z.float()).codes)
    out.loss.backward()
    assert quantizer.weight.grad.dtype == torch.bfloat16
