"""PixelCNN++ specifics: shifted convolutions, no blind spot, the head rule, bad input, learning, bf16, codes.

The registry-wide guarantees (causality by gradients, cached == naive, save/load) live in test_contract.py, which
builds this prior with K = 11 ordered levels: the mixture head. The softmax head (codes) passes the same contract here.
"""

from __future__ import annotations

import inspect
import itertools

import pytest
import torch

import vqgen
import vqgen.testing
from vqgen import TwoStageModel
from vqgen.likelihoods import Categorical
from vqgen.logistic_mixture import DiscretizedLogisticMixture
from vqgen.priors import build_code_prior
from vqgen.priors.pixelcnn_pp import CPU_CONFIG, PixelCNNpp
from vqgen.priors.pixelcnn_pp_layers import ShiftedConv2d
from vqgen.registry import registry


def tiny(**overrides) -> PixelCNNpp:
    return vqgen.build("prior", "pixelcnn_pp", **{**PixelCNNpp.tiny_config(), **overrides}).eval()


# ------------------------------------------------------------------------------------------------- layers


CONVS = {
    "down": dict(direction="down"),
    "down-right": dict(direction="down_right"),
    "down-shift": dict(direction="down", kernel_size=(2, 3), shift=(1, 0)),
    "right-shift": dict(direction="down_right", kernel_size=(2, 1), shift=(0, 1)),
    "nin": dict(direction="down", kernel_size=(1, 1)),
    "strided-down": dict(direction="down", stride=2),
    "strided-down-right": dict(direction="down_right", stride=2),
    "transposed-down": dict(direction="down", stride=2, transposed=True),
    "transposed-down-right": dict(direction="down_right", stride=2, transposed=True),
}


