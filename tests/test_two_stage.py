"""TwoStageModel: composition by name, the fit → encode → prior workflow, sampling, completion, persistence."""

from __future__ import annotations

import pytest
import torch

import vqgen
from vqgen import NotFittedError, TwoStageModel
from vqgen.priors.baselines import IndependentPrior, UniformPrior


def _tiny(cls_kind: str, name: str, drop: tuple[str, ...] = ()) -> dict:
    config = vqgen.registry(cls_kind).get(name).tiny_config()
    return {"name": name, **{k: v for k, v in config.items() if k not in drop}}


def _config(prior: str = "gated_pixelcnn", quantizer: str = "vq", **prior_options) -> dict:
    return {
        "encoder": _tiny("encoder", "conv"),
        "quantizer": {**_tiny("quantizer", quantizer, drop=("dim",)), "num_codes": 8},
        "prior": {**_tiny("prior", prior, drop=("num_categories", "channels")), **prior_options},
    }


def _images(n: int = 48, size: int = 8) -> torch.Tensor:
    """Bars at random rows: structured enough that codes differ, random enough that nothing is constant."""
    images = torch.zeros(n, 1, size, size, dtype=torch.uint8)
    rows = torch.randint(size, (n,))
    images[torch.arange(n), 0, rows] = 255
    return images


FAST = {"epochs": 1, "batch_size": 16, "progress": False, "seed": 0}


@pytest.fixture(scope="module")
def fitted() -> TwoStageModel:
    torch.manual_seed(0)
    model = TwoStageModel.from_config(_config())
    model.fit(_images(), stage1=FAST, stage2=FAST)
    return model


def test_from_config_fills_in_sizes():
    model = TwoStageModel.from_config(_config(prior="rnn", quantizer="ema"))
    assert model.vqvae.quantizer.dim == model.vqvae.encoder.latent_dim
    assert model.vqvae.decoder.config["hidden_channels"] == model.vqvae.encoder.config["hidden_channels"]
    assert model.prior.num_categories == 8 and model.prior.channels == 1
    assert model.prior.to_spec()["name"] == "rnn"


def test_from_config_errors():
    with pytest.raises(TypeError, match=r"unknown TwoStageModel config keys \['priors'\]"):
        TwoStageModel.from_config({**_config(), "priors": "rnn"})
    with pytest.raises(ValueError, match="needs \\['prior'\\]"):
        TwoStageModel.from_config({k: v for k, v in _config().items() if k != "prior"})
    with pytest.raises(ValueError, match="unknown prior 'gated'.*gated_pixelcnn"):
        TwoStageModel.from_config({**_config(), "prior": "gated"})


def test_prior_categories_must_match_codebook():
    config = _config()
    config["prior"]["num_categories"] = 9
    with pytest.raises(ValueError, match="prior models 9 categories but the quantizer has 8 codes"):
        TwoStageModel.from_config(config)


def test_prior_over_codes_has_one_channel():
    config = _config()
    config["prior"]["channels"] = 3
    with pytest.raises(ValueError, match="channels=1"):
        TwoStageModel.from_config(config)


def test_use_before_fit_is_a_clear_error():
    model = TwoStageModel.from_config(_config())
    with pytest.raises(NotFittedError, match=r"sample needs the prior \(stage 2\).*model.fit"):
        model.sample(2)
    with pytest.raises(NotFittedError, match=r"encode needs the autoencoder \(stage 1\)"):
        model.encode(_images(2))
    with pytest.raises(NotFittedError, match="fit_prior needs the autoencoder"):
        model.fit_prior(_images(4))


def test_not_fitted_is_not_an_attribute_error():
    """Raised in a property, an AttributeError was turned by nn.Module.__getattr__ into "has no attribute"."""
    assert not issubclass(NotFittedError, AttributeError)
    model = TwoStageModel.from_config(_config())
    with pytest.raises(NotFittedError, match=r"image_shape needs the autoencoder \(stage 1\)"):
        model.code_shape  # noqa: B018
    with pytest.raises(NotFittedError, match=r"image_shape needs the autoencoder \(stage 1\)"):
        model.image_shape  # noqa: B018


def test_float_images_outside_0_1_are_refused():
    model = TwoStageModel.from_config(_config())
    with pytest.raises(ValueError, match=r"float images must be in \[0, 1\], got values up to 255.0: divide by 255"):
        model.fit(_images().float(), stage1=FAST, stage2=FAST)
    with pytest.raises(ValueError, match=r"eval_data: float images must be in \[0, 1\], got values up to 255.0"):
        model.fit(_images(), eval_data=_images(8).float(), stage1=FAST, stage2=FAST)


def test_float_images_outside_0_1_are_refused_where_they_enter(fitted):
    with pytest.raises(ValueError, match=r"got values up to 255.0: divide by 255, or pass uint8"):
        fitted.fit_prior(_images(16).float(), **FAST)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"got values down to -1.0: map them to \[0, 1\]"):
        fitted.complete(_images(2).float() / 127.5 - 1, mask)


def test_images_the_encoder_cannot_take():
    model = TwoStageModel.from_config(_config())
    with pytest.raises(ValueError, match="multiples of 2"):
        model.fit_stage1(_images(size=7), **FAST)


def test_fit_sample_decode(fitted):
    assert fitted.image_shape == (1, 8, 8) and fitted.code_shape == (4, 4)
    images = fitted.sample(5, generator=torch.Generator().manual_seed(1))
    assert images.shape == (5, 1, 8, 8) and images.dtype == torch.float32
    assert 0 <= float(images.min()) and float(images.max()) <= 1
    originals = _images(3)
    codes = fitted.encode(originals)
    assert codes.shape == (3, 4, 4) and codes.dtype == torch.int64
    assert torch.equal(fitted.reconstruct(originals), fitted.decode(codes))


