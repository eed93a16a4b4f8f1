"""Metrics against independent computations (numpy/scipy), streaming and merging, and the Inception error path."""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch
from torch import nn

from vqgen.metrics import (
    INCEPTION_ENV_VAR,
    INCEPTION_WEIGHTS_NAME,
    BitsPerDim,
    CodebookUsage,
    bits_per_dim,
    fid,
    fid_metric,
    find_inception_weights,
    inception_feature,
    perplexity,
    prior_bits_per_dim,
)
from vqgen.metrics import frechet as fid_module
from vqgen.priors.baselines import IndependentPrior, UniformPrior

# ---------------------------------------------------------------------------------------------------- bits per dim


def test_bits_per_dim_function_matches_log2():
    nll = torch.tensor([3.0, 10.0, 0.5], dtype=torch.float64)
    expected = nll.numpy() * np.log2(np.e) / 12
    np.testing.assert_allclose(bits_per_dim(nll, 12).numpy(), expected, rtol=1e-12)
    assert bits_per_dim(math.log(2) * 64, 64) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="num_dims"):
        bits_per_dim(nll, 0)


def test_bits_per_dim_metric_streams_and_merges():
    nll = torch.rand(37, dtype=torch.float64) * 100
    expected = nll.sum().item() / (37 * 10 * math.log(2))
    one = BitsPerDim()
    for chunk in nll.split(5):  # uneven batches
        one.update(chunk.float(), num_dims=10)
    assert float(one.compute()) == pytest.approx(expected, rel=1e-6)
    assert one.nll_sum.dtype == torch.float64 and one.num_values.dtype == torch.float64
    # Two "processes" merged through the metric's sum reduction give the same figure.
    a, b = BitsPerDim(), BitsPerDim()
    a.update(nll[:20], num_dims=10)
    b.update(nll[20:], num_dims=10)
    a.merge_state(b)
    assert float(a.compute()) == pytest.approx(expected, rel=1e-12)
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert math.isnan(float(BitsPerDim().compute()))


def test_bits_per_dim_metric_rejects_bad_input():
    metric = BitsPerDim()
    with pytest.raises(TypeError, match="nll"):
        metric.update(torch.tensor([1, 2]), num_dims=4)
    with pytest.raises(ValueError, match="nll"):
        metric.update(torch.tensor([[1.0]]), num_dims=4)
    with pytest.raises(ValueError, match="non-finite"):
        metric.update(torch.tensor([math.inf]), num_dims=4)


def test_prior_bits_per_dim_of_uniform_prior_is_log2_k():
    prior = UniformPrior(num_categories=13, channels=2)
    x = torch.randint(0, 13, (11, 2, 3, 4))
    assert prior_bits_per_dim(prior, x, batch_size=4) == pytest.approx(math.log2(13), rel=1e-6)


def test_prior_bits_per_dim_matches_prior_method():
    x = torch.randint(0, 6, (50, 1, 3, 3))
    prior = IndependentPrior.from_data(x, num_categories=6)
    assert prior_bits_per_dim(prior, x, batch_size=7) == pytest.approx(float(prior.bits_per_dim(x).mean()), rel=1e-5)


# ---------------------------------------------------------------------------------------------------- codebook


def test_perplexity_matches_scipy_entropy():
    histogram = torch.tensor([5.0, 0.0, 1.0, 3.0, 0.0, 9.0], dtype=torch.float64)
    expected = np.exp(scipy.stats.entropy(histogram.numpy()))
    assert float(perplexity(histogram)) == pytest.approx(expected, rel=1e-12)
    assert float(perplexity(torch.ones(8))) == pytest.approx(8.0)
    assert float(perplexity(torch.tensor([0.0, 4.0, 0.0]))) == pytest.approx(1.0)


def test_codebook_usage_streams_merges_and_matches_numpy():
    codes = torch.randint(0, 40, (64, 4, 4))  # only codes < 40 of 50 can appear
    counts = np.bincount(codes.numpy().ravel(), minlength=50)
    one = CodebookUsage(num_codes=50)
    for chunk in codes.split(9):
        one.update(chunk)
    stats = one.compute()
    assert set(stats) == {"perplexity", "usage", "used_codes"}
    assert float(stats["perplexity"]) == pytest.approx(np.exp(scipy.stats.entropy(counts)), rel=1e-10)
    assert float(stats["usage"]) == pytest.approx((counts > 0).mean())
    assert float(stats["used_codes"]) == (counts > 0).sum()
    assert one.histogram.dtype == torch.float64
    a, b = CodebookUsage(50), CodebookUsage(50)
    a.update(codes[:10])
    b.update(codes[10:])
    a.merge_state(b)
    torch.testing.assert_close(a.histogram, one.histogram)