@pytest.mark.parametrize("size", [(4, 5), (7, 6), (1, 1)])
@pytest.mark.parametrize("conv", CONVS)
def test_taps_and_step_matrix_give_the_convolution(conv, size):
    """What the cached stepper computes from gathered windows equals the layer's forward pass at every position."""
    layer = ShiftedConv2d(3, 4, **CONVS[conv])
    height, width = size
    if layer.transposed:
        in_size, out_size = ((height + 1) // 2, (width + 1) // 2), size
    else:
        in_size, out_size = size, ((height - 1) // layer.stride + 1, (width - 1) // layer.stride + 1)
    x = torch.randn(2, 3, *in_size)
    expected = layer(x, out_size)  # (2, 4, H, W)
    flat = torch.cat([x.flatten(2).transpose(1, 2), torch.zeros(2, 1, 3)], dim=1)  # (2, N + 1, 3): N = nothing
    taps = layer.taps(in_size, out_size)  # (H W, kh kw)
    windows = flat[:, taps].flatten(2)  # (2, H W, kh kw 3)
    got = (windows @ layer.step_matrix() + layer.bias).transpose(1, 2).reshape(2, 4, *out_size)
    torch.testing.assert_close(got, expected)


def test_first_layers_read_only_positions_before_their_own():
    """The first layers on the input: ``u`` reads the two rows above (columns ``j-1 .. j+1``), ``ul`` the row above
    and the position to the left. Every later layer reads its own position of a stream that is already shifted."""
    prior = tiny()
    x = torch.zeros(1, prior.first_u.weight.shape[1], 5, 5, requires_grad=True)
    reads = {}
    for name in ("first_u", "first_ul_above", "first_ul_left"):
        (grad,) = torch.autograd.grad(getattr(prior, name)(x, (5, 5))[0, :, 2, 2].sum(), x)
        reads[name] = {tuple(p) for p in grad.abs().sum((0, 1)).nonzero().tolist()}
    assert reads["first_u"] == {(r, c) for r in (0, 1) for c in (1, 2, 3)}
    assert reads["first_ul_above"] | reads["first_ul_left"] == {(1, 1), (1, 2), (1, 3), (2, 1)}


# ----------------------------------------------------------------------------------------- the whole network


def test_no_blind_spot_the_last_value_sees_every_row_above():
    """Unlike the masked PixelCNN (blind to a wedge up and to the right), the last value of an 8x8 grid sees every
    position of every row above it; of its own row, the positions to its left that the down-right stream reaches."""
    prior = tiny()
    captured = []

    def as_leaf(module, args, out):
        captured.append(out.detach().requires_grad_())
        return captured[-1]

    handle = prior.input.register_forward_hook(as_leaf)
    try:
        logits = prior.logits(torch.randint(0, 16, (2, 1, 8, 8)))
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[:, :, 0, 7, 7].sum(), captured[0])
    seen = grad.abs().sum((0, 1)) > 0  # (8, 8)
    assert bool(seen[:7].all()) and bool(seen[7, 4:7].all()) and not bool(seen[7, 7])


def test_defaults_are_the_papers_and_the_cpu_configuration_is_small():
    defaults = {k: p.default for k, p in inspect.signature(PixelCNNpp.__init__).parameters.items()}
    assert (defaults["num_filters"], defaults["num_resnet"], defaults["num_mixtures"]) == (160, 5, 10)
    assert defaults["dropout"] == 0.5 and defaults["num_categories"] == 256 and defaults["input_mode"] == "scale"
    prior = vqgen.build("prior", "pixelcnn_pp", channels=3, **CPU_CONFIG)
    assert sum(p.numel() for p in prior.parameters()) < 1_000_000
    assert len(prior.blocks) == 2 * (3 + 1 + 2 * 2)  # up: 3 levels x 1; down: 1 + 2 + 2, per stream
    assert sum(op.kind == "gate" for op in prior.ops) == len(prior.blocks)


# ------------------------------------------------------------------------------------------------ the head


def test_head_auto_is_the_mixture_for_ordered_values_and_the_softmax_for_codes():
    pixels = vqgen.build("prior", "pixelcnn_pp", channels=3, **CPU_CONFIG)
    assert pixels.head_kind == "mixture" and isinstance(pixels.likelihood, DiscretizedLogisticMixture)
    x = torch.randint(0, 256, (2, 3, 4, 4))
    assert pixels(x).shape == (2, 3, 3, CPU_CONFIG["num_mixtures"], 4, 4)
    assert pixels.logits(x).shape == (2, 256, 3, 4, 4)
    codes = build_code_prior({"name": "pixelcnn_pp", **CPU_CONFIG}, num_codes=512)
    assert codes.config["input_mode"] == "embed" and codes.head_kind == "softmax"
    assert isinstance(codes.likelihood, Categorical)
    assert codes(torch.randint(0, 512, (2, 1, 3, 3))).shape == (2, 512, 1, 3, 3)
    assert tiny(input_mode="auto", num_categories=512).head_kind == "softmax"  # the library's rule for "auto"
    assert tiny(head="softmax").head_kind == "softmax"  # a 256-way softmax over scaled pixels is allowed


def test_the_mixture_couples_g_and_b_to_the_pixels_r_and_g_only_when_sequential():
    for order, coupled in (("sequential", True), ("parallel", False)):
        prior = tiny(channels=3, channel_order=order, num_categories=256)
        x = torch.randint(0, 256, (1, 3, 3, 3))
        y = x.clone()
        y[0, 0, 1, 1] = (y[0, 0, 1, 1] + 100) % 256  # the R of pixel (1, 1)
        with torch.no_grad():
            a, b = prior.logits(x)[0, :, :, 1, 1], prior.logits(y)[0, :, :, 1, 1]  # (K, C)
        assert torch.equal(a[:, 0], b[:, 0])  # R never sees itself
        assert (not torch.allclose(a[:, 1:], b[:, 1:])) == coupled


# ----------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (dict(head="mixture", input_mode="embed"), ValueError, "head='mixture' models ordered values"),
        (dict(num_mixtures=0), ValueError, "num_mixtures must be > 0"),
        (dict(num_mixtures=2.5), TypeError, "num_mixtures must be an int"),
        (dict(head="logistic"), ValueError, "head must be one of"),
        (dict(num_resnet=-1), ValueError, "num_resnet must be an int >= 0"),
        (dict(num_filters=0), ValueError, "num_filters must be > 0"),
        (dict(dropout=1.0), ValueError, "dropout must be a probability"),
        (dict(num_categories=1), ValueError, "num_categories must be >= 2"),
    ],
)
def test_bad_arguments_raise(overrides, error, match):
    with pytest.raises(error, match=match):
        tiny(**overrides)


