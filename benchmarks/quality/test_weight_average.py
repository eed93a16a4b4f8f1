"""Does an exponential moving average of the prior's weights lower held-out bits/dim at a fixed small budget?

Run with::

    pytest benchmarks/quality/test_weight_average.py --benchmark-only --quality -s

The budget, identical for every run: a gated PixelCNN (4 layers x 16 channels) as a 256-way pixel model of the offline
16x16 "digits" (scikit-learn), ``STEPS`` Adam steps at ``LR`` on batches of ``BATCH``, seeds ``SEEDS`` (the same
batches in the same order for every decay), evaluated on the whole test split. ``ema_decay=None`` evaluates the raw
weights of the last step; otherwise the engine evaluates (and leaves in the model) the average. The figures are
printed in the benchmark summary and written as ``training-ema.json`` (see ``benchmarks.common``).
``TrainConfig.ema_decay`` stays ``None`` by default unless these figures favour it. About 2 minutes on 2 threads: a
quality benchmark on the offline data.
"""

from __future__ import annotations

import statistics

import pytest
import torch

import vqgen
from benchmarks.common import write_results
from vqgen.data import load_dataset
from vqgen.training.prior import fit_prior

STEPS, BATCH, LR, SEEDS = 300, 32, 3e-3, (0, 1)
DECAYS = (None, 0.99, 0.999)
PRIOR = dict(num_categories=256, hidden_channels=16, num_layers=4, head_channels=32)
THREADS = 2
pytestmark = pytest.mark.threads(THREADS)


def _run(decay: float | None, seed: int, train, test) -> float:
    torch.manual_seed(seed)
    prior = vqgen.build("prior", "gated_pixelcnn", **PRIOR)
    history = fit_prior(prior, train, eval_data=test, max_steps=STEPS, batch_size=BATCH, lr=LR, seed=seed,
                        ema_decay=decay, progress=False, eval_batch_size=512)  # fmt: skip
    return history[-1]["eval"]["bits_per_dim"]


def test_weight_average_at_a_fixed_budget(benchmark, summary_line):
    train, test = load_dataset("digits"), load_dataset("digits", split="test")
    results: dict[str, list[float]] = {}

    def run_all() -> None:
        for decay in DECAYS:
            results[str(decay)] = [_run(decay, seed, train, test) for seed in SEEDS]

    benchmark.pedantic(run_all, rounds=1, iterations=1)
    for decay, figures in results.items():
        summary_line(
            f"ema_decay={decay}: held-out bits/dim {statistics.mean(figures):.4f} "
            f"(seeds {', '.join(f'{f:.4f}' for f in figures)}; {STEPS} steps of {BATCH})"
        )
    settings = {"steps": STEPS, "batch": BATCH, "lr": LR, "seeds": SEEDS, "prior": PRIOR, "threads": THREADS}
    write_results("training-ema", {"bits_per_dim": results}, settings=settings)
    assert all(torch.isfinite(torch.tensor(v)).all() for v in results.values())
