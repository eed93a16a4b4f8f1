"""Masked PixelCNN specifics: the blind spot, colour masks, inputs (IndexInput), conditioning, arguments, learning.

The registry-wide guarantees (causality by gradients, cached == naive, save/load) live in test_contract.py.
"""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen.priors.embedding import IndexInput, resolve_input_mode
from vqgen.priors.gated_pixelcnn import GatedPixelCNN
from vqgen.priors.pixelcnn import PixelCNN


def tiny(**overrides) -> PixelCNN:
    return vqgen.build("prior", "pixelcnn", **{**PixelCNN.tiny_config(), **overrides}).eval()


def input_gradient(prior, x: torch.Tensor, i: int, j: int) -> torch.Tensor:
    """``(H, W)``: how much the logits at ``(i, j)`` (channel 0) depend on each position's input features."""
    captured = []

    def as_leaf(module, args, output):
        captured.append(output.detach().requires_grad_(True))
        return captured[-1]

    handle = prior.input.register_forward_hook(as_leaf)
    try:
        logits = prior(x)
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[:, :, 0, i, j].pow(2).sum(), captured[0])
    return grad.abs().sum((0, 1))


def test_blind_spot_of_masked_pixelcnn_and_none_in_gated():
    """With 3x3 kernels, the masked PixelCNN never sees (i-1, j+2), however deep; the Gated PixelCNN does.

    A masked conv reaches one column further right only by going one row up, so the row above is seen up to
    ``first_kernel_size // 2`` columns to the right (figure 1 of arXiv:1606.05328).
    """
    x = torch.randint(0, 16, (4, 1, 7, 8))
    common = dict(num_categories=16, first_kernel_size=3, kernel_size=3, num_layers=5, head_channels=16, embed_dim=4)
    masked = vqgen.build("prior", "pixelcnn", hidden_channels=12, **common).eval()
    gated = vqgen.build("prior", "gated_pixelcnn", hidden_channels=8, **common).eval()
    i, j = 4, 3
    seen_masked, seen_gated = input_gradient(masked, x, i, j), input_gradient(gated, x, i, j)
    assert seen_masked[i - 1, j + 1] > 0 and seen_gated[i - 1, j + 1] > 0
    assert seen_masked[i - 1, j + 2] == 0 and seen_masked[i - 1, j + 4] == 0 and seen_masked[i - 2, j + 3] == 0
    assert seen_gated[i - 1, j + 2] > 0 and seen_gated[i - 1, j + 4] > 0 and seen_gated[i - 2, j + 3] > 0
    # the gated vertical stack grows by k // 2 columns per layer: 5 layers cover the whole row above
    assert bool((seen_gated[:i] > 0).all())


def test_first_kernel_size_sets_how_far_right_the_row_above_is_seen():
    x = torch.randint(0, 16, (4, 1, 6, 10))
    prior = tiny(first_kernel_size=7, num_layers=3)
    seen = input_gradient(prior, x, 3, 2)
    assert seen[2, 5] > 0 and seen[2, 6] == 0


@pytest.mark.parametrize("order", ["sequential", "parallel"])
def test_colour_order_decides_what_the_current_pixel_shows(order):
    """Sequential: B at (i, j) depends on R and G at (i, j); parallel: on nothing at (i, j)."""
    prior = tiny(channels=3, channel_order=order)
    x = torch.randint(0, 16, (1, 3, 4, 4))
    y = x.clone()
    y[0, :2, 2, 1] = (y[0, :2, 2, 1] + 5) % 16  # change R and G at (2, 1)
    with torch.no_grad():
        changed = not torch.equal(prior(x)[0, :, 2, 2, 1], prior(y)[0, :, 2, 2, 1])
        assert torch.equal(prior(x)[0, :, 0, 2, 1], prior(y)[0, :, 0, 2, 1])  # R never sees its own pixel
    assert changed == (order == "sequential")


def test_sampling_is_reproducible_and_uses_every_channel():
    prior = tiny(channels=3, num_categories=5)
    first = prior.sample(4, (3, 3), generator=torch.Generator().manual_seed(0))
    second = prior.sample(4, (3, 3), generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, second) and first.shape == (4, 3, 3, 3)
    assert len(first.unique()) > 1


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_cached_sampling_never_runs_a_full_forward_pass(name, monkeypatch):
    cls = PixelCNN if name == "pixelcnn" else GatedPixelCNN
    prior = vqgen.build("prior", name, **{**cls.tiny_config(), "channels": 3})
    expected = prior.sample(2, (3, 4), generator=torch.Generator().manual_seed(0), method="naive")

    def no_full_pass(*args, **kwargs):
        raise AssertionError("cached sampling ran a full forward pass")

    monkeypatch.setattr(prior, "forward", no_full_pass)
    assert torch.equal(prior.sample(2, (3, 4), generator=torch.Generator().manual_seed(0)), expected)


def test_a_stepper_can_be_reused_for_a_second_grid():
    prior = tiny()
    stepper = prior.incremental(None, (3, 4))
    x = torch.randint(0, 16, (2, 1, 3, 4))
    full = prior(x)
    for _ in range(2):
        for i in range(3):
            for j in range(4):
                torch.testing.assert_close(stepper.logits(x, i, j, 0), full[:, :, 0, i, j])


