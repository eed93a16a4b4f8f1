"""The discretised logistic mixture (PixelCNN++, arXiv:1701.05517 eq. 2-3): exact, normalised, stable.

The reference below is written independently of vqgen.logistic_mixture: float64, explicit CDF differences of plain
sigmoids per bin, explicit loops over examples, positions, channels and components.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from vqgen.logistic_mixture import LOG_SCALE_MAX, LOG_SCALE_MIN, DiscretizedLogisticMixture


def random_output(batch, channels, mixtures, height, width, *, seed=0, mean_range=1.5, scale_range=(-4.0, 0.5)):
    """``(B, 3, C, M, H, W)``: mixture logits (shared over channels), means, log-scales."""
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, 1, mixtures, height, width, generator=g).expand(-1, channels, -1, -1, -1)
    means = (torch.rand(batch, channels, mixtures, height, width, generator=g) * 2 - 1) * mean_range
    low, high = scale_range
    log_scales = low + (high - low) * torch.rand(batch, channels, mixtures, height, width, generator=g)
    return torch.stack([logits, means, log_scales], dim=1)


def reference_bin_probability(v: int, mean: float, log_scale: float, k: int) -> float:
    """P(value v) of a logistic discretised into K bins on [-1, 1], edges at ±inf: CDF(upper) - CDF(lower)."""
    scale = math.exp(min(max(log_scale, LOG_SCALE_MIN), LOG_SCALE_MAX))
    y, half = 2 * v / (k - 1) - 1, 1 / (k - 1)

    def cdf(edge: float) -> float:
        return 1 / (1 + math.exp(-(edge - mean) / scale))

    upper = 1.0 if v == k - 1 else cdf(y + half)
    lower = 0.0 if v == 0 else cdf(y - half)
    return upper - lower


def reference_pixel_probability(values, logits, means, log_scales, k, coupled=True) -> list[float]:
    """Per-channel conditionals p(x_c | x_<c) of one pixel, as ratios of marginals of the joint mixture."""
    channels, mixtures = len(values), len(logits[0])
    if not coupled:
        out = []
        for c in range(channels):
            norm = sum(math.exp(logits[c][m]) for m in range(mixtures))
            bins = [reference_bin_probability(values[c], means[c][m], log_scales[c][m], k) for m in range(mixtures)]
            out.append(sum(math.exp(logits[c][m]) / norm * bins[m] for m in range(mixtures)))
        return out
    norm = sum(math.exp(logits[0][m]) for m in range(mixtures))
    marginals = []  # p(x_0 .. x_c) for c = -1 .. C-1
    for c in range(-1, channels):
        total = 0.0
        for m in range(mixtures):
            term = math.exp(logits[0][m]) / norm
            for cc in range(c + 1):
                term *= reference_bin_probability(values[cc], means[cc][m], log_scales[cc][m], k)
            total += term
        marginals.append(total)
    return [marginals[c + 1] / marginals[c] for c in range(channels)]


@pytest.mark.parametrize("coupled", [True, False])
@pytest.mark.parametrize("k", [256, 11])
def test_loss_equals_the_per_bin_reference(k, coupled):
    batch, channels, mixtures, height, width = 2, 3, 4, 2, 3
    output = random_output(batch, channels, mixtures, height, width, seed=k)
    if not coupled:
        output[:, 0] = torch.randn(batch, channels, mixtures, height, width, generator=torch.Generator().manual_seed(1))
    x = torch.randint(0, k, (batch, channels, height, width), generator=torch.Generator().manual_seed(2))
    x[0, :, 0, 0] = 0  # edge bins
    x[0, :, 0, 1] = k - 1
    likelihood = DiscretizedLogisticMixture(k, channels, mixtures, coupled=coupled)
    nll = likelihood.nll(output, x)
    assert nll.shape == x.shape and nll.dtype == torch.float32
    o = output.double()
    for b, i, j in itertools.product(range(batch), range(height), range(width)):
        probs = reference_pixel_probability(
            x[b, :, i, j].tolist(), o[b, 0, :, :, i, j].tolist(), o[b, 1, :, :, i, j].tolist(),
            o[b, 2, :, :, i, j].tolist(), k, coupled,
        )  # fmt: skip
        expected = torch.tensor([-math.log(p) for p in probs])
        torch.testing.assert_close(nll[b, :, i, j].double(), expected.double(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("coupled", [True, False])
@pytest.mark.parametrize(("k", "mean_range", "scale_range"), [
    (256, 1.2, (-7.0, 1.0)),  # every scale, down to the clamp
    (256, 60.0, (-7.0, -6.0)),  # means far outside [-1, 1] with tiny scales: all mass in an edge bin
    (11, 1.0, (-9.0, 9.0)),  # beyond both clamps
    (2, 1.0, (-3.0, 1.0)),  # no middle bin at all
])  # fmt: skip
def test_bins_sum_to_one_given_the_earlier_channels(k, mean_range, scale_range, coupled):
    """For every sub-pixel and any values of the earlier channels, the K bin probabilities sum to 1 (float32)."""
    output = random_output(4, 3, 5, 3, 3, seed=3, mean_range=mean_range, scale_range=scale_range)
    x = torch.randint(0, k, (4, 3, 3, 3), generator=torch.Generator().manual_seed(4))
    logits = DiscretizedLogisticMixture(k, 3, 5, coupled=coupled).logits(output, x)  # (B, K, C, H, W)
    assert logits.shape == (4, k, 3, 3, 3) and bool(torch.isfinite(logits).all())
    total = logits.exp().sum(1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-5)


def test_joint_over_a_pixel_is_the_product_of_the_channel_conditionals():
    """Σ_c log p(x_c | x_<c) from ``logits`` is the joint mixture of eq. 3 at every one of the K^3 pixel values, and
    those joints sum to 1."""
    k, mixtures = 5, 3
    output = random_output(1, 3, mixtures, 1, 1, seed=5)
    values = torch.tensor(list(itertools.product(range(k), repeat=3)))  # (K^3, 3)
    x = values[:, :, None, None]  # (K^3, 3, 1, 1): every pixel, one per example
    out = output.expand(len(values), -1, -1, -1, -1, -1)
    logits = DiscretizedLogisticMixture(k, 3, mixtures).logits(out, x)  # (K^3, K, 3, 1, 1)
    joint = logits[torch.arange(len(values))[:, None], values, torch.arange(3)[None], 0, 0].sum(1).double().exp()
    o = output[0, :, :, :, 0, 0].double()
    expected = []
    for v in values.tolist():
        total = 0.0
        for m in range(mixtures):
            term = math.exp(o[0, 0, m]) / float(o[0, 0].exp().sum())
            for c in range(3):
                term *= reference_bin_probability(v[c], float(o[1, c, m]), float(o[2, c, m]), k)
            total += term
        expected.append(total)
    torch.testing.assert_close(joint, torch.tensor(expected, dtype=torch.float64), rtol=1e-5, atol=1e-9)
    assert abs(float(joint.sum()) - 1) < 1e-5


@pytest.mark.parametrize("coupled", [True, False])
def test_nll_and_position_logits_are_the_logits_at_x(coupled):
    k = 256
    output = random_output(3, 3, 4, 2, 2, seed=6)
    x = torch.randint(0, k, (3, 3, 2, 2), generator=torch.Generator().manual_seed(7))
    likelihood = DiscretizedLogisticMixture(k, 3, 4, coupled=coupled)
    logits = likelihood.logits(output, x)
    expected = torch.nn.functional.cross_entropy(logits, x, reduction="none")
    torch.testing.assert_close(likelihood.nll(output, x), expected, rtol=1e-5, atol=1e-5)
    for c, i, j in itertools.product(range(3), range(2), range(2)):
        at = likelihood.position_logits(output[..., i, j], c, x[:, :, i, j])
        torch.testing.assert_close(at, logits[:, :, c, i, j], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("log_scale", [LOG_SCALE_MIN, LOG_SCALE_MAX, -50.0, 50.0])
@pytest.mark.parametrize("mean", [-1e4, -30.0, -1.0, 0.0, 1.0, 30.0, 1e4])
def test_log_probabilities_stay_finite_for_extreme_parameters(mean, log_scale):
    k = 256
    output = torch.zeros(1, 3, 2, 1, 1, k)  # one pixel per example, one example per value
    output = output.permute(5, 1, 2, 3, 4, 0).contiguous()  # (K, 3, C=2, M=1, 1, 1)
    output[:, 1] = mean
    output[:, 2] = log_scale
    x = torch.arange(k).view(k, 1, 1, 1).expand(k, 2, 1, 1)
    likelihood = DiscretizedLogisticMixture(k, 2, 1)
    nll, logits = likelihood.nll(output, x), likelihood.logits(output, x)
    assert bool(torch.isfinite(nll).all()) and bool((nll >= 0).all())
    assert bool(torch.isfinite(logits).all())
    total = logits.exp().sum(1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-5)


@pytest.mark.parametrize(("mean", "log_scale"), [(0.0, -2.0), (1e4, LOG_SCALE_MIN), (-1e4, LOG_SCALE_MAX)])
def test_gradients_are_finite_at_the_edge_bins(mean, log_scale):
    """Training reaches the edge bins (values 0 and K - 1) and sampling's logits: their gradients are finite."""
    k = 256
    output = torch.zeros(k, 3, 2, 2, 1, 1)
    output[:, 1], output[:, 2] = mean, log_scale
    output.requires_grad_()
    x = torch.arange(k).view(k, 1, 1, 1).expand(k, 2, 1, 1)
    likelihood = DiscretizedLogisticMixture(k, 2, 2)
    for loss in (likelihood.nll(output, x).sum(), likelihood.logits(output, x).logsumexp(1).sum()):
        (grad,) = torch.autograd.grad(loss, output)
        assert bool(torch.isfinite(grad).all())


