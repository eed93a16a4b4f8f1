"""The sampling options are defined once (SamplingOptions) and every entry point samples under inference mode."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.sampling import SamplingOptions


def _prior():
    return vqgen.build("prior", "gated_pixelcnn", **{**vqgen.registry("prior").get("gated_pixelcnn").tiny_config()})


def test_options_validate_once_with_clear_errors():
    with pytest.raises(ValueError, match="temperature must be > 0"):
        SamplingOptions(temperature=0)
    with pytest.raises(ValueError, match="method must be one of"):
        SamplingOptions(method="fast")
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        SamplingOptions(generator=3)
    with pytest.raises(TypeError, match=r"unknown sampling options \['temprature'\]"):
        SamplingOptions.of(temprature=0.5)
    with pytest.raises(TypeError, match=r"unknown sampling options"):
        _prior().sample(2, (3, 3), temprature=0.5)


def test_options_object_and_keywords_are_the_same_draw():
    prior = _prior().eval()
    options = SamplingOptions(temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(1))
    a = prior.sample(2, (3, 4), options=options)
    b = prior.sample(2, (3, 4), temperature=0.8, top_k=5, generator=torch.Generator().manual_seed(1))
    c = prior.sample(
        2, (3, 4), options=SamplingOptions(temperature=0.8), top_k=5, generator=torch.Generator().manual_seed(1)
    )
    assert torch.equal(a, b) and torch.equal(a, c)


def test_sampling_runs_under_inference_mode(monkeypatch):
    prior = _prior().eval()
    seen = []
    forward = type(prior).forward

    def spy(self, x, cond=None):
        seen.append(torch.is_inference_mode_enabled())
        return forward(self, x, cond)

    monkeypatch.setattr(type(prior), "forward", spy)
    prior.sample(1, (2, 2), method="naive")
    assert seen and all(seen)


def test_samples_are_ordinary_tensors_usable_in_autograd():
    """The loop runs in inference mode, but what it returns can be trained on (e.g. the prior's own samples)."""
    prior = _prior()
    samples = prior.sample(2, (3, 3), generator=torch.Generator().manual_seed(0))
    assert not samples.is_inference()
    (-prior.log_prob(samples).mean()).backward()
    assert any(p.grad is not None for p in prior.parameters())
    samples[0, 0, 0, 0] = 1  # in-place edits too


def test_known_positions_counts_the_raster_prefix_every_example_keeps():
    from vqgen.prefix import known_positions

    mask = torch.zeros(2, 3, 3, 4, dtype=torch.bool)
    assert known_positions(None) == 0 and known_positions(mask) == 0
    mask[:, :, 0] = True  # the first row everywhere
    mask[:, :, 1, :2] = True  # and two positions of the second
    assert known_positions(mask) == 6
    mask[1, 2, 1, 1] = False  # one channel of one example not kept: the prefix ends before that position
    assert known_positions(mask) == 5
    mask[:, :, 2, 3] = True  # a kept position after a gap is not part of the prefix
    assert known_positions(mask) == 5


def test_a_stepper_with_prefill_takes_the_prefix_in_one_call_and_draws_the_same():
    """The loop hands the known positions to ``prefill`` once and asks ``logits`` only for the later ones; the seeded
    draws are those of a stepper without ``prefill`` (fed the prefix one value at a time)."""
    prior = vqgen.build("prior", "rnn", num_categories=7, channels=3, hidden_size=8, num_layers=1, embed_dim=4).eval()
    prefix = torch.randint(0, 7, (2, 3, 2, 4), generator=torch.Generator().manual_seed(0))  # (n, C, rows, W)
    stepper_class = type(prior.incremental(None, (3, 4)))
    calls: dict[str, list] = {"prefill": [], "logits": []}
    prefill, logits = stepper_class.prefill, stepper_class.logits

    def spy_prefill(self, x, positions):
        calls["prefill"].append(positions)
        return prefill(self, x, positions)

    def spy_logits(self, x, i, j, c):
        calls["logits"].append((i, j, c))
        return logits(self, x, i, j, c)

    def sample():
        return prior.sample(2, (3, 4), prefix=prefix, generator=torch.Generator().manual_seed(3))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stepper_class, "prefill", spy_prefill)
        patch.setattr(stepper_class, "logits", spy_logits)
        with_prefill = sample()
        assert calls["prefill"] == [8] and calls["logits"][0] == (2, 0, 0) and len(calls["logits"]) == 4 * 3
        patch.delattr(stepper_class, "prefill")
        without_prefill = sample()
    assert torch.equal(with_prefill, without_prefill) and torch.equal(with_prefill[:, :, :2], prefix)
