"""Sampling speed of the priors: cached (incremental) vs naive (a full forward pass per value), same process.

Run with::

    pytest benchmarks/speed/test_sampling.py --benchmark-only -s

Every figure is a ratio measured in one run on the same machine and threads (``torch.set_num_threads(2)``):
each method's time for one batch of samples as a multiple of **one forward pass** over the same batch, and the
speed-up of cached over naive. Absolute seconds are printed for information only. The machine these figures come
from is shared, and its speed changes several-fold within minutes, so the timings of one case are interleaved in
one test (forward ×3, cached, naive, forward ×2) and each is the fastest of its repetitions: forward the fastest of
5, cached the fastest of ``cached_rounds`` whole grids through the public ``prior.sample(..., method="cached")``.

Naive sampling costs one forward pass per value, independent of the position (the network always sees the whole
grid), so it is timed value by value on the **first values** (in raster order, through the same loop:
``NaiveStepper``, ``filter_logits``, ``draw``) and extrapolated to the whole grid as the fastest value's time
× ``H·W·C`` (the median-based figure is printed too). On the small 7×7 grid the whole naive sampler also runs
through the public API, as a check of the extrapolation.

Peak memory (``test_peak_memory``): each (case, method) runs in a fresh subprocess; the figure is the growth of the
process's peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) while sampling the first two rows
with the cached stepper (the first two values with the naive one), over the peak after the model was built and
warmed up on a tiny grid; the same growth for one forward pass over the batch is given for comparison. It is the
extra memory sampling needs as the OS sees it (torch's CPU allocator hands large blocks back to the OS, so this
tracks live tensors roughly, not exactly). That suffices: the naive stepper keeps nothing between values, and the
cached steppers allocate their caches at the first value (the RNN's state has a fixed size). On CUDA it would be
``torch.cuda.max_memory_allocated``; these benchmarks run on the CPU.

The goals (``test_speed_goals``): cached ≤ 10× one forward pass on 7×7 codes, ≤ 15× on 16×16 codes, and ≥ 20×
faster than naive on the 28×28 pixel model; asserted under ``--benchmark-goals`` (they depend on the machine and its
load), reported in any case. ``test_speed_goals`` writes ``sampling-speed.json`` (see ``benchmarks.common``) with
every case, measuring itself whatever the earlier tests of this run did not.
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch

import vqgen
from benchmarks.common import ROOT, naive_value_seconds, seconds, write_results
from vqgen.priors import draw, filter_logits

THREADS = 2
pytestmark = pytest.mark.threads(THREADS)
MEMORY_PROBE = Path("/proc/self/clear_refs").exists()  # Linux: the peak RSS can be reset


@dataclass(frozen=True)
class Case:
    """One prior, batch and grid; the first ``naive_values`` values are timed for the naive estimate."""

    name: str
    prior: str
    config: dict
    batch: int
    shape: tuple[int, int]
    naive_values: int
    cached_rounds: int = 1
    info: dict = field(default_factory=dict)


CASES = [
    Case("gated-codes-7x7", "gated_pixelcnn", dict(num_categories=512, hidden_channels=64, num_layers=15), 64, (7, 7),
         naive_values=7, cached_rounds=3),
    Case("gated-codes-16x16", "gated_pixelcnn", dict(num_categories=512, hidden_channels=64, num_layers=15), 64,
         (16, 16), naive_values=16),
    Case("gated-pixels-28x28", "gated_pixelcnn", dict(num_categories=256, hidden_channels=64, num_layers=15), 16,
         (28, 28), naive_values=28),
    Case("pixelcnn-colour-32x32", "pixelcnn", dict(num_categories=256, channels=3, hidden_channels=48, num_layers=5,
         head_channels=96), 4, (32, 32), naive_values=24),
    Case("rnn-pixels-28x28", "rnn", dict(num_categories=256, hidden_size=256, num_layers=2), 16, (28, 28),
         naive_values=16),
]  # fmt: skip
BY_NAME = {case.name: case for case in CASES}


def build(case: Case):
    torch.manual_seed(0)
    return vqgen.build("prior", case.prior, **case.config).eval()


def prepared(case: Case) -> tuple[torch.nn.Module, torch.Tensor, torch.Generator]:
    """The case's prior, a random batch ``(B, C, H, W)`` and a seeded generator, warmed up (a forward pass, one row
    sampled with the cached stepper)."""
    prior = build(case)
    generator = torch.Generator().manual_seed(0)
    x = torch.randint(0, prior.num_categories, (case.batch, prior.channels, *case.shape))
    with torch.no_grad():
        prior(x)
    prior.sample(case.batch, (1, case.shape[1]), method="cached", generator=generator)
    return prior, x, generator


def values(case: Case) -> int:
    """``H·W·C``, the number of values in one grid."""
    return case.shape[0] * case.shape[1] * case.config.get("channels", 1)


def first_values(stepper, prior, n: int, shape: tuple[int, int], count: int, generator=None) -> torch.Tensor:
    """The sampling loop (``stepper.logits``, ``filter_logits``, ``draw``) over the first ``count`` values only."""
    height, width = shape
    x = torch.zeros(n, prior.channels, height, width, dtype=torch.long)
    order = [(i, j, c) for i in range(height) for j in range(width) for c in range(prior.channels)][:count]
    with torch.no_grad():
        for i, j, c in order:
            x[:, c, i, j] = draw(filter_logits(stepper.logits(x, i, j, c)), generator)
    return x


def timings(case: Case, rounds: Callable[[Callable[[], None]], None] | None = None) -> dict[str, float]:
    """Seconds of one case: ``forward`` / ``cached`` / ``naive`` / ``naive-median`` (and ``naive-full`` on small
    grids), interleaved so that they see the same machine load. ``rounds(fn)`` runs the cached rounds (the test
    hands them to pytest-benchmark); by default they run in a plain loop."""
    prior, x, generator = prepared(case)
    with torch.no_grad():
        forward = [seconds(lambda: prior(x)) for _ in range(3)]
    cached = []

    def run_cached():
        cached.append(seconds(lambda: prior.sample(case.batch, case.shape, method="cached", generator=generator)))

    if rounds is None:
        for _ in range(case.cached_rounds):
            run_cached()
    else:
        rounds(run_cached)
    per_value = naive_value_seconds(prior, case.batch, case.shape, case.naive_values, generator)
    with torch.no_grad():
        forward += [seconds(lambda: prior(x)) for _ in range(2)]
    total = values(case)
    r = {"forward": min(forward), "cached": min(cached), "naive": min(per_value) * total}
    r["naive-median"] = statistics.median(per_value) * total
    if total <= 64:  # small grid: the whole naive sampler through the public API, as a check of the estimate
        r["naive-full"] = seconds(lambda: prior.sample(case.batch, case.shape, method="naive", generator=generator))
    return r


@pytest.mark.parametrize("name", list(BY_NAME))
def test_sampling(benchmark, figures, name):
    """Forward, cached and naive timings of one case, interleaved so that they see the same machine load."""
    case = BY_NAME[name]
    figures[name] = r = timings(
        case, lambda run: benchmark.pedantic(run, rounds=case.cached_rounds, iterations=1, warmup_rounds=0)
    )
    benchmark.extra_info.update(r)


_MEMORY_SCRIPT = r"""
import json, sys, torch, vqgen
from vqgen.priors import NaiveStepper
sys.path.insert(0, {root!r})
from benchmarks.speed.test_sampling import first_values
def kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
torch.set_num_threads({threads})
torch.manual_seed(0)
prior = vqgen.build("prior", {prior!r}, **{config!r}).eval()
n, shape, method = {batch}, {shape!r}, {method!r}
with torch.no_grad():  # warm the kernels on a tiny grid, allocating little
    prior(torch.zeros(1, prior.channels, 2, 2, dtype=torch.long))
before = kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current resident size
    f.write("5")
if method == "forward":
    with torch.no_grad():
        prior(torch.zeros(n, prior.channels, *shape, dtype=torch.long))
elif method == "cached":  # two rows: the caches, the per-row and the per-position work
    first_values(prior.incremental(None, shape), prior, n, shape, 2 * shape[1] * prior.channels)
else:  # the naive stepper keeps nothing between values: every value costs the same
    first_values(NaiveStepper(prior, None), prior, n, shape, 2)
print(json.dumps({{"before_kib": before, "extra_kib": kib("VmHWM") - before}}))
"""


def peak_memory() -> dict[str, dict[str, float]]:
    """``{case: {"<method>-extra-peak-mib": MiB}}``: the extra peak RSS of each method, in a subprocess per (case,
    method) (see the module docstring)."""
    table: dict[str, dict[str, float]] = {}
    for case in CASES:
        for method in ("forward", "cached", "naive"):
            script = _MEMORY_SCRIPT.format(
                root=str(ROOT),
                threads=THREADS,
                prior=case.prior,
                config=case.config,
                batch=case.batch,
                shape=case.shape,
                method=method,
            )
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
            if done.returncode:
                raise RuntimeError(f"memory probe of {case.name}/{method} failed:\n{done.stderr}")
            extra_kib = json.loads(done.stdout.strip().splitlines()[-1])["extra_kib"]
            table.setdefault(case.name, {})[f"{method}-extra-peak-mib"] = extra_kib / 1024
    return table


@pytest.mark.skipif(not MEMORY_PROBE, reason="needs Linux /proc to reset the peak RSS")
def test_peak_memory(benchmark, figures):
    """Extra peak RSS of each method, in a subprocess per (case, method) (see the module docstring)."""
    table = {}
    benchmark.pedantic(lambda: table.update(peak_memory()), rounds=1, iterations=1)
    figures["memory"] = table
    benchmark.extra_info["extra_peak_mib"] = {f"{n}/{m}": v for n, r in table.items() for m, v in r.items()}


def summary(results: dict[str, dict[str, float]]) -> str:
    header = (
        f"{'case':<24}{'fwd s':>9}{'cached s':>10}{'naive s':>10}{'cached/fwd':>12}{'naive/fwd':>11}"
        f"{'naive/cached':>14}{'+MiB fwd':>10}{'+MiB cached':>13}{'+MiB naive':>12}"
    )
    lines = [header, "-" * len(header)]
    for case in CASES:
        r = results.get(case.name, {})
        fwd, cached, naive = r.get("forward", math.nan), r.get("cached", math.nan), r.get("naive", math.nan)
        lines.append(
            f"{case.name:<24}{fwd:>9.4f}{cached:>10.2f}{naive:>10.2f}{cached / fwd:>12.1f}{naive / fwd:>11.1f}"
            f"{naive / cached:>14.1f}{r.get('forward-extra-peak-mib', math.nan):>10.1f}"
            f"{r.get('cached-extra-peak-mib', math.nan):>13.1f}"
            f"{r.get('naive-extra-peak-mib', math.nan):>12.1f}"
        )
        if "naive-median" in r:
            note = f"naive from its first {case.naive_values} values: fastest x {values(case)}"
            note += f" (median-based {r['naive-median']:.2f}s"
            note += f"; the whole naive sampler took {r['naive-full']:.2f}s)" if "naive-full" in r else ")"
            lines.append(f"{'':<4}{note}")
    return "\n".join(lines)


def _record(case: Case, r: dict[str, float]) -> dict:
    """One case's figures for the JSON file (the charts of docs/benchmarks/method.md read ``label``, ``*_s``)."""
    k, channels = case.config["num_categories"], case.config.get("channels", 1)
    size = "x".join(map(str, case.shape)) + (f"x{channels}" if channels > 1 else "")
    record = {"case": case.name, "label": f"{case.prior} {size}, K={k}, batch {case.batch}", "batch": case.batch}
    record.update({f"{key.replace('-', '_')}{'' if 'mib' in key else '_s'}": value for key, value in r.items()})
    record["naive_extrapolated_from_values"] = case.naive_values  # naive_s = fastest value x H*W*C
    return record


