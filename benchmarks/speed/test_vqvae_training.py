"""Training-step throughput of the conv VQ-VAE (stage 1): steps/s on a batch of 64 MNIST-sized 28x28 images.

Run with::

    pytest benchmarks/speed/test_vqvae_training.py --benchmark-only

One step is forward (encoder → quantizer → decoder, loss of equation 3 of arXiv:1711.00937), backward and an Adam
update, with the default conv autoencoder (64 hidden channels, D = 16, 28x28 → 7x7 codes) and K = 512 codes. The
quantizers compared, in the same process and the same autoencoder:

- ``vq``: vqgen's straight-through quantizer with a codebook learned by gradient;
- ``ema``: vqgen's EMA-codebook quantizer (decay 0.99);
- ``reference-ema``: vector-quantize-pytorch's ``VectorQuantize`` (EMA codebook, decay 0.99, β = 0.25), the reference.

``test_ratio`` reports ours / reference steps/s (printed and in ``extra_info``); absolute figures are only information
(the machine and its load matter). Runs with ``torch.set_num_threads(1)``. Dead-code restarts are left at the
quantizers' defaults.
"""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

import vqgen

BATCH, SIDE, CODES, DIM = 64, 28, 512, 16
THREADS = 1  # on a shared, busy CPU two intra-op threads were 2-10x slower per step than one
pytestmark = pytest.mark.threads(THREADS)


class _ReferenceQuantizer(nn.Module):
    """vector-quantize-pytorch's VectorQuantize on (B, D, h, w) feature maps, returning (quantized, loss)."""

    def __init__(self) -> None:
        super().__init__()
        vqp = pytest.importorskip("vector_quantize_pytorch")
        self.vq = vqp.VectorQuantize(
            dim=DIM, codebook_size=CODES, decay=0.99, commitment_weight=0.25, accept_image_fmap=True
        )

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quantized, _, loss = self.vq(z)
        return quantized, loss.sum()


def _train_step(quantizer_name: str):
    """A closure running one optimisation step of the conv VQ-VAE with the named quantizer."""
    torch.manual_seed(0)
    encoder = vqgen.build("encoder", "conv", latent_dim=DIM)
    decoder = vqgen.build("decoder", "conv", latent_dim=DIM)
    if quantizer_name == "reference-ema":
        quantizer = _ReferenceQuantizer()

        def quantize(z):
            return quantizer(z)
    else:
        quantizer = vqgen.build("quantizer", quantizer_name, num_codes=CODES, dim=DIM)

        def quantize(z):
            out = quantizer(z)
            return out.quantized, out.loss

    modules = nn.ModuleList([encoder, quantizer, decoder]).train()
    optimizer = torch.optim.Adam(modules.parameters(), lr=1e-3)
    x = torch.rand(BATCH, 1, SIDE, SIDE, generator=torch.Generator().manual_seed(0))

    def step() -> float:
        quantized, quantizer_loss = quantize(encoder(x))
        loss = nn.functional.mse_loss(decoder(quantized), x) + quantizer_loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    for _ in range(3):  # warm-up (first-step initialisations, allocator)
        step()
    return step


@pytest.mark.parametrize("quantizer", ["vq", "ema", "reference-ema"])
def test_training_step(benchmark, quantizer):
    step = _train_step(quantizer)
    benchmark.group = "vqvae-train-step"
    benchmark.extra_info.update({"batch": BATCH, "image": f"{SIDE}x{SIDE}", "num_codes": CODES, "dim": DIM})
    loss = benchmark.pedantic(step, rounds=10, iterations=1, warmup_rounds=1)
    assert loss == loss  # finite (not NaN)
    benchmark.extra_info["steps_per_second"] = 1 / benchmark.stats.stats.mean


def _steps_per_second(step, seconds: float = 3.0) -> float:
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds or count < 3:
        step()
        count += 1
    return count / (time.perf_counter() - start)


def test_ratio(benchmark):
    """ours / reference steps/s, interleaved in one process so that machine load affects both alike."""
    steps = {name: _train_step(name) for name in ["vq", "ema", "reference-ema"]}
    rates = {name: [] for name in steps}

    def measure() -> None:
        for _ in range(2):
            for name, step in steps.items():
                rates[name].append(_steps_per_second(step, seconds=1.5))

    benchmark.pedantic(measure, rounds=1, iterations=1)
    best = {name: max(values) for name, values in rates.items()}
    for name in ("vq", "ema"):
        benchmark.extra_info[f"{name}_over_reference"] = best[name] / best["reference-ema"]
    benchmark.extra_info.update({f"{name}_steps_per_second": rate for name, rate in best.items()})
    print(
        "\nconv VQ-VAE training steps/s (batch 64, 28x28, K=512): "
        + ", ".join(f"{name} {rate:.2f}" for name, rate in best.items())
        + "; ours/reference: "
        + ", ".join(f"{name} {benchmark.extra_info[f'{name}_over_reference']:.2f}" for name in ("vq", "ema"))
    )
    assert all(rate > 0 for rate in best.values())
