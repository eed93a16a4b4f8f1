"""Causal masks (arXiv:1601.06759, figures 2 and 4) and masked convolutions that cannot leak."""

from __future__ import annotations

import pytest
import torch

from vqgen.priors.layers import MaskedConv2d, step_matrix
from vqgen.priors.masks import causal_mask, channel_groups


def test_spatial_pattern_of_mask_a_and_b():
    a = causal_mask(3, "A", 1, 1)[0, 0]
    b = causal_mask(3, "B", 1, 1)[0, 0]
    expected = torch.tensor([[1.0, 1, 1], [1, 0, 0], [0, 0, 0]])
    assert torch.equal(a, expected)
    expected[1, 1] = 1
    assert torch.equal(b, expected)


def test_larger_kernel_sees_rows_above_and_left_only():
    mask = causal_mask((5, 7), "B", 2, 3)
    assert mask.shape == (3, 2, 5, 7)
    assert bool((mask[:, :, :2] == 1).all())  # rows above the centre
    assert bool((mask[:, :, 2, :3] == 1).all()) and bool((mask[:, :, 2, 4:] == 0).all())
    assert bool((mask[:, :, 3:] == 0).all())  # rows below


def test_colour_groups_at_the_centre_follow_figure_4():
    """R sees no current channel (A) or R (B); G sees R (A) or R, G (B); B sees R, G (A) or all (B)."""
    for mask_type, expected in (
        ("A", [[0, 0, 0], [1, 0, 0], [1, 1, 0]]),
        ("B", [[1, 0, 0], [1, 1, 0], [1, 1, 1]]),
    ):
        centre = causal_mask(3, mask_type, 6, 9, colour_groups=3)[:, :, 1, 1]  # (out, in)
        by_group = centre.view(3, 3, 3, 2).amax((1, 3))  # (out group, in group)
        assert torch.equal(by_group, torch.tensor(expected, dtype=torch.float)), mask_type
        # every tap before the centre is open to every group
        assert bool((causal_mask(3, mask_type, 6, 9, colour_groups=3)[:, :, 1, 0] == 1).all())


def test_uneven_groups_are_contiguous_and_cover_all_channels():
    groups = channel_groups(8, 3)
    assert groups.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert channel_groups(12, 3).tolist() == [0] * 4 + [1] * 4 + [2] * 4  # input groups of E = 4 per channel


def test_center_argument_for_a_horizontal_stack_kernel():
    mask = causal_mask((1, 3), "A", 1, 1, center=(0, 2))[0, 0]
    assert mask.tolist() == [[1.0, 1.0, 0.0]]
    assert causal_mask((1, 3), "B", 1, 1, center=(0, 2))[0, 0].tolist() == [[1.0, 1.0, 1.0]]


def test_invalid_arguments_raise():
    with pytest.raises(ValueError, match="mask_type"):
        causal_mask(3, "C", 1, 1)
    with pytest.raises(ValueError, match="colour_groups=3"):
        causal_mask(3, "A", 2, 8, colour_groups=3)
    with pytest.raises(ValueError, match="center"):
        causal_mask(3, "A", 1, 1, center=(3, 0))
    with pytest.raises(ValueError, match="kernel_size"):
        causal_mask((3, 3, 3), "A", 1, 1)


def test_masked_weights_never_leak_through_training():
    """The mask is applied in forward, so optimiser steps on the raw weight cannot open a masked tap."""
    conv = MaskedConv2d(3, 6, 5, "A", colour_groups=3)
    for _ in range(3):  # plain SGD with weight decay by hand: decay moves every raw weight, masked or not
        loss = conv(torch.randn(2, 3, 6, 6)).pow(2).mean()
        conv.zero_grad()
        loss.backward()
        assert bool((conv.weight.grad[conv.mask == 0] == 0).all())
        with torch.no_grad():
            for parameter in conv.parameters():
                parameter -= 0.5 * (parameter.grad + 0.1 * parameter)
    assert bool((conv.weight[conv.mask == 0] != 0).all())  # the raw weights moved ...
    assert bool((conv.masked_weight()[conv.mask == 0] == 0).all())
    # changes after the position, and to its last colour channel (seen by no group under mask A), never reach it
    x = torch.randn(1, 3, 6, 6)
    y = x.clone()
    y[:, 2, 3, 3] += 10.0
    y[:, :, 3, 4:] += 10.0
    y[:, :, 4:] += 10.0
    assert torch.equal(conv(x)[:, :, 3, 3], conv(y)[:, :, 3, 3])
    # while the current R reaches the G and B outputs (channels 2..5), not the R outputs (0, 1)
    y = x.clone()
    y[:, 0, 3, 3] += 10.0
    changed = (conv(x)[0, :, 3, 3] != conv(y)[0, :, 3, 3]).tolist()
    assert changed == [False, False, True, True, True, True]


def test_masked_conv_keeps_the_spatial_size_with_any_centre():
    conv = MaskedConv2d(2, 4, (1, 3), "B", center=(0, 2))
    assert conv(torch.randn(1, 2, 5, 7)).shape == (1, 4, 5, 7)
    assert conv.pads == (2, 0, 0, 0)


def test_step_matrix_reproduces_the_convolution_at_one_position():
    conv = MaskedConv2d(3, 5, 3, "B")
    x = torch.randn(2, 3, 6, 6)
    full = conv(x)[:, :, 3, 2]  # (B, out)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (B, H+2, W+2, in) channels-last
    window = padded[:, 3:5, 2:5].reshape(2, -1)  # causal rows i-1..i, columns j-1..j+1
    step = window @ step_matrix(conv.masked_weight(), rows=2) + conv.bias
    torch.testing.assert_close(step, full)
