"""FSQ (arXiv:2309.15505): the grid, the codes, the gradient, the reference implementation, bad input, and use as the
quantizer of a TwoStageModel with every registered prior."""

from __future__ import annotations

import inspect
import math

import pytest
import torch

import vqgen
from vqgen import TwoStageModel
from vqgen.autoencoders.vqvae import VQVAE
from vqgen.quantizers import FiniteScalarQuantizer


def _grid_inputs(levels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """For every grid point, a ``z`` that the bound maps exactly onto it, and the point's mixed-radix code.

    Inverts ``bound(z) = tanh(z + s) h − o`` at the integer ``v``: ``z = atanh((v + o) / h) − s``.
    """
    axes = []
    for level in levels:
        h, o = (level - 1) * (1 + 1e-3) / 2, 0.5 if level % 2 == 0 else 0.0
        values = torch.arange(level, dtype=torch.float64) - level // 2  # the integers in range
        axes.append(torch.atanh((values + o) / h) - math.atanh(o / h))
    # Code = Σ q_i Π_{j<i} L_j: dimension 0 varies fastest, so build the product with the last dimension outermost.
    mesh = torch.meshgrid(*reversed(axes), indexing="ij")
    z = torch.stack([m.reshape(-1) for m in reversed(mesh)], dim=1).float()  # (K, d)
    return z, torch.arange(math.prod(levels))


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [8, 6, 5], [2, 3], [7]])
def test_every_grid_point_has_its_mixed_radix_code(levels):
    quantizer = FiniteScalarQuantizer(levels=levels)
    assert quantizer.num_codes == math.prod(levels) and quantizer.dim == len(levels)
    assert not list(quantizer.parameters())  # no projection, nothing learned
    z, expected = _grid_inputs(levels)
    out = quantizer(z)  # (K, d): no spatial axes
    assert torch.equal(out.codes, expected)
    assert float(out.usage) == 1.0 and float(out.perplexity) == pytest.approx(quantizer.num_codes, rel=1e-4)
    torch.testing.assert_close(quantizer.embed(out.codes), out.quantized)
    # The normalised values: L odd → {−(L−1)/2 … (L−1)/2} / ⌊L/2⌋, L even → {−L/2 … L/2 − 1} / (L/2).
    for i, level in enumerate(levels):
        values = torch.unique(out.quantized[:, i])
        assert torch.equal(values, (torch.arange(level) - level // 2).float() / (level // 2)), level


def test_bound_keeps_every_value_on_the_grid():
    quantizer = FiniteScalarQuantizer(levels=[8, 5, 3])
    z = torch.randn(4096, 3) * 50  # far outside the bound's linear range
    out = quantizer(z)
    for i, level in enumerate([8, 5, 3]):
        assert torch.unique(out.quantized[:, i]).numel() == level
    assert int(out.codes.min()) == 0 and int(out.codes.max()) == quantizer.num_codes - 1


def test_huge_finite_values_are_bounded_not_rejected():
    quantizer = FiniteScalarQuantizer(levels=[8, 5])
    z = torch.full((4096, 2), 3e37)  # finite, but their sum overflows float32
    z[::2] *= -1
    out = quantizer(z)
    assert set(out.codes.tolist()) == {0, quantizer.num_codes - 1}  # the two extreme grid points
    projected = FiniteScalarQuantizer(levels=[8, 5], dim=4)
    torch.nn.init.ones_(projected.project_in.weight)
    with pytest.raises(ValueError, match="projected onto the FSQ dimensions"):
        projected(torch.full((2, 4), 3e38))  # 4 · 3e38 overflows float32


def test_gradient_is_the_bounds_derivative_and_losses_are_zero():
    levels = torch.tensor([8.0, 5.0])
    quantizer = FiniteScalarQuantizer(levels=[8, 5])
    z = torch.randn(6, 2, 3, requires_grad=True)
    out = quantizer(z)
    for field in ("loss", "codebook_loss", "commitment_loss"):
        assert float(getattr(out, field)) == 0.0, field
    out.quantized.sum().backward()
    h = (levels - 1) * (1 + 1e-3) / 2
    s = torch.atanh(torch.tensor([0.5, 0.0]) / h)
    expected = (1 - torch.tanh(z.detach() + s[:, None]) ** 2) * (h / torch.tensor([4.0, 2.0]))[:, None]
    torch.testing.assert_close(z.grad, expected)


def test_projection_when_dim_differs_from_len_levels():
    quantizer = FiniteScalarQuantizer(levels=[5, 5, 5], dim=16)
    assert quantizer.dim == 16 and quantizer.num_codes == 125
    assert {name for name, _ in quantizer.named_parameters()} == {
        "project_in.weight",
        "project_in.bias",
        "project_out.weight",
        "project_out.bias",
    }
    z = torch.randn(2, 16, 4, 4, requires_grad=True)
    out = quantizer(z)
    assert out.quantized.shape == z.shape
    out.quantized.square().sum().backward()
    assert quantizer.project_in.weight.grad.abs().sum() > 0 and quantizer.project_out.weight.grad.abs().sum() > 0
    # The grid constants are derived from the config, not stored in the checkpoint.
    assert set(quantizer.state_dict()) == {
        "project_in.weight",
        "project_in.bias",
        "project_out.weight",
        "project_out.bias",
    }


def test_bf16_autocast_computes_in_float32():
    quantizer = FiniteScalarQuantizer(levels=[8, 5, 5, 5], dim=16)
    z = torch.randn(4, 16, 8, 8).to(torch.bfloat16)
    expected = quantizer(z.float())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = quantizer(z)
    assert out.quantized.dtype == torch.bfloat16
    assert torch.equal(out.codes, expected.codes)


def test_a_module_cast_to_bf16_still_quantizes_in_float32():
    levels = [300, 3]  # 299 is not a bf16 number: the grid constants must not be cast
    reference = FiniteScalarQuantizer(levels=levels, dim=8)
    rounded = {k: v.to(torch.bfloat16).float() for k, v in reference.state_dict().items()}
    reference.load_state_dict(rounded)  # the weights a bf16 module holds, in float32
    cast = FiniteScalarQuantizer(levels=levels, dim=8).to(torch.bfloat16)
    cast.load_state_dict(rounded)
    z = (torch.randn(4, 8, 6, 6) * 3).to(torch.bfloat16)
    out = cast(z)
    assert out.quantized.dtype == torch.bfloat16
    assert torch.equal(out.codes, reference(z.float()).codes)
    assert int(out.codes.max()) < cast.num_codes


def test_matches_vector_quantize_pytorch():
    vqp = pytest.importorskip("vector_quantize_pytorch")
    levels = [8, 5, 5, 5]
    ours = FiniteScalarQuantizer(levels=levels)
    reference = vqp.FSQ(levels=levels)
    z = torch.randn(4, 4, 6, 6) * 2
    out = ours(z)
    quantized, indices = reference(z)  # channel-first (B, d, H, W) images
    assert torch.equal(out.codes, indices.long())
    torch.testing.assert_close(out.quantized, quantized)


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("levels", "error", "match"),
    [
        ([8, 1, 5], ValueError, r"levels\[1\] must be >= 2, got 1"),
        ([0], ValueError, r"levels\[0\] must be >= 2, got 0"),
        ([8, 5.0], TypeError, r"levels\[1\] must be an int, got float"),
        ([True, 5], TypeError, r"levels\[0\] must be an int, got bool"),
        ([], TypeError, r"non-empty list of ints"),
        (8, TypeError, r"non-empty list of ints.*got 8"),
        ("855", TypeError, r"non-empty list of ints"),
        ([2**9] * 3, ValueError, r"imply 134217728 codes"),
    ],
)
def test_bad_levels_are_explained(levels, error, match):
    with pytest.raises(error, match=match):
        FiniteScalarQuantizer(levels=levels)


def test_bad_dim_is_explained():
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        FiniteScalarQuantizer(levels=[5, 5], dim=0)
    with pytest.raises(TypeError, match="dim must be an int, got float"):
        FiniteScalarQuantizer(levels=[5, 5], dim=4.0)


def test_input_of_another_width_is_explained():
    quantizer = FiniteScalarQuantizer(levels=[8, 5, 5, 5])  # dim = 4, no projection
    with pytest.raises(ValueError, match=r"dim=4 channels.*got 16.*latent_dim"):
        quantizer(torch.randn(2, 16, 3, 3))
    with pytest.raises(ValueError, match=r"latent dimensions disagree.*quantizer.dim=4"):
        VQVAE(
            encoder=vqgen.build("encoder", "conv", latent_dim=16),
            quantizer=quantizer,
            decoder=vqgen.build("decoder", "conv", latent_dim=16),
        )


# ---------------------------------------------------------------------------------------------------- two-stage


def _images(n: int = 32, size: int = 8) -> torch.Tensor:
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    images[torch.arange(n), 0, torch.randint(size, (n,))] = 255
    return images


def _two_stage_config(prior: str, **quantizer) -> dict:
    cls = vqgen.registry("prior").get(prior)
    options = {k: v for k, v in cls.tiny_config().items() if k not in ("num_categories", "channels")}
    if "height" in inspect.signature(cls.__init__).parameters:
        options.update(height=4, width=4)  # a table prior over the 4x4 code grids of 8x8 images
    encoder = {"name": "conv", **vqgen.registry("encoder").get("conv").tiny_config(), "in_channels": 1}
    return {"encoder": encoder, "quantizer": {"name": "fsq", **quantizer}, "prior": {"name": prior, **options}}


@pytest.mark.parametrize("prior", vqgen.available("prior"))
def test_two_stage_with_fsq_and_every_prior(prior):
    torch.manual_seed(0)
    model = TwoStageModel.from_config(_two_stage_config(prior, levels=[3, 3]))
    assert model.num_codes == 9 and model.prior.num_categories == 9
    assert model.vqvae.quantizer.dim == model.vqvae.encoder.latent_dim  # filled in: FSQ projects 4 → 2 → 4
    images = _images()
    fast = {"epochs": 1, "batch_size": 16, "progress": False, "seed": 0}
    model.fit_stage1(images, **fast)
    if any(p.requires_grad for p in model.prior.parameters()):
        model.fit_prior(images, **fast)
        sample = model.sample(3, generator=torch.Generator().manual_seed(0))
    else:  # the baselines have nothing to train by gradient (TwoStageModel.fit_prior refuses them)
        if hasattr(model.prior, "fit"):
            model.prior.fit(model.encode(images)[:, None])
        sample = model.sample(3, prior=model.prior, generator=torch.Generator().manual_seed(0))
    assert sample.shape == (3, 1, 8, 8) and sample.dtype == torch.float32
    assert float(sample.min()) >= 0.0 and float(sample.max()) <= 1.0
    codes = model.encode(images[:4])
    assert codes.shape == (4, 4, 4) and int(codes.max()) < 9


def test_prior_of_another_size_than_the_fsq_grid_is_refused():
    config = _two_stage_config("gated_pixelcnn", levels=[8, 5, 5, 5])
    config["prior"]["num_categories"] = 1024  # a power of two, but the grid has 8·5·5·5 = 1,000 points
    with pytest.raises(ValueError, match=r"prior models 1024 categories but the quantizer has 1000 codes"):
        TwoStageModel.from_config(config)
    model = TwoStageModel.from_config(_two_stage_config("gated_pixelcnn", levels=[3, 3]))
    model.fit_stage1(_images(), epochs=1, batch_size=16, progress=False, seed=0)
    other = vqgen.build("prior", "rnn", num_categories=8, channels=1, hidden_size=8, num_layers=1)
    with pytest.raises(ValueError, match=r"prior models 8 categories but the quantizer has 9 codes"):
        model.fit_prior(_images(), prior=other, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"prior models 8 categories but the quantizer has 9 codes"):
        model.sample(2, prior=other)
