"""Reconstruction quality on real MNIST: a 7x7 grid of codes (conv) against one code per image (flat).

Run with::

    pytest benchmarks/quality/test_vqvae_grid.py --benchmark-only --quality -s

Both models get the same codebook size (K = 512, D = 16), the same vq quantizer with dead-code restart on
(``restart_after=100``), the same data (the first 12,000 MNIST training images; the first 2,000 test images held out),
optimiser (Adam, lr 1e-3, batch 64), seed and number of steps. The ``conv`` model downsamples 28x28 by 4 to 7x7 codes
(32 hidden channels, narrower than the library default so that the run stays within a few CPU minutes); the ``flat``
model encodes each image to a single code (MLP, 256 hidden features).

The goals (arXiv:1711.00937's point that a spatial grid of discrete codes reconstructs far better than one code per
image): held-out reconstruction MSE (pixels in ``[0, 1]``) of ``conv`` at most one fifth of ``flat``'s, and ``conv``
using at least half of its 512 codes on the held-out set. Skips when the MNIST files are absent (``$VQGEN_DATA`` or
``../shared/data`` beside the repository).
"""

from __future__ import annotations

import time

import pytest
import torch

import vqgen
from benchmarks.common import require_data
from vqgen.training import fit_vqvae

TRAIN, HELD_OUT, STEPS, CODES, DIM = 12_000, 2_000, 900, 512, 16
THREADS = 1  # the machine is shared: one thread per process wastes less time waiting than two
pytestmark = pytest.mark.threads(THREADS)


def _model(autoencoder: str, **sizes: int):
    torch.manual_seed(0)
    return vqgen.build(
        "model",
        "vqvae",
        encoder=vqgen.build("encoder", autoencoder, latent_dim=DIM, **sizes),
        quantizer=vqgen.build("quantizer", "vq", num_codes=CODES, dim=DIM, restart_after=100),
        decoder=vqgen.build("decoder", autoencoder, latent_dim=DIM, **sizes),
    )


def test_conv_grid_beats_one_code_per_image(benchmark):
    from vqgen.data import load_dataset

    root = require_data("mnist")
    train = load_dataset("mnist", split="train", root=root).images[:TRAIN]
    held_out = load_dataset("mnist", split="test", root=root).images[:HELD_OUT]
    results: dict[str, dict] = {}

    def run() -> None:
        for name, sizes in [("conv", {"hidden_channels": 32}), ("flat", {"hidden_features": 256})]:
            model = _model(name, **sizes)
            start = time.perf_counter()
            history = fit_vqvae(
                model, train, eval_data=held_out, max_steps=STEPS, batch_size=64, lr=1e-3, seed=0, progress=False,
                device="cpu",
            )  # fmt: skip
            results[name] = {**history[-1]["eval"], "seconds": time.perf_counter() - start}

    benchmark.pedantic(run, rounds=1, iterations=1)
    conv, flat = results["conv"], results["flat"]
    ratio = conv["reconstruction_mse"] / flat["reconstruction_mse"]
    benchmark.extra_info.update(
        {f"{name}_{key}": value for name, result in results.items() for key, value in result.items()}
    )
    benchmark.extra_info["mse_ratio_conv_over_flat"] = ratio
    print(
        f"\nMNIST held-out ({HELD_OUT} images) after {STEPS} steps of batch 64 on {TRAIN} training images, K={CODES}:"
        f"\n  conv 7x7: MSE {conv['reconstruction_mse']:.5f}, perplexity {conv['perplexity']:.1f}, "
        f"usage {conv['usage']:.3f} ({conv['seconds']:.0f} s)"
        f"\n  flat 1x1: MSE {flat['reconstruction_mse']:.5f}, perplexity {flat['perplexity']:.1f}, "
        f"usage {flat['usage']:.3f} ({flat['seconds']:.0f} s)"
        f"\n  MSE ratio conv / flat: {ratio:.3f} (goal <= 0.2)"
    )
    assert ratio <= 0.2, (
        f"conv MSE {conv['reconstruction_mse']:.5f} is not <= 1/5 of flat's {flat['reconstruction_mse']:.5f}"
    )
    assert conv["usage"] >= 0.5, f"conv uses only {conv['usage']:.1%} of its {CODES} codes on held-out data"
