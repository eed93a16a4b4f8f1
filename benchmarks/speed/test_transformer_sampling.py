"""Sampling speed and key/value-cache memory of the transformer prior (issue 22), in one process, as ratios.

Run with::

    pytest benchmarks/speed/test_transformer_sampling.py --benchmark-only -s

The prior is the library's default transformer (``PRESETS["cpu"]``: 2 layers, width 128, 4 heads) over 7×7 and
16×16 grids of K = 512 codes, a batch of B = 64, on two torch threads as in
``benchmarks/speed/test_sampling.py``, whose method this follows: the timings of a case are interleaved (forward ×3,
cached, naive, forward ×2) and each is the fastest of its repetitions.

- **cached**: whole grids through the public ``prior.sample(..., method="cached")`` (the key/value-cache stepper).
- **naive**: one full forward pass per value (``NaiveStepper``, minGPT's ``generate`` without a crop). Its cost does
  not depend on the position (the network always runs over the whole grid), so only the **first values** are timed,
  one by one through the same loop (stepper, ``filter_logits``, ``draw``), and the whole grid is extrapolated as the
  fastest value's time × ``H·W`` (the median-based figure is printed too). On 7×7 the whole naive sampler also runs,
  as a check of the extrapolation.
- **forward**: one forward pass over the same batch of grids: what training costs per batch.

Goals (``test_speed_goals``, which writes ``transformer-speed.json`` with every figure, measuring those no earlier test
of the run measured): cached ≥ 50× faster than naive at 16×16 (asserted under ``--benchmark-goals``), and cached
sampling ≤ 3× one forward pass (reported).

Memory (``test_kv_cache_memory``): the cache of 64 grids of 16×16 and 32×32 codes, computed from the buffers' sizes
(``2 · layers · B · L · width`` float32 numbers, ``TransformerPrior.kv_cache_bytes``), checked against the bytes the
stepper's buffers hold after its first step (they are allocated there, whole), and, in a fresh subprocess, against
the growth of the process's peak resident set size over the cached steps of a whole grid (the operating system makes
a buffer's pages resident as they are first written, so the growth after the first step alone is small).

Threads (``test_threads``): cached sampling of 64 grids with the prior's policy (one intra-op thread), on two intra-op
threads, and split into two slices of one thread each (the convolutional priors' policy,
[`SamplingThreads`][vqgen.threads.SamplingThreads]).
"""

from __future__ import annotations

import contextlib
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import vqgen
from benchmarks.common import naive_value_seconds, seconds, write_results
from vqgen.priors.transformer import PRESETS, TransformerPrior
from vqgen.threads import SamplingThreads

THREADS, BATCH, K = 2, 64, 512
CASES = {"codes-7x7": ((7, 7), 7, 3), "codes-16x16": ((16, 16), 16, 1)}  # shape, naive values timed, cached rounds
MEMORY_SHAPES = ((16, 16), (32, 32))
pytestmark = pytest.mark.threads(THREADS)


def build() -> TransformerPrior:
    torch.manual_seed(0)
    return vqgen.build("prior", "transformer", num_categories=K, **PRESETS["cpu"]).eval()


def sampling_timings(name: str, run=lambda fn: fn()) -> dict[str, float]:
    """Forward, cached and naive seconds of one grid size, interleaved so that they see the same machine load;
    ``run(fn)`` runs the cached rounds (the test hands it to pytest-benchmark)."""
    shape, naive_values, rounds = CASES[name]
    prior, generator = build(), torch.Generator().manual_seed(0)
    x = torch.randint(0, K, (BATCH, 1, *shape), generator=generator)
    prior.sample(BATCH, (1, shape[1]), generator=generator)  # warm up
    with torch.no_grad():
        forward = [seconds(lambda: prior(x)) for _ in range(3)]
    cached: list[float] = []
    run(lambda: cached.extend(seconds(lambda: prior.sample(BATCH, shape, generator=generator)) for _ in range(rounds)))
    per_value = naive_value_seconds(prior, BATCH, shape, naive_values, generator)
    with torch.no_grad():
        forward += [seconds(lambda: prior(x)) for _ in range(2)]
    values = shape[0] * shape[1]
    r = {"forward": min(forward), "cached": min(cached), "naive": min(per_value) * values}
    r["naive-median"] = statistics.median(per_value) * values
    if values <= 64:  # the whole naive sampler, as a check of the extrapolation
        r["naive-full"] = seconds(lambda: prior.sample(BATCH, shape, method="naive", generator=generator))
    return r


@pytest.mark.parametrize("name", list(CASES))
def test_sampling(benchmark, figures, name):
    figures[name] = r = sampling_timings(name, lambda fn: benchmark.pedantic(fn, rounds=1, iterations=1))
    benchmark.extra_info.update(r)


_MEMORY_SCRIPT = r"""
import json, torch, vqgen
from vqgen.priors.transformer import PRESETS
def kib(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1])
torch.set_num_threads(1)
torch.manual_seed(0)
prior = vqgen.build("prior", "transformer", num_categories={k}, **PRESETS["cpu"]).eval()
x = torch.zeros({batch}, 1, {height}, {width}, dtype=torch.long)
stepper = prior.incremental(None, ({height}, {width}))
with torch.no_grad():
    prior(x[:1, :, :1, :2])  # warm the kernels on a tiny grid
before = kib("VmRSS")
with open("/proc/self/clear_refs", "w") as f:  # reset the peak (VmHWM) to the current resident size
    f.write("5")
with torch.no_grad():
    stepper.logits(x, 0, 0, 0)  # the first step allocates every buffer, whole
    allocated, first = stepper.nbytes, kib("VmHWM") - before  # pages are resident once written: few yet
    for position in range(1, {height} * {width}):  # every step of the grid writes its keys and values
        stepper.logits(x, *divmod(position, {width}), 0)
print(json.dumps({{"extra_kib": kib("VmHWM") - before, "first_step_kib": first, "stepper_bytes": allocated}}))
"""


