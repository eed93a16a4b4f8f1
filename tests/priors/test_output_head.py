"""The conv priors' output head is a named module; checkpoints with the old `nn.Sequential` head still load."""

from __future__ import annotations

import pytest
import torch

import vqgen


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_head_has_named_layers_and_loads_old_keys(name):
    cls = vqgen.registry("prior").get(name)
    prior = vqgen.build("prior", name, **cls.tiny_config()).eval()
    assert {"head.hidden.weight", "head.out.weight"} <= set(prior.state_dict())
    with torch.no_grad():
        for parameter in prior.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    legacy = {
        k.replace("head.hidden.", "head.1.").replace("head.out.", "head.3."): v for k, v in prior.state_dict().items()
    }
    assert "head.1.weight" in legacy and "head.3.bias" in legacy
    fresh = vqgen.build("prior", name, **cls.tiny_config()).eval()
    fresh.load_state_dict(legacy)  # strict
    x = torch.randint(0, prior.num_categories, (2, 1, 3, 4))
    assert torch.equal(fresh(x), prior(x))


def test_old_sampling_module_path_warns_and_re_exports():
    import importlib
    import sys

    sys.modules.pop("vqgen.priors.sampling", None)
    with pytest.warns(DeprecationWarning, match="vqgen.sampling"):
        old = importlib.import_module("vqgen.priors.sampling")
    assert old.sample is vqgen.sampling.sample and old.SamplingOptions is vqgen.sampling.SamplingOptions
