"""Quality of the priors as pixel models of real MNIST: held-out bits/dim after the same small CPU training budget.

Run with::

    pytest benchmarks/quality/test_pixel_priors.py --benchmark-only --quality -s

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
grid to ``$VQGEN_BENCH_OUT/prior-quality/`` (default: the system's temporary folder,
``<tmp>/vqgen-bench/prior-quality/``), the figures as ``prior-quality.json`` (see ``benchmarks.common``) by
``test_expected_order``, which trains whichever prior no earlier test of this run trained.

Expected order (PixelCNN, arXiv:1601.06759; Gated PixelCNN, arXiv:1606.05328): gated ≤ pixelcnn < rnn, the naive
raster RNN being the weak baseline; all far below the 8 bits/dim of a uniform model.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
import torch

import vqgen
from benchmarks.common import bench_dir, require_data, torch_threads, write_results
from vqgen.images import save_grid
from vqgen.training.prior import evaluate_prior, fit_prior

TRAIN_IMAGES, EVAL_IMAGES = 10_000, 500
BATCH, LR, MAX_STEPS, MAX_SECONDS = 32, 2e-3, 80, 300.0
SAMPLES = 16
THREADS = 2
pytestmark = pytest.mark.threads(THREADS)

MODELS = {  # about 40-50k parameters each
    "gated_pixelcnn": dict(hidden_channels=16, num_layers=5, head_channels=64),
    "pixelcnn": dict(hidden_channels=32, num_layers=5, head_channels=64),
    "rnn": dict(hidden_size=64, num_layers=1),
}


@pytest.fixture(scope="module")
def mnist():
    from vqgen.data import load_dataset

    root = require_data("mnist")
    train = load_dataset("mnist", split="train", root=root).images[:TRAIN_IMAGES]
    test = load_dataset("mnist", split="test", root=root).images[:EVAL_IMAGES]
    with torch_threads(THREADS):
        for name in MODELS:  # warm-up: imports and kernel set-up are paid here, not by the first model timed
            tiny = vqgen.registry("prior").get(name).tiny_config() | {"num_categories": 256}
            fit_prior(vqgen.build("prior", name, **tiny), train[:4], epochs=1, batch_size=4, progress=False,
                      device="cpu")  # fmt: skip
    return train, test


def train_prior(name: str, train, test, run: Callable[[Callable[[], None]], None] = lambda fn: fn()) -> dict:
    """Train prior ``name`` with the budget, score it and save its samples; ``run(fn)`` runs the training (the test
    hands it to pytest-benchmark)."""
    torch.manual_seed(0)
    prior = vqgen.build("prior", name, num_categories=256, channels=1, **MODELS[name])
    record: dict = {"parameters": sum(p.numel() for p in prior.parameters()), "config": MODELS[name]}

    def train_once():
        history = fit_prior(
            prior, train, max_seconds=MAX_SECONDS, batch_size=BATCH, lr=LR, max_steps=MAX_STEPS, seed=0,
            device="cpu", progress=False,
        )  # fmt: skip
        record.update(steps=history[-1]["step"], train_seconds=history[-1]["train_seconds"])
        record["train_bits_per_dim_last_epoch"] = history[-1]["train"]["bits_per_dim"]

    run(train_once)
    record["eval_bits_per_dim"] = evaluate_prior(prior, test, batch_size=100)["bits_per_dim"]
    start = time.perf_counter()
    samples = prior.sample(SAMPLES, (28, 28), generator=torch.Generator().manual_seed(0))
    record["sampling_seconds"] = time.perf_counter() - start
    out = bench_dir("prior-quality")
    save_grid(out / f"{name}-samples.png", samples.to(torch.uint8), ncols=8, scale=2)
    return record


@pytest.mark.parametrize("name", list(MODELS))
def test_bits_per_dim_after_the_same_budget(benchmark, mnist, figures, name):
    figures[name] = record = train_prior(name, *mnist, lambda fn: benchmark.pedantic(fn, rounds=1, iterations=1))
    benchmark.extra_info.update(record)
    assert 0 < record["eval_bits_per_dim"] < 8  # must beat a uniform 256-way model


def test_expected_order(benchmark, mnist, figures, capsys):
    """Prints the table and writes the JSON (training the priors no earlier test of this run trained); the conv
    priors must beat the naive raster RNN (the budget is the same)."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    for name in MODELS:
        if name not in figures:
            figures[name] = train_prior(name, *mnist)
    results = {name: figures[name] for name in MODELS}
    steps = {name: r["steps"] for name, r in results.items()}
    out = bench_dir("prior-quality")
    budget = dict(train_images=TRAIN_IMAGES, eval_images=EVAL_IMAGES, batch=BATCH, lr=LR, max_steps=MAX_STEPS,
                  max_seconds=MAX_SECONDS, threads=THREADS)  # fmt: skip
    rows = [{"prior": name, "bits_per_dim": r["eval_bits_per_dim"], **r} for name, r in results.items()]
    write_results("prior-quality", rows, budget=f"{MAX_STEPS} Adam steps each", settings=budget)
    lines = [f"{'prior':<16}{'params':>9}{'steps':>7}{'train s':>9}{'test bits/dim':>15}{'sample s':>10}"]
    for name, r in results.items():
        lines.append(
            f"{name:<16}{r['parameters']:>9}{r['steps']:>7}{r['train_seconds']:>9.1f}{r['eval_bits_per_dim']:>15.3f}"
            f"{r['sampling_seconds']:>10.1f}"
        )
    with capsys.disabled():
        print("\n" + "\n".join(lines) + f"\nsamples in {out}")
    if len(set(steps.values())) > 1:
        pytest.skip(f"the safety cap of {MAX_SECONDS}s stopped some priors early {steps}: the budgets differ")
    bpd = {name: r["eval_bits_per_dim"] for name, r in results.items()}
    assert bpd["pixelcnn"] < bpd["rnn"] and bpd["gated_pixelcnn"] < bpd["rnn"], bpd
