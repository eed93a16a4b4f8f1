"""FLOP utilisation of the convolutional priors, and cached sampling as a multiple of one forward pass.

Run with::

    pytest benchmarks/test_prior_flops.py --benchmark-only

Every figure is a ratio measured in one run, on the same machine and threads (``torch.set_num_threads(2)``, or
``PRIOR_FLOPS_THREADS``; figures with another thread count go to ``prior_flops_<n>t.json``):

- **Utilisation** (``test_flop_utilisation``): the FLOPs of one training step (forward, cross-entropy, backward, Adam)
  and of one forward pass (eval mode, no autograd), counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix
  products and convolutions only; elementwise work is not counted, so it lowers the utilisation), divided by the
  time, over the rate of a large float32 matrix product (sgemm, ``SGEMM_SIZE`` squared) timed in the same loop. For
  the gated and the masked PixelCNN at 15 layers × 64 channels (head 256), 7×7 codes, K = 512, batch 128.
- **Sampling** (``test_sampling_cost``): cached sampling of a whole grid through ``prior.sample(..., method="cached")``
  over one forward pass on the same batch, for the cases of ``test_sampling_speed.py`` (gated prior on 7×7 and 16×16
  codes, batch 64; the 28×28 grey gated pixel model, K = 256, batch 16); interleaved with it, the same sampling with
  the batch in one loop on one thread (``sampling_shards`` forced to 1), to show what splitting it over threads gives;
  and the FLOPs cached sampling of a grid counts, about those of one forward pass (each position once), so the ratio
  is the forward pass's FLOP rate over the sampler's.

The machine these figures come from is shared, so the timings of one test are interleaved (sgemm, forward, step, ... in
turn, ``ROUNDS`` times) and each figure is the fastest of its repeats. The load average is recorded with the figures.
``test_goals`` writes ``docs/data/prior_flops.json`` (command, machine, date, every figure) and asserts the goals:
a gated training step at ≥ 75 % of sgemm, cached sampling ≤ 1.5 forward passes on codes and ≤ 3 on pixels.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_sampling_speed import BY_NAME, _seconds, prepared
from torch.utils.flop_counter import FlopCounterMode

import vqgen

#: Intra-op threads of every timing (2, as in test_sampling_speed.py; ``PRIOR_FLOPS_THREADS=1`` for comparison).
THREADS = int(os.environ.get("PRIOR_FLOPS_THREADS", "2"))
SGEMM_SIZE = 2048
ROUNDS = 5
PRIORS = {
    "gated_pixelcnn": dict(num_categories=512, hidden_channels=64, num_layers=15, head_channels=256),
    "pixelcnn": dict(num_categories=512, hidden_channels=64, num_layers=15, head_channels=256),
}
BATCH, GRID = 128, (7, 7)
SAMPLING_CASES = ["gated-codes-7x7", "gated-codes-16x16", "gated-pixels-28x28"]
OUTPUT = (
    Path(__file__).resolve().parents[1] / "docs" / "data" / f"prior_flops{'' if THREADS == 2 else f'_{THREADS}t'}.json"
)

#: Figures of this run: UTILISATION[prior][key] and SAMPLING[case][key] (seconds, FLOPs, ratios).
UTILISATION: dict[str, dict[str, float]] = {}
SAMPLING: dict[str, dict[str, float]] = {}
SGEMM: dict[str, float] = {}


@pytest.fixture(autouse=True, scope="module")
def _threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    yield
    torch.set_num_threads(previous)


def sgemm_seconds(a: torch.Tensor, b: torch.Tensor) -> float:
    return _seconds(lambda: torch.mm(a, b))


def counted_flops(fn) -> int:
    """FLOPs of ``fn()`` as ``FlopCounterMode`` counts them (matrix products and convolutions)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@contextlib.contextmanager
def one_slice(prior) -> Iterator[None]:
    """Cached sampling of the whole batch in one loop (``sampling_shards`` forced to 1) inside the block."""
    prior.sampling_shards = lambda n, method: 1
    try:
        yield
    finally:
        del prior.sampling_shards


