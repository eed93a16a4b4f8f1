"""The named configurations: defined once, built by name, their budgets fresh copies that a caller cannot corrupt."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen import TwoStageModel


@pytest.mark.parametrize("name", vqgen.presets.names())
def test_every_preset_builds_and_its_budget_is_a_fresh_copy(name):
    preset = vqgen.presets.get(name)
    torch.manual_seed(0)
    model = TwoStageModel.from_preset(name)
    torch.manual_seed(0)
    same = TwoStageModel.from_config(preset.config())
    assert model.to_spec() == same.to_spec()
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    budget = preset.budget
    budget["stage1"]["max_seconds"] = -1  # the caller's copy; the preset keeps its own
    assert preset.budget["stage1"] != budget["stage1"] and set(preset.budget) == {"stage1", "stage2"}
    with pytest.raises(TypeError):
        preset.model["prior"]["num_layers"] = 99  # read-only: nothing can change a preset in place
    assert preset.summary and preset.temperature > 0


def test_in_channels_builds_the_preset_for_colour_images():
    model = TwoStageModel.from_preset("mnist-small", in_channels=3)
    assert model.vqvae.in_channels == 3 and vqgen.presets.get("mnist-small").model["encoder"]["in_channels"] == 1


def test_the_readme_preset_is_the_readmes_configuration():
    """``mnist-small`` is what the README describes: 7x7 codes, 512 EMA codes, the small class-conditional gated prior,
    5 + 15 minutes, sampled at temperature 0.8."""
    preset = vqgen.presets.get("mnist-small")
    model = TwoStageModel.from_preset("mnist-small")
    assert model.vqvae.code_shape((1, 28, 28)) == (7, 7) and model.num_codes == 512
    assert type(model.vqvae.quantizer).__name__ == "EMAVectorQuantizer"
    assert model.prior.num_classes == 10 and type(model.prior).__name__ == "GatedPixelCNN"
    assert preset.budget == {"stage1": {"max_seconds": 300}, "stage2": {"max_seconds": 900}}
    assert preset.temperature == 0.8


def test_an_unknown_preset_lists_the_names():
    with pytest.raises(ValueError, match=r"unknown preset 'mnist'; the presets are \['cifar10-small', 'digits-demo'"):
        TwoStageModel.from_preset("mnist")