def test_codebook_usage_rejects_out_of_range_codes():
    metric = CodebookUsage(num_codes=4)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        metric.update(torch.tensor([0, 4]))
    with pytest.raises(TypeError, match="codes"):
        metric.update(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="num_codes"):
        CodebookUsage(num_codes=0)


# ---------------------------------------------------------------------------------------------------- FID


class LinearFeatures(nn.Module):
    """A toy extractor: uint8 images (B, C, H, W) → a fixed linear map of their pixels (float64)."""

    def __init__(self, in_dims: int, num_features: int, seed: int = 0) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.register_buffer("weight", torch.randn(in_dims, num_features, generator=generator, dtype=torch.float64))
        self.num_features = num_features

    def forward(self, images):
        return images.flatten(1).double() @ self.weight


class TableFeatures(nn.Module):
    """A toy extractor: each image encodes a 16-bit row index (two pixels) into a fixed table of feature vectors."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("table", table)
        self.num_features = table.shape[1]

    def forward(self, images):
        index = images[:, 0, 0, 0].long() * 256 + images[:, 0, 0, 1].long()
        return self.table[index]


def index_images(indices: torch.Tensor) -> torch.Tensor:
    """Row indices (N,) < 65536 → uint8 images (N, 1, 1, 2) that TableFeatures decodes back."""
    return torch.stack([indices // 256, indices % 256], dim=1).to(torch.uint8).view(-1, 1, 1, 2)


def frechet_numpy(a: np.ndarray, b: np.ndarray) -> float:
    """The reference: Fréchet distance between the Gaussians fitted to feature rows a and b, with scipy's sqrtm."""
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(cov_a @ cov_b).real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root))


def test_fid_matches_scipy_on_the_same_features():
    generator = torch.Generator().manual_seed(1)
    real = torch.randint(0, 256, (300, 1, 2, 3), generator=generator, dtype=torch.uint8)
    fake = (torch.randint(0, 200, (250, 1, 2, 3), generator=generator) + 40).to(torch.uint8)
    feature = LinearFeatures(6, 5)
    got = fid(real, fake, feature=feature, batch_size=64)
    expected = frechet_numpy(feature(real).numpy(), feature(fake).numpy())
    assert expected > 1.0  # the sets differ
    assert got == pytest.approx(expected, rel=1e-6)


def test_fid_approaches_the_closed_form_for_gaussian_features():
    # Real features N(0, diag(a)), fake N(m, diag(b)): FID = |m|² + Σ (√a - √b)² (commuting covariances).
    n, a, b, m = 20000, torch.tensor([1.0, 4.0, 0.25]), torch.tensor([2.0, 1.0, 0.25]), torch.tensor([1.0, -0.5, 0.0])
    generator = torch.Generator().manual_seed(0)
    real = torch.randn(n, 3, generator=generator, dtype=torch.float64) * a.sqrt()
    fake = torch.randn(n, 3, generator=generator, dtype=torch.float64) * b.sqrt() + m
    feature = TableFeatures(torch.cat([real, fake]))
    got = fid(index_images(torch.arange(n)), index_images(torch.arange(n, 2 * n)), feature=feature, batch_size=4096)
    closed_form = float((m**2).sum() + ((a.sqrt() - b.sqrt()) ** 2).sum())
    assert got == pytest.approx(closed_form, abs=0.05)


def test_fid_of_a_set_with_itself_is_zero_and_grows_with_difference():
    from vqgen.classifier import FeatureClassifier

    extractor = FeatureClassifier(in_channels=1, widths=[8, 16]).feature_extractor()
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 1, 8, 8), generator=generator, dtype=torch.uint8)
    assert fid(x, x, feature=extractor) == pytest.approx(0.0, abs=1e-4)
    brighter = (x // 2 + 128).to(torch.uint8)
    assert fid(x, brighter, feature=extractor) > 1e-2


def test_fid_metric_streams_like_the_function():
    feature = LinearFeatures(4, 3)
    real = torch.randint(0, 256, (40, 1, 2, 2), dtype=torch.uint8)
    fake = torch.randint(0, 128, (30, 1, 2, 2), dtype=torch.uint8)
    metric = fid_metric(feature, reset_real_features=False)
    for batch in real.split(7):
        metric.update(batch, real=True)
    metric.update(fake, real=False)
    first = float(metric.compute())
    assert first == pytest.approx(fid(real, fake, feature=feature), rel=1e-9)
    metric.reset()  # keeps the real statistics
    metric.update(fake, real=False)
    assert float(metric.compute()) == pytest.approx(first, rel=1e-9)


def test_fid_with_custom_features_does_not_need_torch_fidelity():
    if importlib.util.find_spec("torch_fidelity") is not None:
        pytest.skip("torch-fidelity is installed here; this checks the environment without it")
    x = torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8)
    assert math.isfinite(fid(x, x.flip(0)[:8], feature=LinearFeatures(4, 2)))


