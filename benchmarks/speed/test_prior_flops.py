"""FLOP utilisation of the convolutional priors, and cached sampling as a multiple of one forward pass.

Run with::

    pytest benchmarks/speed/test_prior_flops.py --benchmark-only

Every figure is a ratio measured in one run, on the same machine and threads (``torch.set_num_threads(2)``, or
``PRIOR_FLOPS_THREADS``; figures with another thread count go to ``prior_flops_<n>t.json``):

- **Utilisation** (``test_flop_utilisation``): the FLOPs of one training step (forward, cross-entropy, backward, Adam)
  and of one forward pass (eval mode, no autograd), counted by ``torch.utils.flop_counter.FlopCounterMode`` (matrix
  products and convolutions only; elementwise work is not counted, so it lowers the utilisation), divided by the
  time, over the rate of a large float32 matrix product (sgemm, ``SGEMM_SIZE`` squared) timed in the same loop. For
  the gated and the masked PixelCNN at 15 layers × 64 channels (head 256), 7×7 codes, K = 512, batch 128.
- **Sampling** (``test_sampling_cost``): cached sampling of a whole grid through ``prior.sample(..., method="cached")``
  over one forward pass on the same batch, for the cases of ``test_sampling.py`` (gated prior on 7×7 and 16×16
  codes, batch 64; the 28×28 grey gated pixel model, K = 256, batch 16); interleaved with it, the same sampling with
  the batch in one loop on one thread (``sampling_shards`` forced to 1), to show what splitting it over threads gives;
  and the FLOPs cached sampling of a grid counts, about those of one forward pass (each position once), so the ratio
  is the forward pass's FLOP rate over the sampler's.

The machine these figures come from is shared, so the timings of one test are interleaved (sgemm, forward, step, ... in
turn, ``ROUNDS`` times) and each figure is the fastest of its repeats. The load average is recorded with the figures.
``test_goals`` writes ``prior_flops.json`` (command, machine, date, load, every figure; ``prior_flops_<n>t.json`` for
another thread count) into ``$VQGEN_BENCH_JSON`` (see ``benchmarks.common``; ``make bench-data`` writes
``docs/data/``), measuring itself whatever the earlier tests of this run did not, and checks the goals: a gated
training step at ≥ 75 % of sgemm, cached sampling ≤ 1.5 forward passes on codes and ≤ 3 on pixels. They depend on the
machine and its load (the step reached 112 % of sgemm on the quiet development machine, 47 % on a busy one), so they
are reported and asserted only under ``--benchmark-goals``.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Callable, Iterator

import pytest
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import vqgen
from benchmarks.common import command, seconds, write_results
from benchmarks.speed.test_sampling import BY_NAME, prepared

#: Intra-op threads of every timing (2, as in test_sampling.py; ``PRIOR_FLOPS_THREADS=1`` for comparison).
THREADS = int(os.environ.get("PRIOR_FLOPS_THREADS", "2"))
pytestmark = pytest.mark.threads(THREADS)
SGEMM_SIZE = 2048
ROUNDS = 5
PRIORS = {
    "gated_pixelcnn": dict(num_categories=512, hidden_channels=64, num_layers=15, head_channels=256),
    "pixelcnn": dict(num_categories=512, hidden_channels=64, num_layers=15, head_channels=256),
}
BATCH, GRID = 128, (7, 7)
SAMPLING_CASES = ["gated-codes-7x7", "gated-codes-16x16", "gated-pixels-28x28"]
OUTPUT = f"prior_flops{'' if THREADS == 2 else f'_{THREADS}t'}"  # the JSON's name


def sgemm_seconds(a: torch.Tensor, b: torch.Tensor) -> float:
    return seconds(lambda: torch.mm(a, b))


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


def utilisation(run: Callable[[Callable[[], None]], None] | None = None) -> dict[str, dict]:
    """``{"sgemm": {...}, "utilisation": {prior: {...}}}``: FLOPs per second of a training step and of a forward pass
    of each prior, over sgemm (interleaved, best of ``ROUNDS``). ``run(measure)`` runs the rounds (the test hands
    them to pytest-benchmark); by default a plain loop."""
    a, b = torch.randn(SGEMM_SIZE, SGEMM_SIZE), torch.randn(SGEMM_SIZE, SGEMM_SIZE)
    models, per_prior = {}, {}
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
        r = per_prior.setdefault(name, {})
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
            step = seconds(lambda: training_step(prior, optimizer, x))  # noqa: B023 (called at once)
            prior.eval()
            with torch.no_grad():
                forward = seconds(lambda: prior(x))  # noqa: B023
            times.setdefault(f"{name}/step", []).append(step)
            times.setdefault(f"{name}/forward", []).append(forward)
        times["sgemm"].append(sgemm_seconds(a, b))

    if run is None:
        for _ in range(ROUNDS):
            measure()
    else:
        run(measure)
    sgemm = {"seconds": min(times["sgemm"])}
    sgemm["flops_per_s"] = 2 * SGEMM_SIZE**3 / sgemm["seconds"]
    for name, r in per_prior.items():
        for what in ("step", "forward"):
            r[f"{what}-s"] = min(times[f"{name}/{what}"])
            r[f"{what}-flops-per-s"] = r[f"{what}-flops"] / r[f"{what}-s"]
            r[f"{what}-utilisation"] = r[f"{what}-flops-per-s"] / sgemm["flops_per_s"]
    return {"sgemm": sgemm, "utilisation": per_prior}


def test_flop_utilisation(benchmark, figures):
    """FLOPs per second of a training step and of a forward pass of each prior, over sgemm (interleaved, best of)."""
    figures["utilisation"] = r = utilisation(
        lambda measure: benchmark.pedantic(measure, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    )
    benchmark.extra_info.update(r)


def sampling_cost(name: str, run: Callable[[Callable[[], None], int], None] | None = None) -> dict[str, float]:
    """Cached sampling of a whole grid over one forward pass, interleaved, best of each; ``run(measure, rounds)``
    runs the rounds (the test hands them to pytest-benchmark), by default a plain loop."""
    case = BY_NAME[name]
    prior, x, generator = prepared(case)
    forward, cached, one_slice_seconds = [], [], []
    rounds = 3 if case.shape[0] * case.shape[1] > 256 else ROUNDS
    shards = prior.sampling_shards(case.batch, "cached")

    def sample():
        prior.sample(case.batch, case.shape, method="cached", generator=generator)

    def measure():
        with torch.no_grad():
            forward.append(seconds(lambda: prior(x)))
        cached.append(seconds(sample))
        with one_slice(prior):  # the whole batch in one loop on one thread, for comparison
            one_slice_seconds.append(seconds(sample))
        with torch.no_grad():
            forward.append(seconds(lambda: prior(x)))

    if run is None:
        for _ in range(rounds):
            measure()
    else:
        run(measure, rounds)
    with torch.no_grad():
        flops = counted_flops(lambda: prior(x))
    with one_slice(prior):  # FlopCounterMode sees the operations of this thread only
        sampling_flops = counted_flops(sample)
    r = {"batch": case.batch, "shape": list(case.shape), "forward-flops": flops}
    r["cached-flops"] = sampling_flops  # a whole grid, one position at a time: about one forward pass's FLOPs
    r.update({"forward-s": min(forward), "cached-s": min(cached), "shards": shards})
    r["one-slice-s"] = min(one_slice_seconds)
    r["cached-over-forward"] = r["cached-s"] / r["forward-s"]
    r["one-slice-over-forward"] = r["one-slice-s"] / r["forward-s"]
    return r


@pytest.mark.parametrize("name", SAMPLING_CASES)
def test_sampling_cost(benchmark, figures, name):
    """Cached sampling of a whole grid over one forward pass, interleaved, best of each."""
    figures[name] = r = sampling_cost(
        name, lambda measure, rounds: benchmark.pedantic(measure, rounds=rounds, iterations=1, warmup_rounds=0)
    )
    benchmark.extra_info.update(r)


def summary(sgemm: dict, used: dict, sampling: dict) -> str:
    lines = [f"sgemm ({SGEMM_SIZE}^2 float32, {THREADS} threads): {sgemm['flops_per_s'] / 1e9:.1f} GFLOP/s"]
    for name, r in used.items():
        lines.append(
            f"{name:<16} step {r['step-flops'] / 1e9:6.2f} GFLOP {r['step-s']:.3f}s {r['step-utilisation']:6.1%}"
            f" | forward {r['forward-flops'] / 1e9:6.2f} GFLOP {r['forward-s']:.3f}s {r['forward-utilisation']:6.1%}"
        )
    for name, r in sampling.items():
        lines.append(
            f"{name:<20} forward {r['forward-s']:.4f}s cached {r['cached-s']:.4f}s "
            f"cached/forward {r['cached-over-forward']:.2f} ({r['shards']} slices; one slice "
            f"{r['one-slice-over-forward']:.2f}); FLOPs cached/forward {r['cached-flops'] / r['forward-flops']:.2f}"
        )
    return "\n".join(lines)


def test_goals(benchmark, figures, goals, summary_line):
    """Writes the JSON of every figure (measuring those no earlier test of this run measured) and prints the summary;
    the goals, on ratios only, are asserted under ``--benchmark-goals``."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    if "utilisation" not in figures:
        figures["utilisation"] = utilisation()
    for name in SAMPLING_CASES:
        if name not in figures:
            figures[name] = sampling_cost(name)
    sgemm, used = figures["utilisation"]["sgemm"], figures["utilisation"]["utilisation"]
    sampling = {name: figures[name] for name in SAMPLING_CASES}
    step = used["gated_pixelcnn"]["step-utilisation"]
    goals.check("gated training step >= 75 % of sgemm", step >= 0.75, f"{step:.0%}")
    for name, most in (("gated-codes-7x7", 1.5), ("gated-codes-16x16", 1.5), ("gated-pixels-28x28", 3)):
        ratio = sampling[name]["cached-over-forward"]
        goals.check(f"{name}: cached sampling <= {most} forward passes", ratio <= most, f"{ratio:.2f}")
    path = write_results(
        OUTPUT, {"utilisation": used, "sampling": sampling},
        command=("" if THREADS == 2 else f"PRIOR_FLOPS_THREADS={THREADS} ") + command(),
        threads=THREADS, cpus=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
        rounds=ROUNDS, batch=BATCH, grid=list(GRID), priors=PRIORS, sgemm=sgemm | {"size": SGEMM_SIZE},
        goals=goals.met,
    )  # fmt: skip
    for line in summary(sgemm, used, sampling).splitlines() + [f"load average {os.getloadavg()}; figures in {path}"]:
        summary_line(line)
    goals.verify()
