"""The EMA quantizer: the update of appendix A.1 of arXiv:1711.00937, by hand, and its training-only behaviour."""

from __future__ import annotations

import pytest
import torch

from vqgen.quantizers import EMAVectorQuantizer


def test_ema_update_equals_hand_computation():
    gamma, eps = 0.9, 1e-5
    quantizer = EMAVectorQuantizer(num_codes=3, dim=2, decay=gamma, eps=eps, restart_after=0)
    e0 = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    quantizer.embedding.copy_(e0)
    quantizer.embedding_sum.copy_(e0)
    quantizer.cluster_size.fill_(1.0)
    # four vectors: two near code 0, two near code 1, none near code 2
    z = torch.tensor([[1.0, 0.0], [0.0, 1.0], [9.0, 1.0], [11.0, 1.0]])  # (N, D)
    out = quantizer(z)  # (B=N, D): no spatial axes
    assert out.codes.tolist() == [0, 0, 1, 1]

    # n_i = (2, 2, 0); Σ z per code = ((1, 1), (20, 2), (0, 0))
    n = torch.tensor([2.0, 2.0, 0.0])
    s = torch.tensor([[1.0, 1.0], [20.0, 2.0], [0.0, 0.0]])
    N = gamma * torch.ones(3) + (1 - gamma) * n  # N_i ← γ N_i + (1 − γ) n_i  = (1.1, 1.1, 0.9)
    m = gamma * e0 + (1 - gamma) * s  # m_i ← γ m_i + (1 − γ) Σ z
    total = N.sum()  # 3.1
    N_smoothed = (N + eps) / (total + 3 * eps) * total  # Laplace smoothing
    e1 = m / N_smoothed[:, None]
    torch.testing.assert_close(quantizer.cluster_size, N)
    torch.testing.assert_close(quantizer.embedding_sum, m)
    torch.testing.assert_close(quantizer.embedding, e1)
    # the numbers, spelled out for code 1: m = 0.9·(10, 0) + 0.1·(20, 2) = (11, 0.2); N = 1.1 → e ≈ (10, 0.1818)
    torch.testing.assert_close(quantizer.embedding[1], torch.tensor([11.0, 0.2]) / 1.1, rtol=1e-4, atol=1e-4)
    # quantized uses the codebook from before the update, and only the commitment loss is a gradient loss
    torch.testing.assert_close(out.quantized, e0[out.codes])
    assert float(out.codebook_loss) == 0.0
    torch.testing.assert_close(out.loss, 0.25 * out.commitment_loss)
    torch.testing.assert_close(out.commitment_loss, ((z - e0[out.codes]) ** 2).mean())


def test_no_update_in_eval_mode():
    quantizer = EMAVectorQuantizer(num_codes=8, dim=4).eval()
    before = {k: v.clone() for k, v in quantizer.state_dict().items()}
    quantizer(torch.randn(4, 4, 3, 3))
    for key, value in quantizer.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_codebook_is_a_buffer_without_gradient():
    quantizer = EMAVectorQuantizer(num_codes=8, dim=4)
    assert list(quantizer.parameters()) == []
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    out = quantizer(z)
    assert not quantizer.codebook.requires_grad
    upstream = torch.randn_like(z)
    (grad_z,) = torch.autograd.grad(out.quantized, z, upstream, retain_graph=True)
    torch.testing.assert_close(grad_z, upstream, rtol=0, atol=0)
    (grad_z,) = torch.autograd.grad(out.loss, z)
    e = out.quantized.detach()  # the codebook has been updated since; quantized holds the vectors used
    torch.testing.assert_close(grad_z, 0.25 * 2 * (z.detach() - e) / z.numel())


def test_ema_converges_to_cluster_means():
    torch.manual_seed(3)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0]])
    quantizer = EMAVectorQuantizer(num_codes=2, dim=2, decay=0.7, restart_after=0)
    quantizer._set_codes(torch.arange(2), torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    for _ in range(30):
        z = centres[torch.randint(2, (256,))] + 0.1 * torch.randn(256, 2)
        quantizer(z)
    torch.testing.assert_close(quantizer.embedding, centres, atol=0.05, rtol=0)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 1.5])
def test_decay_must_lie_in_open_unit_interval(decay):
    with pytest.raises(ValueError, match=rf"decay must lie in the open interval \(0, 1\), got {decay}"):
        EMAVectorQuantizer(decay=decay)


def test_eps_must_be_positive():
    with pytest.raises(ValueError, match="eps"):
        EMAVectorQuantizer(eps=0.0)