def training_step(prior, optimizer, x):
    """One training step as the engine takes it: cross-entropy of the logits, backward, Adam."""
    loss = F.cross_entropy(prior(x), x)
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def test_flop_utilisation(benchmark):
    """FLOPs per second of a training step and of a forward pass of each prior, over sgemm (interleaved, best of)."""
    a, b = torch.randn(SGEMM_SIZE, SGEMM_SIZE), torch.randn(SGEMM_SIZE, SGEMM_SIZE)
    models = {}
    for name, config in PRIORS.items():
        torch.manual_seed(0)
        train = vqgen.build("prior", name, **config).train()
        optimizer = torch.optim.Adam(train.parameters(), lr=1e-4)
        x = torch.randint(0, config["num_categories"], (BATCH, 1, *GRID))
        training_step(train, optimizer, x)  # warm-up (also creates Adam's state)
        with torch.no_grad():
            train.eval()(x)
        train.train()
        models[name] = (train, optimizer, x)
        r = UTILISATION.setdefault(name, {})
        r["step-flops"] = counted_flops(lambda: training_step(train, optimizer, x))  # noqa: B023 (called here)
        with torch.no_grad():
            r["forward-flops"] = counted_flops(lambda: train.eval()(x))  # noqa: B023
        train.train()
    times: dict[str, list[float]] = {"sgemm": []}
    sgemm_seconds(a, b)  # warm-up

    def measure():
        times["sgemm"].append(sgemm_seconds(a, b))
        for name, (prior, optimizer, x) in models.items():
            prior.train()
            step = _seconds(lambda: training_step(prior, optimizer, x))  # noqa: B023 (called at once)
            prior.eval()
            with torch.no_grad():
                forward = _seconds(lambda: prior(x))  # noqa: B023
            times.setdefault(f"{name}/step", []).append(step)
            times.setdefault(f"{name}/forward", []).append(forward)
        times["sgemm"].append(sgemm_seconds(a, b))

    benchmark.pedantic(measure, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    SGEMM["seconds"] = min(times["sgemm"])
    SGEMM["flops_per_s"] = 2 * SGEMM_SIZE**3 / SGEMM["seconds"]
    for name, r in UTILISATION.items():
        for what in ("step", "forward"):
            r[f"{what}-s"] = min(times[f"{name}/{what}"])
            r[f"{what}-flops-per-s"] = r[f"{what}-flops"] / r[f"{what}-s"]
            r[f"{what}-utilisation"] = r[f"{what}-flops-per-s"] / SGEMM["flops_per_s"]
    benchmark.extra_info.update(sgemm=SGEMM, utilisation=UTILISATION)


@pytest.mark.parametrize("name", SAMPLING_CASES)
def test_sampling_cost(benchmark, name):
    """Cached sampling of a whole grid over one forward pass, interleaved, best of each."""
    case = BY_NAME[name]
    prior, x, generator = prepared(case)
    forward, cached, one_slice_seconds = [], [], []
    rounds = 3 if case.shape[0] * case.shape[1] > 256 else ROUNDS
    shards = prior.sampling_shards(case.batch, "cached")

    def sample():
        prior.sample(case.batch, case.shape, method="cached", generator=generator)

    def measure():
        with torch.no_grad():
            forward.append(_seconds(lambda: prior(x)))
        cached.append(_seconds(sample))
        with one_slice(prior):  # the whole batch in one loop on one thread, for comparison
            one_slice_seconds.append(_seconds(sample))
        with torch.no_grad():
            forward.append(_seconds(lambda: prior(x)))

    benchmark.pedantic(measure, rounds=rounds, iterations=1, warmup_rounds=0)
    with torch.no_grad():
        flops = counted_flops(lambda: prior(x))
    with one_slice(prior):  # FlopCounterMode sees the operations of this thread only
        sampling_flops = counted_flops(sample)
    SAMPLING[name] = r = {"batch": case.batch, "shape": list(case.shape), "forward-flops": flops}
    r["cached-flops"] = sampling_flops  # a whole grid, one position at a time: about one forward pass's FLOPs
    r.update({"forward-s": min(forward), "cached-s": min(cached), "shards": shards})
    r["one-slice-s"] = min(one_slice_seconds)
    r["cached-over-forward"] = r["cached-s"] / r["forward-s"]
    r["one-slice-over-forward"] = r["one-slice-s"] / r["forward-s"]
    benchmark.extra_info.update(r)


def machine() -> dict:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "threads": THREADS,
        "load_average": list(os.getloadavg()),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }


def summary() -> str:
    lines = [f"sgemm ({SGEMM_SIZE}^2 float32, {THREADS} threads): {SGEMM['flops_per_s'] / 1e9:.1f} GFLOP/s"]
    for name, r in UTILISATION.items():
        lines.append(
            f"{name:<16} step {r['step-flops'] / 1e9:6.2f} GFLOP {r['step-s']:.3f}s {r['step-utilisation']:6.1%}"
            f" | forward {r['forward-flops'] / 1e9:6.2f} GFLOP {r['forward-s']:.3f}s {r['forward-utilisation']:6.1%}"
        )
    for name, r in SAMPLING.items():
        lines.append(
            f"{name:<20} forward {r['forward-s']:.4f}s cached {r['cached-s']:.4f}s "
            f"cached/forward {r['cached-over-forward']:.2f} ({r['shards']} slices; one slice "
            f"{r['one-slice-over-forward']:.2f}); FLOPs cached/forward {r['cached-flops'] / r['forward-flops']:.2f}"
        )
    return "\n".join(lines)


def test_goals(benchmark, summary_line):
    """Writes the JSON, prints the summary, then asserts the goals on ratios only."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    if not UTILISATION or set(SAMPLING) != set(SAMPLING_CASES):
        pytest.skip("run the whole module: the goals need every figure of this run")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "command": ("" if THREADS == 2 else f"PRIOR_FLOPS_THREADS={THREADS} ") + "pytest " + " ".join(sys.argv[1:]),
        "machine": machine(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "rounds": ROUNDS,
        "batch": BATCH,
        "grid": list(GRID),
        "priors": PRIORS,
        "sgemm": SGEMM | {"size": SGEMM_SIZE},
        "utilisation": UTILISATION,
        "sampling": SAMPLING,
    }
    OUTPUT.write_text(json.dumps(record, indent=2) + "\n")
    for line in summary().splitlines() + [f"load average {os.getloadavg()}; figures in {OUTPUT}"]:
        summary_line(line)
    assert UTILISATION["gated_pixelcnn"]["step-utilisation"] >= 0.75
    assert SAMPLING["gated-codes-7x7"]["cached-over-forward"] <= 1.5
    assert SAMPLING["gated-codes-16x16"]["cached-over-forward"] <= 1.5
    assert SAMPLING["gated-pixels-28x28"]["cached-over-forward"] <= 3
