"""Quantizer throughput: vqgen's ``vq`` and ``ema`` vs a plain straight-through reference and vector-quantize-pytorch.

Run with::

    pytest benchmarks/speed/test_quantizers.py --benchmark-only

Each benchmark times one training step of the quantizer alone — forward and backward through ``quantized`` and the
loss — on ``z`` of shape ``(16, 64, 32, 32)``: 16,384 vectors of D = 64, at K = 512 and K = 4096. All run in one
process, one after the other, with the same input, codebook and torch threads. pytest-benchmark groups them by K
(``quantizer K=512``); the run ends with a "benchmark summary" section giving, per K, the median time of each and
the ratios ``reference median / vqgen median`` (so 5.0 means vqgen takes a fifth of the time). The machine may be
shared and noisy: compare only ratios within one run; minima are printed beside the medians.

The contestants:

* ``plain``: the textbook implementation written below — one ``addmm`` for ``|e|² − 2 z·eᵀ`` over the whole
  ``(N, K)`` matrix, ``argmin``, ``F.embedding``, the two ``mse_loss`` terms, ``z + (e − z).detach()``, and a
  ``bincount`` perplexity. Codebook learned by gradient, like ``vq``.
* ``vqp``: ``vector_quantize_pytorch.VectorQuantize`` (``accept_image_fmap=True``, ``decay=0.99``,
  ``commitment_weight=0.25``): its default EMA codebook, like ``ema``. Skipped if the package is absent.
* ``vq`` and ``ema``: vqgen, restarts off (``restart_after=0``) since neither reference restarts codes.

Before timing, each contestant's codes are checked against ``plain`` on the same codebook: identical for vqgen; for
vector-quantize-pytorch (which computes its distances differently, so float rounding may break near-ties the other
way) any differing code must be a tie within float32 rounding.

Goals (``test_speed_goals``): at both K, ``ema`` ≥ 5× faster than vector-quantize-pytorch, and ``vq`` ≥ 1.3× faster
than ``plain``; reported and written to ``quantizer-speed.json`` (with the medians of every contestant, timing those
no earlier test of this run timed), asserted under ``--benchmark-goals`` (they depend on the machine).
"""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F
from einops import rearrange

import vqgen
from benchmarks.common import step_seconds, write_results

SIZES = (512, 4096)
NAMES = ("plain", "vq", "ema", "vqp")  # vqp: vector-quantize-pytorch
SHAPE = (16, 64, 32, 32)  # (B, D, H, W): 16,384 vectors of D = 64
BETA = 0.25
ROUNDS = 5
GOAL_VS_VQP = 5.0
GOAL_VS_PLAIN = 1.3


def plain_reference(z: torch.Tensor, codebook: torch.Tensor, beta: float = BETA):
    """The textbook straight-through VQ step on ``z`` ``(B, D, H, W)``; returns quantized, codes, loss, perplexity."""
    b, d, h, w = z.shape
    flat = rearrange(z, "b d h w -> (b h w) d")  # (N, D)
    with torch.no_grad():
        distances = torch.addmm(codebook.pow(2).sum(1), flat, codebook.t(), alpha=-2.0)  # (N, K), |z|² dropped
        codes = distances.argmin(1)  # (N,)
    e = F.embedding(codes, codebook)  # (N, D)
    loss = F.mse_loss(e, flat.detach()) + beta * F.mse_loss(flat, e.detach())
    quantized = flat + (e - flat).detach()
    p = torch.bincount(codes, minlength=codebook.shape[0]).float() / codes.numel()
    perplexity = torch.exp(-torch.special.xlogy(p, p).sum())
    quantized = rearrange(quantized, "(b h w) d -> b d h w", b=b, h=h, w=w)
    return quantized, codes.view(b, h, w), loss, perplexity


@pytest.fixture(scope="module")
def inputs() -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    z = torch.randn(*SHAPE, generator=generator)
    return {k: (z, torch.randn(k, SHAPE[1], generator=generator)) for k in SIZES}


def _plain_step(z: torch.Tensor, codebook: torch.Tensor):
    codebook = codebook.clone().requires_grad_()
    z = z.clone().requires_grad_()

    def step():
        quantized, _, loss, _ = plain_reference(z, codebook)
        (quantized.sum() + loss).backward()

    return None, step, lambda: plain_reference(z, codebook)[1]


def _vqgen_step(name: str, z: torch.Tensor, codebook: torch.Tensor):
    quantizer = vqgen.build("quantizer", name, num_codes=codebook.shape[0], dim=SHAPE[1], beta=BETA, restart_after=0)
    quantizer._set_codes(torch.arange(codebook.shape[0]), codebook)
    z = z.clone().requires_grad_()

    def step():
        out = quantizer(z)
        (out.quantized.sum() + out.loss).backward()

    return quantizer, step, lambda: quantizer.eval()(z).codes