def test_class_and_vector_conditions_change_the_logits():
    prior = tiny(num_classes=3, cond_dim=2)
    with torch.no_grad():
        for parameter in prior.cond_bias.parameters():
            parameter.normal_()
    x = torch.randint(0, 16, (2, 1, 4, 4))
    by_class = prior(x, torch.tensor([0, 1]))
    assert not torch.allclose(by_class[0], prior(x, torch.tensor([1, 1]))[0])
    by_vector = prior(x, torch.randn(2, 2))
    assert by_vector.shape == by_class.shape and not torch.allclose(by_vector, by_class)


# ------------------------------------------------------------------------------------------------------ inputs


def test_input_mode_rule_scale_for_pixels_embed_for_codes():
    assert resolve_input_mode("auto", 256) == "scale"
    assert resolve_input_mode("auto", 512) == "embed"
    assert resolve_input_mode("embed", 256) == "embed"
    assert tiny(num_categories=256).input.mode == "scale"
    assert tiny().input.mode == "embed"
    with pytest.raises(ValueError, match="input_mode must be one of"):
        resolve_input_mode("onehot", 10)


def test_scaled_inputs_lie_in_unit_interval_and_follow_the_dtype():
    layer = IndexInput(256, 3, "scale")
    x = torch.tensor([0, 255, 51]).view(1, 3, 1, 1)
    assert layer(x).view(-1).tolist() == pytest.approx([0.0, 1.0, 0.2])
    assert layer.double()(x).dtype == torch.float64


def test_embedded_inputs_keep_each_colour_channel_contiguous():
    layer = IndexInput(10, 3, "embed", embed_dim=4)
    x = torch.randint(0, 10, (2, 3, 5, 5))
    features = layer(x)  # (2, 12, 5, 5)
    assert features.shape == (2, 12, 5, 5)
    for c in range(3):
        table = layer.embedding.weight[c * 10 : (c + 1) * 10]  # channel c's own table
        torch.testing.assert_close(features[:, 4 * c : 4 * (c + 1)], table[x[:, c]].permute(0, 3, 1, 2))
    torch.testing.assert_close(layer.embed_values(x[:, 1:, 2, 3], 1), features[:, 4:, 2, 3])


def test_embedding_starts_from_a_codebook():
    prior = tiny(embed_dim=4, num_categories=6)
    codebook = torch.randn(6, 4)
    prior.init_embedding_from(codebook)
    x = torch.arange(6).view(1, 1, 2, 3)
    torch.testing.assert_close(prior.input(x)[0], codebook.T.reshape(4, 2, 3))
    with pytest.raises(ValueError, match=r"codebook must have shape \(6, 4\)"):
        prior.init_embedding_from(torch.randn(6, 5))
    with pytest.raises(ValueError, match="input_mode='embed'"):
        tiny(num_categories=256).init_embedding_from(torch.randn(256, 4))


# --------------------------------------------------------------------------------------------- construction


def test_defaults_follow_the_paper_and_tiny_config_is_small():
    prior = PixelCNN()
    assert prior.first.kernel_size == (7, 7) and len(prior.blocks) == 15 and prior.num_categories == 256
    assert sum(p.numel() for p in tiny().parameters()) < 20_000
    assert isinstance(vqgen.build("prior", "pixelcnn"), PixelCNN)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        (dict(channel_order="random"), "channel_order must be one of"),
        (dict(kernel_size=4), "kernel_size must be odd"),
        (dict(first_kernel_size=0), "first_kernel_size must be > 0"),
        (dict(hidden_channels=7), "hidden_channels must be even"),
        (dict(channels=3, hidden_channels=4), "hidden_channels // 2 >= 3"),
        (dict(num_categories=1), "num_categories must be >= 2"),
        (dict(num_layers=-1), "num_layers must be an int >= 0"),
        (dict(num_classes=0), "num_classes must be > 0"),
        (dict(input_mode="onehot"), "input_mode must be one of"),
    ],
)
def test_bad_arguments_raise(overrides, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny(**overrides)


@pytest.mark.parametrize("name", ["pixelcnn", "gated_pixelcnn"])
def test_learns_a_deterministic_pattern(name):
    """60 plain gradient steps on one repeated grid lower its bits/dim (the model can learn at all)."""
    cls = PixelCNN if name == "pixelcnn" else GatedPixelCNN
    prior = vqgen.build("prior", name, **{**cls.tiny_config(), "num_categories": 4}).train()
    x = (torch.arange(16).view(1, 1, 4, 4) % 4).repeat(8, 1, 1, 1)
    before = prior.bits_per_dim(x).mean().item()
    for _ in range(60):
        loss = prior.bits_per_dim(x).mean()
        prior.zero_grad()
        loss.backward()
        with torch.no_grad():
            for parameter in prior.parameters():
                parameter -= 0.5 * parameter.grad
    assert prior.bits_per_dim(x).mean().item() < 0.1 * before  # from ~2 bits to a small fraction of one
