"""The gradient-trained quantizer: straight-through gradients, the two loss terms and where β goes."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.quantizers import EMAVectorQuantizer, VectorQuantizer


def _reference_losses(z: torch.Tensor, codebook: torch.Tensor, codes: torch.Tensor):
    """Equation 3 of arXiv:1711.00937 written with detach(), on (B, D, H, W) latents."""
    e = codebook[codes].movedim(-1, 1)  # (B, D, H, W)
    codebook_loss = ((z.detach() - e) ** 2).mean()
    commitment_loss = ((z - e.detach()) ** 2).mean()
    return codebook_loss, commitment_loss


def test_straight_through_gradient_is_identity():
    quantizer = VectorQuantizer(num_codes=8, dim=4)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quantizer(z)
    upstream = torch.randn_like(z)
    (grad_z,) = torch.autograd.grad(out.quantized, z, upstream, retain_graph=True)
    torch.testing.assert_close(grad_z, upstream, rtol=0, atol=0)
    # quantized carries no gradient to the codebook: only the codebook loss does
    (grad_codebook,) = torch.autograd.grad(out.quantized, quantizer.weight, upstream, allow_unused=True)
    assert grad_codebook is None or torch.count_nonzero(grad_codebook) == 0


def test_quantized_values_are_codebook_vectors():
    quantizer = VectorQuantizer(num_codes=8, dim=4)
    z = torch.randn(2, 4, 3, 3)
    out = quantizer(z)
    assert torch.equal(out.quantized, quantizer.weight.detach()[out.codes].movedim(-1, 1))


def test_loss_terms_and_their_gradients_match_equation_3():
    quantizer = VectorQuantizer(num_codes=8, dim=4, beta=0.25, restart_after=0)
    z = torch.randn(3, 4, 2, 5, requires_grad=True)
    out = quantizer(z)
    ref_codebook, ref_commitment = _reference_losses(z, quantizer.weight, out.codes)
    torch.testing.assert_close(out.codebook_loss, ref_codebook)
    torch.testing.assert_close(out.commitment_loss, ref_commitment)
    torch.testing.assert_close(out.loss, ref_codebook + 0.25 * ref_commitment)

    # the commitment loss moves only the encoder, the codebook loss only the codebook
    g_z, g_e = torch.autograd.grad(out.commitment_loss, [z, quantizer.weight], retain_graph=True, allow_unused=True)
    r_z, r_e = torch.autograd.grad(ref_commitment, [z, quantizer.weight], retain_graph=True, allow_unused=True)
    torch.testing.assert_close(g_z, r_z)
    assert (g_e is None or not g_e.any()) and (r_e is None or not r_e.any())
    g_z, g_e = torch.autograd.grad(out.codebook_loss, [z, quantizer.weight], retain_graph=True, allow_unused=True)
    r_z, r_e = torch.autograd.grad(ref_codebook, [z, quantizer.weight], retain_graph=True, allow_unused=True)
    torch.testing.assert_close(g_e, r_e)
    assert (g_z is None or not g_z.any()) and (r_z is None or not r_z.any())


def test_beta_weighs_the_commitment_term():
    torch.manual_seed(1)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    quantizer = VectorQuantizer(num_codes=8, dim=4, beta=0.1)
    out = quantizer(z)
    out.loss.backward()
    e = quantizer.weight.detach()[out.codes].movedim(-1, 1)
    # d loss / dz = β · 2 (z − e) / numel: β scales the encoder's gradient, not the codebook's
    torch.testing.assert_close(z.grad, 0.1 * 2 * (z.detach() - e) / z.numel())
    grad_codebook = torch.zeros_like(quantizer.weight)
    flat_codes = out.codes.flatten()
    flat_diff = (e - z.detach()).movedim(1, -1).reshape(-1, 4)
    grad_codebook.index_add_(0, flat_codes, 2 * flat_diff / z.numel())
    torch.testing.assert_close(quantizer.weight.grad, grad_codebook)


def test_training_step_moves_codebook_towards_data():
    torch.manual_seed(2)
    quantizer = VectorQuantizer(num_codes=4, dim=2, restart_after=0)
    data = torch.randn(256, 2, 1) * 0.1 + 3.0
    optimizer = torch.optim.SGD(quantizer.parameters(), lr=1.0)
    before = float(quantizer(data).codebook_loss.detach())
    for _ in range(10):
        optimizer.zero_grad()
        quantizer(data).loss.backward()
        optimizer.step()
    assert float(quantizer(data).codebook_loss.detach()) < 0.2 * before


@pytest.mark.parametrize("cls", [VectorQuantizer, EMAVectorQuantizer])
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_codes": 1}, ValueError, "num_codes must be >= 2, got 1"),
        ({"num_codes": 8.0}, TypeError, "num_codes must be an int"),
        ({"dim": 0}, ValueError, "dim must be >= 1, got 0"),
        ({"beta": -0.1}, ValueError, r"beta .* must be >= 0, got -0.1"),
        ({"beta": "0.25"}, TypeError, "beta must be a number"),
        ({"kmeans_iters": -1}, ValueError, "kmeans_iters must be >= 0"),
        ({"restart_after": -5}, ValueError, "restart_after must be >= 0"),
        ({"kmeans_init": 1}, TypeError, "kmeans_init must be a bool"),
    ],
)
def test_bad_constructor_arguments(cls, kwargs, error, match):
    with pytest.raises(error, match=match):
        cls(**kwargs)


def test_huge_finite_inputs_overflow_with_a_clear_error():
    quantizer = VectorQuantizer(num_codes=8, dim=4)
    with pytest.raises(ValueError, match="overflow float32"):
        quantizer(torch.full((2, 4, 3), 1e30))


def test_build_by_name_captures_config():
    quantizer = vqgen.build("quantizer", "vq", num_codes=32, dim=16, beta=0.5)
    assert isinstance(quantizer, VectorQuantizer)
    assert (quantizer.num_codes, quantizer.dim, quantizer.beta) == (32, 16, 0.5)
    assert quantizer.config["restart_after"] == 100 and quantizer.config["kmeans_init"] is False