def _vqp_step(z: torch.Tensor, codebook: torch.Tensor):
    vector_quantize_pytorch = pytest.importorskip("vector_quantize_pytorch")
    quantizer = vector_quantize_pytorch.VectorQuantize(
        dim=SHAPE[1],
        codebook_size=codebook.shape[0],
        accept_image_fmap=True,
        decay=0.99,
        commitment_weight=BETA,
    )
    with torch.no_grad():
        quantizer._codebook.embed.copy_(codebook[None])  # (1, K, D): one codebook
        quantizer._codebook.embed_avg.copy_(codebook[None])
    z = z.clone().requires_grad_()

    def step():
        quantized, _, loss = quantizer(z)
        (quantized.sum() + loss).backward()

    def codes():
        with torch.no_grad():
            return quantizer.eval()(z)[1]

    return quantizer, step, codes


def _check_codes(name: str, codes: torch.Tensor, expected: torch.Tensor, z: torch.Tensor, codebook: torch.Tensor):
    if name != "vqp":
        assert torch.equal(codes, expected), f"{name}: {(codes != expected).sum()} codes differ from the reference"
        return
    differ = codes != expected
    if differ.any():  # allowed only on float32 near-ties
        flat = rearrange(z, "b d h w -> b h w d")[differ].double()  # (M, D)
        d_theirs = (flat - codebook.double()[codes[differ]]).pow(2).sum(1)
        d_ours = (flat - codebook.double()[expected[differ]]).pow(2).sum(1)
        assert torch.allclose(d_theirs, d_ours, rtol=1e-5, atol=1e-4), f"{int(differ.sum())} codes are not ties"


def checked_step(name: str, z: torch.Tensor, codebook: torch.Tensor):
    """The contestant's training step, after its codes were checked against ``plain`` (skips ``vqp`` if absent)."""
    if name == "plain":
        module, step, codes = _plain_step(z, codebook)
    elif name == "vqp":
        module, step, codes = _vqp_step(z, codebook)
    else:
        module, step, codes = _vqgen_step(name, z, codebook)
    _check_codes(name, codes(), plain_reference(z, codebook)[1], z, codebook)
    if module is not None:
        module.train()  # the code check ran in eval mode; time training steps
    return step


@pytest.mark.parametrize("k", SIZES)
@pytest.mark.parametrize("name", NAMES)
def test_quantizer_speed(benchmark, inputs, figures, name, k):
    z, codebook = inputs[k]
    step = checked_step(name, z, codebook)
    benchmark.group = f"quantizer K={k}"
    benchmark.extra_info.update(vectors=z.numel() // z.shape[1], dim=z.shape[1], codes=k)
    benchmark.pedantic(step, rounds=ROUNDS, warmup_rounds=1, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        figures[k, name] = {"median": benchmark.stats.stats.median, "min": benchmark.stats.stats.min}


def test_speed_goals(benchmark, inputs, figures, goals, summary_line):
    """The medians of every contestant (timing those no earlier test of this run timed), the ratios, the JSON; the
    goals are asserted under ``--benchmark-goals``."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    for k in SIZES:
        for n in NAMES:
            if (k, n) not in figures and (n != "vqp" or importlib.util.find_spec("vector_quantize_pytorch")):
                figures[k, n] = step_seconds(checked_step(n, *inputs[k]), ROUNDS)
    medians = {key: f["median"] for key, f in figures.items()}
    minima = {key: f["min"] for key, f in figures.items()}
    summary_line(f"quantizer step, z {SHAPE}, torch threads {torch.get_num_threads()}: median (min) ms")
    for k in SIZES:
        times = ", ".join(
            f"{n} {1e3 * medians[k, n]:.1f} ({1e3 * minima[k, n]:.1f})"
            for n in ("plain", "vqp", "vq", "ema")
            if (k, n) in medians
        )
        summary_line(f"K={k}: {times}")
        ratios = {
            "plain/vq": medians[k, "plain"] / medians[k, "vq"],
            "plain/ema": medians[k, "plain"] / medians[k, "ema"],
        }
        if (k, "vqp") in medians:
            ratios["vqp/ema"] = medians[k, "vqp"] / medians[k, "ema"]
            ratios["vqp/vq"] = medians[k, "vqp"] / medians[k, "vq"]
            goals.check(f"K={k}: ema >= {GOAL_VS_VQP}x faster than vector-quantize-pytorch",
                        ratios["vqp/ema"] >= GOAL_VS_VQP, f"{ratios['vqp/ema']:.2f}x")  # fmt: skip
        summary_line(f"K={k}: speed-up (median ratios) " + ", ".join(f"{key} {v:.2f}x" for key, v in ratios.items()))
        goals.check(f"K={k}: vq >= {GOAL_VS_PLAIN}x faster than the plain reference",
                    ratios["plain/vq"] >= GOAL_VS_PLAIN, f"{ratios['plain/vq']:.2f}x")  # fmt: skip
    records = [
        {"codes": k, **{f"{n}_ms": 1e3 * medians[k, n] for n in NAMES if (k, n) in medians},
         **{f"{n}_min_ms": 1e3 * minima[k, n] for n in NAMES if (k, n) in minima}}
        for k in SIZES
    ]  # fmt: skip
    write_results("quantizer-speed", records, shape=list(SHAPE), rounds=ROUNDS, statistic="median of the rounds",
                  goals=goals.met)  # fmt: skip
    goals.verify()
