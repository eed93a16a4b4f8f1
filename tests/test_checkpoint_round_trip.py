"""A checkpoint never disagrees with its weights: save → load gives the same model, for every registered combination.

For every encoder × quantizer × prior in the registries (tiny configurations), in three states — fresh, fitted (one
step of each stage) and refitted with another prior (``fit_prior(prior=...)``) — ``save_pretrained`` →
``from_pretrained`` must give a model whose codes, prior logits and seeded samples equal the original's exactly.

The refit uses the next prior in the registry's list, so every prior is also the replacement of another. Every
combination is valid by construction (each prior is built for its model's grid by ``build_code_prior``), so none is
skipped; the whole product takes a few seconds.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import vqgen
from vqgen import TwoStageModel
from vqgen.priors import build_code_prior

ENCODERS = vqgen.available("encoder")
QUANTIZERS = vqgen.available("quantizer")
PRIORS = vqgen.available("prior")
SIZE = 8  # images (N, 1, 8, 8): every tiny encoder takes them
STEP = {"epochs": 1, "max_steps": 1, "batch_size": 8, "progress": False, "seed": 0}


def _tiny(kind: str, name: str, **overrides) -> dict:
    return {"name": name, **vqgen.registry(kind).get(name).tiny_config(), **overrides}


def _images(n: int = 8) -> torch.Tensor:
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 1, SIZE, SIZE), generator=generator, dtype=torch.uint8)


def _code_prior(name: str, model: TwoStageModel, grid: tuple[int, int]):
    fixed = ("num_categories", "channels", "height", "width")  # set by build_code_prior
    options = {k: v for k, v in _tiny("prior", name).items() if k not in fixed}
    return build_code_prior(options, num_codes=model.num_codes, grid_shape=grid)


def _model(encoder: str, quantizer: str, prior: str) -> tuple[TwoStageModel, tuple[int, int]]:
    enc = _tiny("encoder", encoder, in_channels=1)
    if "image_size" in enc:
        enc["image_size"] = SIZE
    probe = vqgen.build("encoder", encoder, **{k: v for k, v in enc.items() if k != "name"})
    grid = probe.latent_shape((1, SIZE, SIZE))
    quant = {k: v for k, v in _tiny("quantizer", quantizer).items() if k != "dim"}
    prior_cfg = {k: v for k, v in _tiny("prior", prior).items() if k not in ("num_categories", "channels")}
    if "height" in prior_cfg:  # a prior tied to one grid size
        prior_cfg.update(height=grid[0], width=grid[1])
    return TwoStageModel.from_config({"encoder": enc, "quantizer": quant, "prior": prior_cfg}), grid


def _outputs(model: TwoStageModel, grid: tuple[int, int]) -> dict[str, torch.Tensor]:
    """Codes of fixed images, the prior's logits on them, seeded samples and their decoding — without fit checks."""
    model.eval()
    with torch.no_grad():
        images = _images(4).float() / 255
        codes = model.vqvae.encode(images)  # (4, h, w)
        logits = model.prior(codes[:, None])  # (4, K, 1, h, w)
        samples = model.prior.sample(3, grid, generator=torch.Generator().manual_seed(11))  # (3, 1, h, w)
        decoded = model.vqvae.decode(samples[:, 0])
    return {"codes": codes, "logits": logits, "samples": samples, "decoded": decoded}


def _check_round_trip(model: TwoStageModel, grid: tuple[int, int], directory) -> None:
    model.save_pretrained(str(directory))
    loaded = TwoStageModel.from_pretrained(str(directory))
    assert loaded.to_spec() == model.to_spec()
    assert torch.equal(loaded.fitted_, model.fitted_) and torch.equal(loaded.image_shape_, model.image_shape_)
    expected, got = _outputs(model, grid), _outputs(loaded, grid)
    for key in expected:
        assert torch.equal(got[key], expected[key]), f"{key} differ after save_pretrained → from_pretrained"


def _run(encoder: str, quantizer: str, prior: str, refit_with: str, tmp_path) -> None:
    torch.manual_seed(0)
    model, grid = _model(encoder, quantizer, prior)
    _check_round_trip(model, grid, tmp_path / "fresh")
    model.fit(_images(), stage1=STEP, stage2=STEP)
    _check_round_trip(model, grid, tmp_path / "fitted")
    other = _code_prior(refit_with, model, grid)
    model.fit_prior(_images(), prior=other, **STEP)
    assert model.prior is other and model.to_spec()["config"]["prior"] == other.to_spec()
    _check_round_trip(model, grid, tmp_path / "refitted")


def _next(name: str) -> str:
    return PRIORS[(PRIORS.index(name) + 1) % len(PRIORS)]


@pytest.mark.parametrize(("encoder", "quantizer", "prior"), list(itertools.product(ENCODERS, QUANTIZERS, PRIORS)))
def test_round_trip(encoder, quantizer, prior, tmp_path):
    _run(encoder, quantizer, prior, _next(prior), tmp_path)


def test_replacing_the_prior_by_assignment_is_saved_too(tmp_path):
    """Not only ``fit_prior``: any replacement of a part is what the next checkpoint describes."""
    model, grid = _model(ENCODERS[0], QUANTIZERS[0], "gated_pixelcnn")
    model.prior = _code_prior("rnn", model, grid)
    model.save_pretrained(str(tmp_path))
    loaded = TwoStageModel.from_pretrained(str(tmp_path))
    assert loaded.to_spec()["config"]["prior"]["name"] == "rnn"