def test_speed_goals(benchmark, figures, goals, capsys):
    """Prints the summary table and writes the JSON of every case (timing those no earlier test of this run timed),
    then checks the goals on ratios only (the machine is shared and noisy: asserted under ``--benchmark-goals``)."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    for case in CASES:
        if case.name not in figures:
            figures[case.name] = timings(case)
    if MEMORY_PROBE and "memory" not in figures:
        figures["memory"] = peak_memory()
    r = {case.name: {**figures[case.name], **figures.get("memory", {}).get(case.name, {})} for case in CASES}
    with capsys.disabled():
        print("\n" + summary(r))
    codes7, codes16, pixels = r["gated-codes-7x7"], r["gated-codes-16x16"], r["gated-pixels-28x28"]
    goals.check("cached <= 10x one forward pass, gated 7x7 codes", codes7["cached"] <= 10 * codes7["forward"],
                f"{codes7['cached'] / codes7['forward']:.1f}x")  # fmt: skip
    goals.check("cached <= 15x one forward pass, gated 16x16 codes", codes16["cached"] <= 15 * codes16["forward"],
                f"{codes16['cached'] / codes16['forward']:.1f}x")  # fmt: skip
    goals.check("naive >= 20x cached, gated 28x28 pixels", pixels["naive"] >= 20 * pixels["cached"],
                f"{pixels['naive'] / pixels['cached']:.0f}x")  # fmt: skip
    write_results("sampling-speed", [_record(case, r[case.name]) for case in CASES], threads=THREADS, goals=goals.met)
    goals.verify()
