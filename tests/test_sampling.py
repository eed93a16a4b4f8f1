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