def test_sampling_is_reproducible_and_methods_agree(fitted):
    a = fitted.sample_codes(4, generator=torch.Generator().manual_seed(3))
    b = fitted.sample_codes(4, generator=torch.Generator().manual_seed(3), method="naive")
    assert torch.equal(a, b)


def test_sample_with_baseline_priors(fitted):
    independent = IndependentPrior.from_data(fitted.encode(_images(32))[:, None], num_categories=8)
    for prior in (independent, UniformPrior(num_categories=8)):
        images = fitted.sample(3, prior=prior)
        assert images.shape == (3, 1, 8, 8)
    with pytest.raises(ValueError, match="num_categories=8"):
        fitted.sample(3, prior=UniformPrior(num_categories=5))
    with pytest.raises(ValueError, match="channels=1"):
        fitted.sample(3, prior=UniformPrior(num_categories=8, channels=3))


def test_condition_for_unconditional_prior(fitted):
    with pytest.raises(ValueError, match="unconditional"):
        fitted.sample(2, torch.tensor([0, 1]))


def test_complete_keeps_known_pixels(fitted):
    images = _images(4)
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[:4] = True
    out = fitted.complete(images, mask, generator=torch.Generator().manual_seed(0))
    assert out.shape == (4, 1, 8, 8)
    assert torch.equal(out[:, :, :4], images[:, :, :4].float() / 255)
    with pytest.raises(ValueError, match="mask must have shape"):
        fitted.complete(images, torch.ones(4, 1, 7, 8, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        fitted.complete(images, torch.ones(8, 8))


def test_fully_known_prefix_keeps_every_code(fitted):
    codes = fitted.encode(_images(2))
    kept = fitted.sample_codes(2, prefix=codes[:, None], prefix_mask=torch.ones(2, 1, 4, 4, dtype=torch.bool))
    assert torch.equal(kept, codes)


def test_save_and_load_round_trip(fitted, tmp_path):
    fitted.save_pretrained(tmp_path)
    loaded = TwoStageModel.from_pretrained(tmp_path)
    assert loaded.image_shape == fitted.image_shape
    images = _images(6)
    assert torch.equal(loaded.encode(images), fitted.encode(images))
    gen = lambda: torch.Generator().manual_seed(7)  # noqa: E731
    assert torch.equal(loaded.sample_codes(3, generator=gen()), fitted.sample_codes(3, generator=gen()))


def test_checkpoint_with_missing_or_extra_file(fitted, tmp_path):
    fitted.save_pretrained(tmp_path)
    (tmp_path / "extra.pt").write_bytes(b"x")
    with pytest.raises(ValueError, match="extra.pt"):
        TwoStageModel.from_pretrained(tmp_path)
    (tmp_path / "extra.pt").unlink()
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors is missing"):
        TwoStageModel.from_pretrained(tmp_path)


def test_refit_prior_on_trained_autoencoder(fitted):
    model = vqgen.build_from_spec(fitted.to_spec())
    model.load_state_dict(fitted.state_dict())
    rnn = vqgen.build("prior", "rnn", num_categories=8, channels=1, **vqgen.registry("prior").get("rnn").tiny_config())
    history = model.fit_prior(_images(), prior=rnn, **FAST)
    assert model.prior is rnn and len(history) == 1
    assert model.sample(2).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="num_categories=8"):
        model.fit_prior(_images(), prior=UniformPrior(num_categories=4), **FAST)


def test_class_conditional_prior_uses_labels():
    from vqgen.data import from_arrays

    images = _images(32)
    labels = torch.arange(32) % 2
    model = TwoStageModel.from_config(_config(num_classes=2))
    model.fit(from_arrays(images, labels), stage1=FAST, stage2=FAST)
    assert model.sample(2, torch.tensor([0, 1])).shape == (2, 1, 8, 8)
    with pytest.raises(ValueError, match="conditional and needs cond"):
        model.sample(2)
    with pytest.raises(ValueError, match="no .labels"):
        model.fit_prior(images, **FAST)


def test_from_config_and_cli_build_the_same_code_prior():
    """One factory for a prior over code grids: the CLI and TwoStageModel.from_config agree, input_mode included."""
    from vqgen.cli.fit_prior import build_prior

    for name in vqgen.available("prior"):
        options = {k: v for k, v in _tiny("prior", name).items() if k not in ("name", "num_categories", "channels")}
        model = TwoStageModel.from_config({**_config(), "prior": {"name": name, **options}})
        cli = build_prior(name, num_categories=8, channels=1, codes=True, options=options)
        assert cli.to_spec() == model.prior.to_spec(), name
        if "input_mode" in model.prior.config:
            assert model.prior.config["input_mode"] == "embed"


def test_code_prior_embedding_from_a_codebook():
    from vqgen.priors import build_code_prior

    codebook = torch.randn(8, 5)
    prior = build_code_prior("pixelcnn", num_codes=8, codebook=codebook, tiny=True)
    assert prior.config["embed_dim"] == 5 and torch.equal(prior.input.embedding.weight, codebook)
    with pytest.raises(ValueError, match="no input embedding"):
        build_code_prior("uniform", num_codes=8, codebook=codebook)
    with pytest.raises(ValueError, match="cannot be class-conditional"):
        build_code_prior("uniform", num_codes=8, num_classes=3)


def test_two_stage_outputs_are_ordinary_tensors(fitted):
    codes = fitted.sample_codes(2, generator=torch.Generator().manual_seed(0))
    images = fitted.sample(2, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(8, 8, dtype=torch.bool)
    completed = fitted.complete(_images(2), mask, generator=torch.Generator().manual_seed(0))
    assert not any(t.is_inference() for t in (codes, images, completed))
