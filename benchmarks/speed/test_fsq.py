"""FSQ throughput: vqgen's ``fsq`` vs vector-quantize-pytorch's ``FSQ``, one training step each, in the same run.

Run with::

    pytest benchmarks/speed/test_fsq.py --benchmark-only

Each benchmark times one training step of the quantizer alone — forward and backward through ``quantized`` — on 16,384
vectors (``z`` of shape ``(16, D, 32, 32)``) with the paper's levels ``[8, 5, 5, 5]`` (K = 1,000), in two settings
that pytest-benchmark groups apart:

* ``D=4``: ``z`` already has ``len(levels)`` channels, so neither implementation projects;
* ``D=64``: both project ``64 → 4 → 64`` with learned linear layers (the same weights, copied into the reference).

Before timing, the codes and quantized outputs of both are checked to be identical. The run ends with a "benchmark
summary" section giving, per setting, both medians (and minima) and the ratio ``vector-quantize-pytorch median /
vqgen median`` (above 1: vqgen is faster). pytest-benchmark times one contestant after the other, so on a shared
machine a change of load between them skews that ratio; the summary therefore also times ``INTERLEAVED`` steps of
each, alternating (vqgen, reference, vqgen, ...), and reports the ratio of those medians, which load drift affects
alike.

Note that vqgen's step does work the reference does not: it checks ``z`` for NaN/inf and computes the perplexity and
codebook usage of the batch (a ``bincount`` over K codes).
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

import vqgen
from benchmarks.common import step_seconds

LEVELS = [8, 5, 5, 5]
DIMS = (4, 64)
ROUNDS = 15
INTERLEAVED = 30


@pytest.fixture(scope="module")
def inputs() -> dict[int, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {d: torch.randn(16, d, 32, 32, generator=generator) * 2 for d in DIMS}


def _pair(dim: int):
    """vqgen's FSQ and vector-quantize-pytorch's, with identical projection weights (when D ≠ 4)."""
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(0)
    ours = vqgen.build("quantizer", "fsq", levels=LEVELS, dim=dim)
    reference = vqp.FSQ(levels=LEVELS, dim=dim)
    if ours.project_in is not None:
        reference.project_in.load_state_dict(ours.project_in.state_dict())
        reference.project_out.load_state_dict(ours.project_out.state_dict())
    return ours, reference


def _step(name: str, module: torch.nn.Module, z: torch.Tensor):
    z = z.clone().requires_grad_()

    def step():
        quantized = module(z).quantized if name == "vqgen" else module(z)[0]
        quantized.sum().backward()

    return step


def _checked_pair(z: torch.Tensor):
    """``_pair(D)`` after checking that both give the same codes and quantized outputs on ``z``."""
    ours, reference = _pair(z.shape[1])
    with torch.no_grad():
        out = ours(z)
        quantized, indices = reference(z)
    assert torch.equal(out.codes, indices.long()), f"{int((out.codes != indices).sum())} codes differ"
    torch.testing.assert_close(out.quantized, quantized)
    return ours, reference


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("name", ["vqgen", "vqp"])
def test_fsq_speed(benchmark, inputs, figures, name, dim):
    z = inputs[dim]
    ours, reference = _checked_pair(z)
    benchmark.group = f"fsq levels={LEVELS} D={dim}"
    benchmark.extra_info.update(vectors=z.numel() // dim, dim=dim, codes=ours.num_codes)
    benchmark.pedantic(_step(name, ours if name == "vqgen" else reference, z), rounds=ROUNDS, warmup_rounds=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        figures[dim, name] = {"median": benchmark.stats.stats.median, "min": benchmark.stats.stats.min}


def test_fsq_speed_summary(benchmark, inputs, figures, summary_line):
    """Both medians (timing those no earlier test of this run timed), their ratio, and the interleaved ratio."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    for d in DIMS:
        pair = None
        for n in ("vqgen", "vqp"):
            if (d, n) not in figures:
                pair = pair or _checked_pair(inputs[d])
                figures[d, n] = step_seconds(_step(n, pair[0] if n == "vqgen" else pair[1], inputs[d]), ROUNDS)
    medians = {key: f["median"] for key, f in figures.items()}
    minima = {key: f["min"] for key, f in figures.items()}
    summary_line(f"FSQ step, levels {LEVELS}, 16,384 vectors, torch threads {torch.get_num_threads()}: median (min) ms")
    for d in DIMS:
        times = ", ".join(f"{n} {1e3 * medians[d, n]:.2f} ({1e3 * minima[d, n]:.2f})" for n in ("vqp", "vqgen"))
        ratio = medians[d, "vqp"] / medians[d, "vqgen"]
        summary_line(f"D={d}: {times}; vector-quantize-pytorch / vqgen (median ratio) {ratio:.2f}x")
        alternate = _interleaved(d)
        summary_line(
            f"D={d}, {INTERLEAVED} interleaved steps each: vqp {alternate['vqp']:.2f} ms, vqgen "
            f"{alternate['vqgen']:.2f} ms (medians); vector-quantize-pytorch / vqgen "
            f"{alternate['vqp'] / alternate['vqgen']:.2f}x"
        )


def _interleaved(dim: int) -> dict[str, float]:
    """Median ms of ``INTERLEAVED`` steps of each contestant, run alternately on the same input."""
    ours, reference = _pair(dim)
    z = torch.randn(16, dim, 32, 32, generator=torch.Generator().manual_seed(0)) * 2
    steps = {"vqgen": _step("vqgen", ours, z), "vqp": _step("vqp", reference, z)}
    times: dict[str, list[float]] = {name: [] for name in steps}
    for step in steps.values():  # warm-up
        step()
    for _ in range(INTERLEAVED):
        for name, step in steps.items():
            started = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - started)
    return {name: 1e3 * statistics.median(values) for name, values in times.items()}