def kv_cache_memory() -> dict[str, dict[str, float]]:
    """The cache of 64 grids at 16×16 and 32×32: formula, the stepper's buffers, and the peak RSS growth."""
    prior, table = build(), {}
    for shape in MEMORY_SHAPES:
        computed = prior.kv_cache_bytes(BATCH, shape)
        stepper = prior.incremental(None, shape)
        with torch.no_grad():
            stepper.logits(torch.zeros(BATCH, 1, *shape, dtype=torch.long), 0, 0, 0)
        assert stepper.nbytes == computed  # every buffer is allocated at the first step, and is what it says
        row = {"computed_mib": computed / 2**20, "stepper_mib": stepper.nbytes / 2**20}
        if Path("/proc/self/clear_refs").exists():
            script = _MEMORY_SCRIPT.format(k=K, batch=BATCH, height=shape[0], width=shape[1])
            done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600)
            if done.returncode:
                raise RuntimeError(f"memory probe of {shape} failed:\n{done.stderr}")
            probe = json.loads(done.stdout.strip().splitlines()[-1])
            assert probe["stepper_bytes"] == computed
            row["grid_extra_peak_mib"] = probe["extra_kib"] / 1024
            row["first_step_extra_peak_mib"] = probe["first_step_kib"] / 1024
        table["x".join(map(str, shape))] = row
    return table


def test_kv_cache_memory(benchmark, figures):
    table: dict = {}
    benchmark.pedantic(lambda: table.update(kv_cache_memory()), rounds=1, iterations=1)
    figures["kv-cache"] = table
    benchmark.extra_info.update(table)


class _TwoSlices(TransformerPrior):
    """The convolutional priors' policy: the batch split into slices of one thread each."""

    sampling_shards = SamplingThreads.sampling_shards


class _TorchThreads(TransformerPrior):
    """No policy: the loop runs on torch's intra-op threads as configured (two here)."""

    def sampling_context(self, n: int, method: str) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()


def thread_policies() -> dict[str, dict[str, float]]:
    """Cached sampling of 64 grids under three thread policies, interleaved: one whole grid each, per size."""
    reference = build()
    policies = {"one-thread": reference}  # the prior's own policy
    for name, cls in (("two-slices", _TwoSlices), ("two-intra-op-threads", _TorchThreads)):
        policies[name] = cls(num_categories=K, **PRESETS["cpu"]).eval()
        policies[name].load_state_dict(reference.state_dict())
    table: dict[str, dict[str, float]] = {}
    for name, (shape, _, _) in CASES.items():
        for policy, prior in policies.items():
            start = time.perf_counter()
            prior.sample(BATCH, shape, generator=torch.Generator().manual_seed(0))
            table.setdefault(name, {})[policy] = time.perf_counter() - start
    return table


def test_threads(benchmark, figures):
    table: dict = {}
    benchmark.pedantic(lambda: table.update(thread_policies()), rounds=1, iterations=1)
    figures["threads"] = table
    benchmark.extra_info.update(table)


def summary(results: dict) -> str:
    lines = [f"{'case':<14}{'fwd s':>9}{'cached s':>10}{'naive s':>10}{'cached/fwd':>12}{'naive/cached':>14}"]
    for name in CASES:
        r = results[name]
        lines.append(f"{name:<14}{r['forward']:>9.3f}{r['cached']:>10.2f}{r['naive']:>10.1f}"
                     f"{r['cached'] / r['forward']:>12.2f}{r['naive'] / r['cached']:>14.1f}")  # fmt: skip
        note = f"naive from its first {CASES[name][1]} values: fastest x {CASES[name][0][0] * CASES[name][0][1]}"
        note += f" (median-based {r['naive-median']:.1f}s"
        note += f"; the whole naive sampler took {r['naive-full']:.1f}s)" if "naive-full" in r else ")"
        lines.append(f"    {note}")
    for shape, row in results["kv-cache"].items():
        lines.append(f"kv cache {shape}, B={BATCH}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()))
    for name, row in results["threads"].items():
        lines.append(f"threads {name}: " + ", ".join(f"{k} {v:.2f}s" for k, v in row.items()))
    return "\n".join(lines)


def test_speed_goals(benchmark, figures, goals, capsys):
    """Prints the summary and writes ``transformer-speed.json`` (measuring what no earlier test of this run
    measured); the goals on ratios (see the module docstring) are checked, the first asserted under
    ``--benchmark-goals``."""
    benchmark.pedantic(lambda: None, rounds=1)
    for name in CASES:
        if name not in figures:
            figures[name] = sampling_timings(name)
    if "kv-cache" not in figures:
        figures["kv-cache"] = kv_cache_memory()
    if "threads" not in figures:
        figures["threads"] = thread_policies()
    results = {name: figures[name] for name in (*CASES, "kv-cache", "threads")}
    with capsys.disabled():
        print("\n" + summary(results))
    r = results["codes-16x16"]
    speedup, ratio = r["naive"] / r["cached"], r["cached"] / r["forward"]
    goals.check("codes-16x16: cached >= 50x faster than naive", speedup >= 50, f"{speedup:.0f}x")
    goals.check("codes-16x16: cached <= 3x one forward pass", ratio <= 3, f"{ratio:.1f}x", asserted=False)
    write_results("transformer-speed", results, threads=THREADS, batch=BATCH, config=PRESETS["cpu"],
                  naive_extrapolated_from_values={name: case[1] for name, case in CASES.items()},
                  goals=goals.met)  # fmt: skip
    goals.verify()
