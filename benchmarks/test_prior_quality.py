"""Quality of the priors as pixel models of real MNIST: held-out bits/dim after the same small CPU training budget.

Run with::

    pytest benchmarks/test_prior_quality.py --benchmark-only -s

Skipped when the real MNIST files are absent (``$VQGEN_DATA``, else ``../shared/data`` beside the repository).

The budget, identical for every prior: ``MAX_STEPS`` Adam steps (at ``LR``) on batches of ``BATCH`` drawn from
the first ``TRAIN_IMAGES`` training images, seed 0 (the same batches in the same order), with
``torch.set_num_threads(2)``; ``MAX_SECONDS`` of training per model is only a safety cap (the comparison is made
only when every prior completed the same number of steps). The models are small, of similar size (40-50k
parameters, see ``MODELS``). The same number of steps, rather than the same wall-clock time, is the budget because
the development machine is shared: its speed changes several-fold within minutes, which made equal-time runs
compare the load of the moment more than the models. One-time start-up costs (imports, kernel set-up) are paid by a
warm-up before the first model. Pixels are modelled as 256-way categoricals (no binarisation); bits/dim is measured
on the first ``EVAL_IMAGES`` test images. 16 samples of each prior (cached sampling, seed 0) are written as a PNG
grid, with the figures as JSON, to ``$VQGEN_BENCH_OUT/prior-quality/`` (default: the system's temporary folder,
``<tmp>/vqgen-bench/prior-quality/``).

Expected order (PixelCNN, arXiv:1601.06759; Gated PixelCNN, arXiv:1606.05328): gated ≤ pixelcnn < rnn, the naive
raster RNN being the weak baseline; all far below the 8 bits/dim of a uniform model.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from conftest import bench_dir, write_results

import vqgen
from vqgen.images import save_grid
from vqgen.training.prior import evaluate_prior, fit_prior

TRAIN_IMAGES, EVAL_IMAGES = 10_000, 500
BATCH, LR, MAX_STEPS, MAX_SECONDS = 32, 2e-3, 80, 300.0
SAMPLES = 16

MODELS = {  # about 40-50k parameters each
    "gated_pixelcnn": dict(hidden_channels=16, num_layers=5, head_channels=64),
    "pixelcnn": dict(hidden_channels=32, num_layers=5, head_channels=64),
    "rnn": dict(hidden_size=64, num_layers=1),
}

RESULTS: dict[str, dict] = {}


def _data_dir() -> Path | None:
    repo = Path(__file__).resolve().parents[1]
    for candidate in (os.environ.get("VQGEN_DATA"), repo.parent / "shared" / "data"):
        if candidate and (Path(candidate) / "mnist").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def mnist():
    root = _data_dir()
    if root is None:
        pytest.skip("real MNIST not found: set VQGEN_DATA to a folder holding mnist/")
    from vqgen.data import load_dataset

    train = load_dataset("mnist", split="train", root=root).images[:TRAIN_IMAGES]
    test = load_dataset("mnist", split="test", root=root).images[:EVAL_IMAGES]
    for name in MODELS:  # warm-up: imports and kernel set-up are paid here, not by the first model timed
        warm = vqgen.build("prior", name, **vqgen.registry("prior").get(name).tiny_config() | {"num_categories": 256})
        fit_prior(warm, train[:4], epochs=1, batch_size=4, progress=False, device="cpu")
    return train, test


@pytest.fixture(autouse=True, scope="module")
def _threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


@pytest.mark.parametrize("name", list(MODELS))
def test_bits_per_dim_after_the_same_budget(benchmark, mnist, name):
    train, test = mnist
    torch.manual_seed(0)
    prior = vqgen.build("prior", name, num_categories=256, channels=1, **MODELS[name])
    record: dict = {"parameters": sum(p.numel() for p in prior.parameters()), "config": MODELS[name]}

    def train_once():
        history = fit_prior(
            prior, train, max_seconds=MAX_SECONDS, epochs=100, batch_size=BATCH, lr=LR, max_steps=MAX_STEPS,
            seed=0, device="cpu", progress=False,
        )  # fmt: skip
        record.update(steps=history[-1]["step"], train_seconds=history[-1]["train_seconds"])
        record["train_bits_per_dim_last_epoch"] = history[-1]["train"]["bits_per_dim"]

    benchmark.pedantic(train_once, rounds=1, iterations=1)
    record["eval_bits_per_dim"] = evaluate_prior(prior, test, batch_size=100)["bits_per_dim"]
    start = time.perf_counter()
    samples = prior.sample(SAMPLES, (28, 28), generator=torch.Generator().manual_seed(0))
    record["sampling_seconds"] = time.perf_counter() - start
    out = bench_dir("prior-quality")
    save_grid(out / f"{name}-samples.png", samples.to(torch.uint8), ncols=8, scale=2)
    RESULTS[name] = record
    benchmark.extra_info.update(record)
    assert 0 < record["eval_bits_per_dim"] < 8  # must beat a uniform 256-way model


def test_expected_order(benchmark, capsys):
    """Prints the table; the conv priors must beat the naive raster RNN (the budget is the same)."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    if set(RESULTS) != set(MODELS):
        pytest.skip("run the whole module (and have real MNIST) to compare the priors")
    steps = {name: r["steps"] for name, r in RESULTS.items()}
    out = bench_dir("prior-quality")
    budget = dict(train_images=TRAIN_IMAGES, eval_images=EVAL_IMAGES, batch=BATCH, lr=LR, max_steps=MAX_STEPS,
                  max_seconds=MAX_SECONDS, threads=2)  # fmt: skip
    (out / "results.json").write_text(json.dumps({"budget": budget, "results": RESULTS}, indent=2) + "\n")
    rows = [{"prior": name, "bits_per_dim": r["eval_bits_per_dim"], **r} for name, r in RESULTS.items()]
    write_results("prior-quality", rows, budget=f"{MAX_STEPS} Adam steps each", settings=budget)
    lines = [f"{'prior':<16}{'params':>9}{'steps':>7}{'train s':>9}{'test bits/dim':>15}{'sample s':>10}"]
    for name, r in RESULTS.items():
        lines.append(
            f"{name:<16}{r['parameters']:>9}{r['steps']:>7}{r['train_seconds']:>9.1f}{r['eval_bits_per_dim']:>15.3f}"
            f"{r['sampling_seconds']:>10.1f}"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines) + f"\nsamples and results.json in {out}")
    if len(set(steps.values())) > 1:
        pytest.skip(f"the safety cap of {MAX_SECONDS}s stopped some priors early {steps}: the budgets differ")
    bpd = {name: r["eval_bits_per_dim"] for name, r in RESULTS.items()}
    assert bpd["pixelcnn"] < bpd["rnn"] and bpd["gated_pixelcnn"] < bpd["rnn"], bpd