def test_fid_rejects_bad_inputs():
    feature = LinearFeatures(4, 2)
    x = torch.randint(0, 256, (10, 1, 2, 2), dtype=torch.uint8)
    with pytest.raises(TypeError, match="uint8"):
        fid(x.float() / 255, x, feature=feature)
    with pytest.raises(ValueError, match="at least 2"):
        fid(x, x[:1], feature=feature)
    with pytest.raises(ValueError, match="4 dimensions"):
        fid(x[:, 0], x, feature=feature)
    with pytest.raises(TypeError, match="num_features"):
        fid(x, x, feature=nn.Identity())
    with pytest.raises(TypeError, match="nn.Module"):
        fid(x, x, feature=lambda images: images)


# ---------------------------------------------------------------------------------------------------- Inception


def test_inception_without_torch_fidelity_says_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(fid_module, "_torch_fidelity_available", lambda: False)
    with pytest.raises(ModuleNotFoundError) as error:
        inception_feature(tmp_path / "nowhere")
    message = str(error.value)
    for needed in ("torch-fidelity", "pip install", INCEPTION_WEIGHTS_NAME, INCEPTION_ENV_VAR, "weights_path"):
        assert needed in message
    # With the weights present, the message says so and asks only for the package.
    (tmp_path / INCEPTION_WEIGHTS_NAME).write_bytes(b"not really weights")
    with pytest.raises(ModuleNotFoundError, match="weights were found"):
        inception_feature(tmp_path)


def test_inception_without_weights_says_where_to_put_them(monkeypatch, tmp_path):
    monkeypatch.setattr(fid_module, "_torch_fidelity_available", lambda: True)
    monkeypatch.delenv(INCEPTION_ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError) as error:
        inception_feature(tmp_path)
    message = str(error.value)
    assert INCEPTION_WEIGHTS_NAME in message and str(tmp_path) in message and INCEPTION_ENV_VAR in message
    with pytest.raises(ValueError, match="dims"):
        inception_feature(tmp_path, dims=100)


def test_find_inception_weights_honours_argument_and_environment(monkeypatch, tmp_path):
    weights = tmp_path / INCEPTION_WEIGHTS_NAME
    weights.write_bytes(b"x")
    assert find_inception_weights(tmp_path)[0] == weights
    assert find_inception_weights(weights)[0] == weights
    monkeypatch.setenv(INCEPTION_ENV_VAR, str(weights))
    assert find_inception_weights()[0] == weights
    monkeypatch.setenv(INCEPTION_ENV_VAR, str(tmp_path / "elsewhere"))
    found, tried = find_inception_weights()
    assert found is None and tried == [tmp_path / "elsewhere" / INCEPTION_WEIGHTS_NAME]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fid_and_codebook_usage_on_cuda():
    from vqgen.classifier import FeatureClassifier

    extractor = FeatureClassifier(widths=[4, 8]).cuda().feature_extractor()
    x = torch.randint(0, 256, (16, 1, 8, 8), dtype=torch.uint8)  # on the CPU: fid moves batches
    assert fid(x, x, feature=extractor) == pytest.approx(0.0, abs=1e-4)
    usage = CodebookUsage(num_codes=4).cuda()
    usage.update(torch.tensor([0, 1, 1], device="cuda"))
    assert float(usage.compute()["usage"]) == 0.5


def test_code_statistics_is_the_perplexity_of_the_metrics_module():
    """One computation: the quantizers' per-batch statistics and the dataset-level metric agree."""
    from vqgen.metrics import CodebookUsage, code_statistics, perplexity

    counts = torch.tensor([3, 0, 1, 4, 0, 0, 2, 6])
    per_batch, usage = code_statistics(counts)
    assert per_batch.dtype == torch.float32 and float(usage) == 5 / 8
    torch.testing.assert_close(per_batch.double(), perplexity(counts), rtol=1e-6, atol=0)
    metric = CodebookUsage(num_codes=8)
    metric.update(torch.repeat_interleave(torch.arange(8), counts))
    torch.testing.assert_close(metric.compute()["perplexity"], perplexity(counts))
    empty = torch.zeros(8, dtype=torch.long)
    assert float(code_statistics(empty)[0]) == 1.0 and torch.isnan(perplexity(empty))
