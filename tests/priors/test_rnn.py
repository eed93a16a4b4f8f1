"""The naive raster RNN prior: shapes, exact causality, cached == naive sampling, conditioning, save/load."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

import vqgen
from vqgen.priors.rnn import RNNPrior


def tiny(**overrides) -> RNNPrior:
    return vqgen.build("prior", "rnn", **{**RNNPrior.tiny_config(), **overrides})


CASES = [
    dict(num_categories=256, channels=1),
    dict(num_categories=7, channels=3),
    dict(num_categories=10, channels=1, cell="gru", num_classes=4),
    dict(num_categories=256, channels=3, cond_dim=5, num_layers=2),
]


def condition(prior: RNNPrior, n: int):
    if prior.num_classes:
        return torch.arange(n) % prior.num_classes
    if prior.cond_dim:
        return torch.randn(n, prior.cond_dim)
    return None


@pytest.mark.parametrize("config", CASES)
def test_forward_shape_and_log_prob(config):
    prior = tiny(**config)
    x = torch.randint(0, prior.num_categories, (2, prior.channels, 3, 4))
    cond = condition(prior, 2)
    logits = prior(x, cond)
    assert logits.shape == (2, prior.num_categories, prior.channels, 3, 4)
    assert logits.dtype == torch.float32
    bpd = prior.bits_per_dim(x, cond)
    assert bpd.shape == (2,) and bool(torch.isfinite(bpd).all())


@pytest.mark.parametrize("config", CASES)
def test_exactly_causal_by_gradients(config):
    """The logits of value t depend on every value before t in (i, j, c) order and on none from t on."""
    prior = tiny(**config)
    channels, height, width = prior.channels, 3, 4
    x = torch.randint(0, prior.num_categories, (2, channels, height, width))
    cond = condition(prior, 2)
    features = {}

    def keep(module, args, output):
        features["f"] = output.detach().requires_grad_()
        return features["f"]

    handle = prior.input.register_forward_hook(keep)
    try:
        logits = prior(x, cond)
    finally:
        handle.remove()
    length = channels * height * width
    for t in [0, 1, length // 2, length - 1]:
        i, rest = divmod(t, width * channels)
        j, c = divmod(rest, channels)
        (grad,) = torch.autograd.grad(logits[:, :, c, i, j].sum(), features["f"], retain_graph=True)
        grad = rearrange(grad, "b (c e) h w -> (h w c) (b e)", c=channels).abs().sum(1)  # (L,)
        assert not bool(grad[t:].any()), f"value {t} sees itself or later values"
        assert bool((grad[:t] > 0).all()), f"value {t} ignores some earlier values"


@pytest.mark.parametrize("config", CASES)
def test_cached_sampling_equals_naive(config):
    prior = tiny(**config)
    cond = condition(prior, 3)
    samples = {}
    for method in ("cached", "naive"):
        generator = torch.Generator().manual_seed(5)
        samples[method] = prior.sample(3, (3, 4), cond, method=method, generator=generator)
    assert samples["cached"].shape == (3, prior.channels, 3, 4)
    assert torch.equal(samples["cached"], samples["naive"])


def test_stepper_logits_match_forward():
    prior = tiny(num_categories=7, channels=3).eval()
    x = torch.randint(0, 7, (2, 3, 2, 3))
    expected = prior(x)
    stepper = prior.incremental(None, (2, 3))
    for _ in range(2):  # a stepper can be reused: a new grid starts from a fresh state
        for i in range(2):
            for j in range(3):
                for c in range(3):
                    torch.testing.assert_close(stepper.logits(x, i, j, c), expected[:, :, c, i, j])


def test_condition_changes_the_logits():
    prior = tiny(num_categories=5, num_classes=3)
    x = torch.randint(0, 5, (1, 1, 2, 2)).expand(2, -1, -1, -1)
    logits = prior(x, torch.tensor([0, 2]))
    assert not torch.allclose(logits[0], logits[1])


def test_save_load_round_trip(tmp_path):
    prior = tiny(num_categories=9, channels=3, cell="gru", num_classes=2, input_mode="embed")
    prior.save_pretrained(tmp_path / "rnn")
    loaded = vqgen.from_pretrained(tmp_path / "rnn")
    assert isinstance(loaded, RNNPrior) and dict(loaded.config) == dict(prior.config)
    x = torch.randint(0, 9, (2, 3, 3, 3))
    cond = torch.tensor([0, 1])
    torch.testing.assert_close(loaded(x, cond), prior.eval()(x, cond))


def test_input_mode_defaults_follow_the_number_of_categories():
    assert tiny(num_categories=256).input.mode == "scale"
    assert tiny(num_categories=512).input.mode == "embed"


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="cell"):
        tiny(cell="transformer")
    prior = tiny(num_categories=4)
    with pytest.raises(TypeError, match="integer"):
        prior(torch.rand(1, 1, 2, 2))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        prior(torch.full((1, 1, 2, 2), 4))
    with pytest.raises(ValueError, match="unconditional"):
        prior(torch.zeros(1, 1, 2, 2, dtype=torch.long), torch.tensor([0]))