def test_a_mixture_head_on_a_prior_over_codes_is_refused():
    with pytest.raises(ValueError, match="head='mixture' models ordered values"):
        build_code_prior({"name": "pixelcnn_pp", "head": "mixture", **CPU_CONFIG}, num_codes=64)


def test_bad_input_gives_clear_errors():
    pixels = tiny(num_categories=256, channels=3)
    grey = tiny(num_categories=256)
    codes = build_code_prior("pixelcnn_pp", num_codes=64, tiny=True)
    image = torch.randint(0, 256, (2, 3, 4, 4))
    image[0, 0, 0, 0] = 0
    with pytest.raises(ValueError, match=r"x must lie in \[0, 256\), got values in \[-3,"):
        pixels(image - 3)  # pixel values outside [0, 255]
    with pytest.raises(ValueError, match=r"x must lie in \[0, 256\)"):
        pixels(image + 256)
    with pytest.raises(TypeError, match="integer category indices"):
        pixels(image.float() / 255)  # images scaled to [0, 1] instead of integer pixels
    with pytest.raises(ValueError, match="x must have 1 channels"):
        grey(image)  # colour data to a grey model
    with pytest.raises(ValueError, match="x must have 3 channels"):
        pixels(torch.randint(0, 64, (2, 1, 4, 4)))  # a grid of codes where colour pixels are expected
    with pytest.raises(ValueError, match=r"x must lie in \[0, 256\)"):
        grey(torch.randint(256, 512, (2, 1, 4, 4)))  # codes of a 512-code codebook to a grey pixel model
    with pytest.raises(ValueError, match=r"x must lie in \[0, 64\)"):
        codes(torch.randint(0, 256, (2, 1, 4, 4)))  # pixels where codes are expected
    with pytest.raises(ValueError, match="x must have 1 channels"):
        codes(image % 64)  # colour images where code grids are expected


# ------------------------------------------------------------------------------------------- learning, bf16


@pytest.mark.parametrize("head", ["mixture", "softmax"])
def test_learns_a_deterministic_pattern(head):
    """60 Adam steps on one repeated grid lower its bits/dim from ~2 to a small fraction of one (the mixture's path
    there is bumpy: its tiny scales make steep gradients)."""
    torch.manual_seed(0)
    prior = vqgen.build(
        "prior", "pixelcnn_pp", **{**PixelCNNpp.tiny_config(), "num_categories": 4, "head": head}
    ).train()
    x = (torch.arange(16).view(1, 1, 4, 4) % 4).repeat(8, 1, 1, 1)
    before = prior.bits_per_dim(x).mean().item()
    optimiser = torch.optim.Adam(prior.parameters(), lr=0.005)
    for _ in range(60):
        loss = prior.bits_per_dim(x).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert prior.bits_per_dim(x).mean().item() < 0.1 * before


def test_dropout_acts_in_training_only():
    prior = tiny(dropout=0.5)
    x = torch.randint(0, 16, (2, 1, 4, 4))
    with torch.no_grad():
        assert torch.equal(prior(x), prior(x))
        prior.train()
        assert not torch.equal(prior(x), prior(x))