def test_bf16_output_under_autocast_is_computed_in_float32():
    output = random_output(2, 3, 4, 3, 3, seed=8, scale_range=(-7.0, 0.0)).to(torch.bfloat16)
    x = torch.randint(0, 256, (2, 3, 3, 3), generator=torch.Generator().manual_seed(9))
    x[0, :, 0, 0], x[0, :, 0, 1] = 0, 255
    likelihood = DiscretizedLogisticMixture(256, 3, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        nll, logits = likelihood.nll(output, x), likelihood.logits(output, x)
    assert nll.dtype == torch.float32 and logits.dtype == torch.float32
    assert bool(torch.isfinite(nll).all()) and bool(torch.isfinite(logits).all())
    torch.testing.assert_close(nll, likelihood.nll(output.float(), x))  # the same as from the float32 parameters
    total = logits.exp().sum(1)
    torch.testing.assert_close(total, torch.ones_like(total), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(num_mixtures=0), ValueError, "num_mixtures must be > 0"),
        (dict(num_mixtures=1.5), TypeError, "num_mixtures must be an int"),
        (dict(num_categories=1), ValueError, "num_categories must be >= 2"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        DiscretizedLogisticMixture(**{"num_categories": 256, "channels": 3, "num_mixtures": 2, **kwargs})


def test_output_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"output must have shape \(B, 3, 3, 2, ...\)"):
        DiscretizedLogisticMixture(256, 3, 2).nll(torch.zeros(1, 3, 3, 5, 2, 2), torch.zeros(1, 3, 2, 2).long())
