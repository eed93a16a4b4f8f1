"""``vqgen evaluate`` computes the README's figures as ``benchmarks/quality/test_budget.py`` computes them.

On a tiny ``vqgen fit`` run of the digits (whose ``run.json`` names the README's preset, so that evaluate samples at
its temperature), the benchmark's own scoring functions (``Scorer``, ``floor``, ``sample_metrics``, with its ``N``
made small) and ``vqgen evaluate --fid-reference all`` with the same classifier give the same FIDs of the prior's
class-conditional samples, the independent baseline, the floor and the reconstructions, the same recognised fraction
and the same bits per code.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import pytest

import vqgen
from vqgen.cli import main

ROOT = Path(__file__).resolve().parents[2]
N = 24
RUN = """
dataset: digits
train_subset: 64
eval_subset: 16
model:
  encoder: {name: conv, hidden_channels: 8, residual_channels: 4, latent_dim: 4, num_downsamples: 2}
  quantizer: {name: ema, num_codes: 16}
  prior: {name: gated_pixelcnn, hidden_channels: 8, num_layers: 2, head_channels: 8}
train: {max_steps: 1, batch_size: 16, progress: false}
"""


def quality_budget(monkeypatch: pytest.MonkeyPatch, config: pytest.Config) -> ModuleType:
    """``benchmarks/quality/test_budget.py`` (the repository root on ``sys.path`` for this test, the benchmarks'
    markers known), with its ``N`` set to ``N``."""
    monkeypatch.syspath_prepend(str(ROOT))
    for marker in ("quality", "threads(n)"):
        config.addinivalue_line("markers", f"{marker}: see benchmarks/conftest.py")
    module = importlib.import_module("benchmarks.quality.test_budget")
    monkeypatch.setattr(module, "N", N)
    return module


def test_evaluate_gives_the_quality_benchmarks_figures(tmp_path, monkeypatch, pytestconfig):
    from vqgen.evaluation import baseline_priors
    from vqgen.images import to_uint8
    from vqgen.metrics import prior_bits_per_dim
    from vqgen.training.classifier import train_classifier
    from vqgen.training.prior import encode_codes

    (tmp_path / "run.yaml").write_text(RUN)
    assert main(["fit", "--config", str(tmp_path / "run.yaml"), "-o", str(tmp_path / "run")]) == 0
    train, test = vqgen.data.load_dataset("digits"), vqgen.data.load_dataset("digits", split="test")
    classifier = train_classifier(train.images[:128], train.labels[:128], epochs=1, seed=0, device="cpu").model
    classifier.save_pretrained(tmp_path / "classifier")
    argv = ["evaluate", str(tmp_path / "run"), "--classifier", str(tmp_path / "classifier"), "--device", "cpu"]
    assert main([*argv, "-n", str(N), "--fid-reference", "all", "-o", str(tmp_path / "e.json")]) == 0
    ours = json.loads((tmp_path / "e.json").read_text())

    bench = quality_budget(monkeypatch, pytestconfig)
    model = vqgen.from_pretrained(tmp_path / "run").eval()
    scorer = bench.Scorer(vqgen.from_pretrained(tmp_path / "classifier"), test.images)
    floor, draws = bench.floor(scorer, train)
    readme = bench.sample_metrics(model, scorer, temperature=bench.README_TEMPERATURE)
    independent = bench.sample_metrics(model, scorer, prior=baseline_priors(model, train)["independent"])
    theirs = {
        "prior": readme["fid"], "independent": independent["fid"], "floor": floor["mean"],
        "reconstructions": scorer.fid(to_uint8(model.reconstruct(train.images[draws[0]]))),
    }  # fmt: skip
    assert ours["temperature"] == bench.README_TEMPERATURE != 1.0  # the preset's, from run.json
    assert {key: ours["fid_classifier"][key] for key in theirs} == pytest.approx(theirs, rel=1e-4)
    assert ours["floor_draws"] == pytest.approx(floor["draws"], rel=1e-4)
    assert ours["recognised"] == pytest.approx(readme["recognised"], abs=1e-6)
    bits = prior_bits_per_dim(model.prior, encode_codes(model.vqvae, test), test.labels)
    assert ours["bits_per_code"]["prior"] == pytest.approx(bits, rel=1e-6)