def test_bf16_forward_under_autocast_gives_finite_float32_losses():
    prior = tiny(num_categories=256, channels=3)
    x = torch.randint(0, 256, (2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    x[:, :, 0, 0], x[:, :, 0, 1] = 0, 255  # edge bins
    network = []
    handle = prior.head.proj.register_forward_hook(lambda module, args, out: network.append(out.dtype))
    with torch.no_grad():
        reference = prior.nll(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            nll = prior.nll(x)
    handle.remove()
    assert network == [torch.float32, torch.bfloat16]  # the network ran in bf16 under autocast
    assert nll.dtype == torch.float32 and bool(torch.isfinite(nll).all())
    torch.testing.assert_close(nll.mean(), reference.mean(), rtol=0.02, atol=0)


def test_class_and_vector_conditions_change_the_output():
    prior = tiny(num_classes=3, cond_dim=2)
    with torch.no_grad():
        for parameter in prior.cond_bias.parameters():
            parameter.normal_()
    x = torch.randint(0, 16, (2, 1, 4, 4))
    by_class = prior(x, torch.tensor([0, 1]))
    assert not torch.allclose(by_class[0], prior(x, torch.tensor([1, 1]))[0])
    assert not torch.allclose(prior(x, torch.randn(2, 2)), by_class)


# ------------------------------------------------------------------------------------- codes: the softmax head


def test_a_prior_over_codes_inside_a_two_stage_model():
    torch.manual_seed(0)
    images = torch.zeros(32, 1, 8, 8, dtype=torch.uint8)
    images[torch.arange(32), 0, torch.randint(8, (32,))] = 255
    config = {
        "encoder": {"name": "conv", **vqgen.registry("encoder").get("conv").tiny_config()},
        "quantizer": {"name": "vq", "num_codes": 8},
        "prior": {
            "name": "pixelcnn_pp",
            **{k: v for k, v in PixelCNNpp.tiny_config().items() if k != "num_categories"},
        },
    }
    model = TwoStageModel.from_config(config)
    assert model.prior.head_kind == "softmax" and model.prior.config["input_mode"] == "embed"
    fast = {"epochs": 1, "batch_size": 16, "progress": False, "seed": 0}
    model.fit(images, stage1=fast, stage2=fast)
    codes = model.sample_codes(3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(codes, model.sample_codes(3, generator=torch.Generator().manual_seed(1), method="naive"))
    assert model.sample(2).shape == (2, 1, 8, 8)


class SoftmaxPixelCNNpp(PixelCNNpp):
    """The prior as a code prior builds it: embedded inputs, so ``head="auto"`` is the softmax."""

    @classmethod
    def tiny_config(cls) -> dict:
        return {**PixelCNNpp.tiny_config(), "input_mode": "embed"}


SOFTMAX = "throwaway_pixelcnn_pp_softmax"


@pytest.fixture
def softmax_registered(monkeypatch):
    monkeypatch.setitem(registry("prior")._entries, SOFTMAX, SoftmaxPixelCNNpp)
    monkeypatch.setattr(SoftmaxPixelCNNpp, "_registry_kind", "prior")
    monkeypatch.setattr(SoftmaxPixelCNNpp, "_registry_name", SOFTMAX)


@pytest.mark.parametrize(("test", "kwargs"), vqgen.testing.contract_cases("prior"))
def test_the_softmax_head_passes_the_contract(test, kwargs, tmp_path, softmax_registered):
    assert vqgen.build("prior", SOFTMAX, **SoftmaxPixelCNNpp.tiny_config()).head_kind == "softmax"
    vqgen.testing.run_case(test, kwargs, name=SOFTMAX, tmp_path=tmp_path)


def test_softmax_head_sequential_colour_reads_only_earlier_channels_of_the_pixel():
    prior = tiny(channels=3, input_mode="embed")
    x = torch.randint(0, 16, (1, 3, 3, 3))
    for c, (i, j) in itertools.product(range(3), [(0, 0), (1, 2)]):
        y = x.clone()
        y[0, c:, i, j] = (y[0, c:, i, j] + 7) % 16  # channel c and after, at (i, j)
        with torch.no_grad():
            assert torch.equal(prior(x)[0, :, c, i, j], prior(y)[0, :, c, i, j])
