"""The shared helpers: nearest codes against a brute-force reference, statistics, k-means, dead-code restarts."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from vqgen.quantizers import EMAVectorQuantizer, VectorQuantizer
from vqgen.quantizers.codebook import (
    code_statistics,
    flatten_latents,
    kmeans,
    nearest_code,
    squared_distances,
    straight_through,
)

QUANTIZERS = [VectorQuantizer, EMAVectorQuantizer]


def _brute_force(x: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """(N, K, D) differences, in float64: the slow, obviously correct reference."""
    return (x.double()[:, None, :] - codebook.double()[None, :, :]).pow(2).sum(-1)  # (N, K)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 70),
    k=st.integers(2, 40),
    d=st.integers(1, 9),
    block_rows=st.sampled_from([None, 1, 7, 64]),
    seed=st.integers(0, 2**16),
)
def test_nearest_code_matches_brute_force(n, k, d, block_rows, seed):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=generator)
    codebook = torch.randn(k, d, generator=generator)
    codes = nearest_code(x, codebook, block_rows=block_rows)
    distances = _brute_force(x, codebook)  # (N, K)
    best = distances.min(1).values
    assert codes.dtype == torch.int64 and codes.shape == (n,)
    # the chosen code is a true nearest neighbour (up to float32 rounding on near-ties)
    chosen = distances.gather(1, codes[:, None]).squeeze(1)
    torch.testing.assert_close(chosen, best, rtol=1e-5, atol=1e-5)
    # blocking never changes the result
    assert torch.equal(codes, nearest_code(x, codebook, block_rows=n))


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.integers(1, 4), min_size=0, max_size=3),
    batch=st.integers(1, 3),
    d=st.integers(1, 5),
)
def test_quantizer_codes_are_nearest_for_any_spatial_rank(shape, batch, d):
    quantizer = VectorQuantizer(num_codes=11, dim=d).eval()
    z = torch.randn(batch, d, *shape)
    out = quantizer(z)
    flat, restore = flatten_latents(z)
    expected = _brute_force(flat, quantizer.weight.detach()).argmin(1)
    assert torch.equal(out.codes, restore(expected, "*"))
    assert torch.equal(restore(flat, "* d"), z)


def test_squared_distances_and_straight_through():
    x, codebook = torch.randn(9, 3), torch.randn(5, 3)
    torch.testing.assert_close(squared_distances(x, codebook).double(), _brute_force(x, codebook), rtol=1e-5, atol=1e-5)
    z = torch.randn(4, 3, requires_grad=True)
    q = straight_through(z, codebook[:4])
    assert torch.equal(q, codebook[:4] + 0 * z.detach()) or torch.allclose(q, codebook[:4])
    q.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))


def test_code_statistics():
    perplexity, usage = code_statistics(torch.bincount(torch.tensor([0, 1, 2, 3]), minlength=8))
    torch.testing.assert_close(perplexity, torch.tensor(4.0))
    torch.testing.assert_close(usage, torch.tensor(0.5))
    counts = torch.tensor([3, 1, 0, 0])
    p = torch.tensor([0.75, 0.25])
    torch.testing.assert_close(code_statistics(counts)[0], torch.exp(-(p * p.log()).sum()))
    perplexity, usage = code_statistics(torch.tensor([5, 0, 0]))
    assert float(perplexity) == pytest.approx(1.0) and float(usage) == pytest.approx(1 / 3)


def test_kmeans_recovers_well_separated_blobs():
    generator = torch.Generator().manual_seed(0)
    centres = torch.tensor([[10.0, 0.0, 0.0], [-10.0, 0.0, 0.0], [0.0, 10.0, 0.0], [0.0, 0.0, -10.0], [5.0, 5.0, 5.0]])
    x = centres[torch.randint(5, (2000,), generator=generator)] + 0.3 * torch.randn(2000, 3, generator=generator)
    found = kmeans(x, 5, iters=10, generator=generator)
    distance_to_true = _brute_force(found, centres).sqrt()  # (5, 5)
    # every true centre has exactly one found centre within 0.1 (a matching, not just coverage)
    assert sorted(distance_to_true.argmin(0).tolist()) == [0, 1, 2, 3, 4]
    assert float(distance_to_true.min(0).values.max()) < 0.1


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_kmeans_init_places_codes_on_the_data(cls):
    quantizer = cls(num_codes=16, dim=4, kmeans_init=True, restart_after=0)
    assert not bool(quantizer.initialized)
    z = torch.randn(8, 4, 6, 6) * 0.5 + 7.0  # far from the N(0, 1) initial codebook
    quantizer(z)
    assert bool(quantizer.initialized)
    flat = z.movedim(1, -1).reshape(-1, 4)
    nearest_point = _brute_force(quantizer.codebook.detach(), flat).min(1).values.sqrt()  # (K,)
    data_scale = math.sqrt(4 * 0.25)
    assert float(nearest_point.max()) < data_scale  # every code sits among the data
    before = quantizer.codebook.detach().clone()
    quantizer.eval()(torch.randn(2, 4, 3, 3))  # no re-initialisation afterwards
    assert torch.equal(quantizer.codebook.detach(), before)


def test_kmeans_init_is_not_repeated_after_loading(tmp_path):
    quantizer = VectorQuantizer(num_codes=8, dim=2, kmeans_init=True)
    quantizer(torch.randn(4, 2, 5, 5))
    quantizer.save_pretrained(tmp_path)
    loaded = VectorQuantizer.from_pretrained(tmp_path).train()
    before = loaded.codebook.detach().clone()
    loaded(torch.randn(4, 2, 5, 5) + 100.0)
    assert torch.equal(loaded.codebook.detach(), before)  # no restart yet, no k-means again


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_dead_codes_are_restarted_from_encoder_outputs(cls):
    quantizer = cls(num_codes=8, dim=2, restart_after=3)
    codebook = torch.tensor([[0.0, 0.0]] + [[100.0 + i, 100.0] for i in range(7)])  # 7 codes far from the data
    quantizer._set_codes(torch.arange(8), codebook)
    z = torch.randn(4, 2, 4, 4) * 0.1 + 1.0
    for step in range(3):
        out = quantizer(z)
        if step < 2:
            assert float(out.usage) == pytest.approx(1 / 8)
            assert torch.equal(quantizer.steps_unused, torch.tensor([0] + [step + 1] * 7))
    flat = z.movedim(1, -1).reshape(-1, 2)
    revived = quantizer.codebook[1:].detach()
    # each restarted code now equals one of the batch's vectors, and is used from then on
    assert float(_brute_force(revived, flat).min(1).values.max()) < 1e-10
    assert torch.equal(quantizer.steps_unused, torch.zeros(8, dtype=torch.long))
    assert float(quantizer(z).usage) > 1 / 8


@pytest.mark.parametrize("cls", QUANTIZERS)
def test_no_restart_when_disabled_or_in_eval(cls):
    for quantizer in (cls(num_codes=8, dim=2, restart_after=0), cls(num_codes=8, dim=2, restart_after=1).eval()):
        quantizer._set_codes(torch.arange(8), torch.tensor([[0.0, 0.0]] + [[100.0, 100.0]] * 7))
        for _ in range(3):
            quantizer(torch.randn(2, 2, 3, 3) * 0.1)
        # unchanged (EMA: up to the slow drift of Laplace smoothing), not moved onto the data
        torch.testing.assert_close(quantizer.codebook[1:].detach(), torch.full((7, 2), 100.0), atol=0.01, rtol=0)


def test_workspace_and_blocks_do_not_change_codes(monkeypatch):
    import vqgen.quantizers.codebook as codebook_module

    x, codebook = torch.randn(300, 5), torch.randn(37, 5)
    expected = _brute_force(x, codebook).argmin(1)
    assert torch.equal(nearest_code(x, codebook), expected)
    workspace = torch.full((1000,), float("nan"))  # stale contents must not matter
    assert torch.equal(nearest_code(x, codebook, block_rows=16, workspace=workspace), expected)
    monkeypatch.setattr(codebook_module, "MAX_SEARCH_ELEMENTS", 37 * 64)  # force blocks in the quantizer too
    quantizer = VectorQuantizer(num_codes=37, dim=5).eval()
    quantizer._set_codes(torch.arange(37), codebook)
    assert torch.equal(quantizer(x).codes, expected)
    assert quantizer._workspace.numel() == 37 * 64
    assert all("workspace" not in key for key in quantizer.state_dict())


def test_code_sums_match_index_add():
    from vqgen.quantizers.codebook import code_sums

    values, codes = torch.randn(50, 3), torch.randint(7, (50,))
    expected = torch.zeros(7, 3).index_add_(0, codes, values)
    torch.testing.assert_close(code_sums(values, codes, 7), expected)
    assert code_sums(values[:0], codes[:0], 7).abs().sum() == 0
