"""Baseline priors: fitting by counting, log-probabilities by hand, sampling, independence, save/load."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import vqgen
from vqgen.priors.baselines import IndependentPrior, UniformPrior


def skewed_grids(n: int, k: int = 5, channels: int = 2, height: int = 3, width: int = 4, seed: int = 0):
    """Grids whose per-position distributions differ (position-dependent offsets and skew)."""
    generator = torch.Generator().manual_seed(seed)
    base = (torch.rand(n, channels, height, width, generator=generator) ** 3 * k).long()  # skewed towards 0
    offset = torch.arange(channels * height * width).view(1, channels, height, width)
    return (base + offset) % k


def test_registered_and_built_by_name():
    assert {"independent", "uniform"} <= set(vqgen.available("prior"))
    prior = vqgen.build("prior", "independent", **IndependentPrior.tiny_config())
    assert isinstance(prior, IndependentPrior) and prior.grid_shape == (3, 4)
    assert isinstance(vqgen.build("prior", "uniform", num_categories=9), UniformPrior)


def test_fit_counts_with_laplace_smoothing():
    k, smoothing = 5, 0.5
    x = skewed_grids(40, k)
    prior = IndependentPrior.from_data(x, num_categories=k, smoothing=smoothing)
    counts = np.zeros((2, 3, 4, k))
    for grid in x.numpy():
        for c in range(2):
            for i in range(3):
                for j in range(4):
                    counts[c, i, j, grid[c, i, j]] += 1
    expected = np.log((counts + smoothing) / (40 + k * smoothing))
    np.testing.assert_allclose(prior.log_probs[0].numpy(), expected, rtol=1e-5)


def test_log_prob_equals_hand_computed_sum_of_log_frequencies():
    k = 6
    train, test = skewed_grids(60, k), skewed_grids(7, k, seed=1)
    prior = IndependentPrior.from_data(train, num_categories=k)
    table = prior.log_probs[0].double().numpy()  # (C, H, W, K)
    expected = [
        sum(table[c, i, j, grid[c, i, j]] for c in range(2) for i in range(3) for j in range(4))
        for grid in test.numpy()
    ]
    np.testing.assert_allclose(prior.log_prob(test).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(prior.bits_per_dim(test).numpy(), -np.array(expected) / (24 * math.log(2)), rtol=1e-5)


def test_fitting_raises_likelihood_over_uniform():
    k = 5
    train, test = skewed_grids(500, k), skewed_grids(100, k, seed=3)
    independent = IndependentPrior.from_data(train, num_categories=k)
    uniform = UniformPrior(num_categories=k, channels=2)
    assert float(independent.bits_per_dim(test).mean()) < float(uniform.bits_per_dim(test).mean()) - 0.3


def test_class_conditional_tables_are_fitted_per_class():
    k = 5
    x = torch.cat([skewed_grids(40, k, seed=0), (skewed_grids(30, k, seed=1) + 2) % k])
    labels = torch.cat([torch.zeros(40, dtype=torch.long), torch.full((30,), 2)])
    prior = IndependentPrior.from_data(x, labels, num_categories=k, num_classes=3)
    assert prior.num_classes == 3 and prior.log_probs.shape == (3, 2, 3, 4, k)
    for label, part in ((0, x[:40]), (2, x[40:])):
        alone = IndependentPrior.from_data(part, num_categories=k)
        torch.testing.assert_close(prior.log_probs[label], alone.log_probs[0])
    torch.testing.assert_close(prior.log_probs[1], torch.full_like(prior.log_probs[1], -math.log(k)))  # no data
    probe = skewed_grids(4, k, seed=9)
    class_two = torch.full((4,), 2)
    torch.testing.assert_close(
        prior.log_prob(probe, class_two), IndependentPrior.from_data(x[40:], num_categories=k).log_prob(probe)
    )
    samples = [
        prior.sample(4, (3, 4), class_two, method=method, generator=torch.Generator().manual_seed(1))
        for method in ("cached", "naive")
    ]
    torch.testing.assert_close(samples[0], samples[1])
    with pytest.raises(ValueError, match="needs cond"):
        prior.log_prob(probe)


def test_logits_do_not_depend_on_x():
    prior = IndependentPrior.from_data(skewed_grids(30), num_categories=5)
    a, b = skewed_grids(3, seed=1), skewed_grids(3, seed=2)
    torch.testing.assert_close(prior(a), prior(b))
    assert prior(a).shape == (3, 5, 2, 3, 4)


def test_samples_follow_the_per_position_frequencies():
    k = 4
    prior = IndependentPrior.from_data(skewed_grids(200, k), num_categories=k)
    samples = prior.sample(3000, (3, 4), generator=torch.Generator().manual_seed(0))
    assert samples.shape == (3000, 2, 3, 4) and samples.dtype == torch.int64
    frequencies = torch.nn.functional.one_hot(samples, k).double().mean(0)  # (C, H, W, K)
    np.testing.assert_allclose(frequencies.numpy(), prior.log_probs[0].exp().numpy(), atol=0.04)


@pytest.mark.parametrize(
    "make",
    [
        lambda: IndependentPrior.from_data(skewed_grids(50), num_categories=5),
        lambda: UniformPrior(num_categories=5, channels=2),
    ],
)
def test_cached_sampling_equals_naive(make):
    prior = make()
    samples = [
        prior.sample(4, (3, 4), method=method, generator=torch.Generator().manual_seed(7))
        for method in ("cached", "naive")
    ]
    torch.testing.assert_close(samples[0], samples[1])


def test_uniform_prior_log_prob_and_samples():
    prior = UniformPrior(num_categories=9, channels=3)
    x = torch.randint(0, 9, (5, 3, 2, 7))
    torch.testing.assert_close(prior.log_prob(x), torch.full((5,), -42 * math.log(9)))
    samples = prior.sample(2000, (1, 2), generator=torch.Generator().manual_seed(0))
    frequencies = torch.bincount(samples.flatten(), minlength=9).double() / samples.numel()
    np.testing.assert_allclose(frequencies.numpy(), np.full(9, 1 / 9), atol=0.02)
    assert list(prior.state_dict()) == []  # nothing to save


def test_save_and_load_round_trip(tmp_path):
    prior = IndependentPrior.from_data(skewed_grids(30), num_categories=5)
    prior.save_pretrained(tmp_path / "independent")
    loaded = vqgen.from_pretrained(tmp_path / "independent")
    torch.testing.assert_close(loaded.log_probs, prior.log_probs)
    x = skewed_grids(4, seed=5)
    torch.testing.assert_close(loaded.log_prob(x), prior.log_prob(x))
    UniformPrior(num_categories=5).save_pretrained(tmp_path / "uniform")
    assert vqgen.from_pretrained(tmp_path / "uniform").num_categories == 5


def test_flat_baseline_a_is_the_marginal_of_single_codes():
    codes = torch.tensor([0, 0, 0, 1, 2, 2]).view(6, 1, 1, 1)  # a 1x1 grid per image
    prior = IndependentPrior.from_data(codes, num_categories=4, smoothing=1.0)
    np.testing.assert_allclose(prior.log_probs.exp().flatten().numpy(), np.array([4, 2, 3, 1]) / 10, rtol=1e-6)


def test_errors_name_the_problem():
    prior = IndependentPrior(num_categories=5, channels=1, height=3, width=4)
    with pytest.raises(ValueError, match="3x4 grids"):
        prior(torch.zeros(1, 1, 4, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="3x4 grids"):
        prior.sample(1, (2, 2))
    with pytest.raises(ValueError, match=r"\[0, 5\)"):
        prior.fit(torch.full((2, 1, 3, 4), 5))
    with pytest.raises(ValueError, match="unconditional"):
        prior(torch.zeros(1, 1, 3, 4, dtype=torch.long), torch.zeros(1, dtype=torch.long))
    with pytest.raises(ValueError, match="smoothing"):
        IndependentPrior(smoothing=0.0)
    with pytest.raises(TypeError, match="integer"):
        UniformPrior(num_categories=5).log_prob(torch.rand(1, 1, 2, 2))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fit_and_sample_on_cuda():
    prior = IndependentPrior.from_data(skewed_grids(20).cuda(), num_categories=5)
    assert prior.log_probs.device.type == "cuda"
    samples = prior.sample(3, (3, 4), generator=torch.Generator("cuda").manual_seed(0))
    assert samples.device.type == "cuda"
    uniform = UniformPrior(num_categories=5, channels=2).cuda()
    assert uniform.sample(2, (3, 4)).device.type == "cuda"
