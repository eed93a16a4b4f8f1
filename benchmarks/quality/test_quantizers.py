"""Two-stage quality on real MNIST with each quantizer: ``fsq`` vs ``vq`` vs ``ema`` at the same budget.

Run with::

    pytest benchmarks/quality/test_quantizers.py --benchmark-only --quality -s

Skipped when the MNIST files are absent from ``$VQGEN_DATA`` or ``../shared/data`` beside the repository. For each
quantizer (``QUANTIZERS`` below), all with K = 64 codes (FSQ: levels ``[4, 4, 4]``) and everything else identical:

1. stage 1: the same conv VQ-VAE (28x28 → 7x7 codes, D = 16), seed 0, ``VQVAE_STEPS`` steps of batch ``VQVAE_BATCH``,
   Adam at ``VQVAE_LR``, on the first ``TRAIN`` training images; ``vq`` and ``ema`` with k-means initialisation and
   dead-code restarts (FSQ has no codebook to initialise and no code can die);
2. stage 2: the same ``gated_pixelcnn`` prior on the codes, seed 0, ``PRIOR_STEPS`` steps (or ``PRIOR_SECONDS``) of
   batch ``PRIOR_BATCH``, Adam at ``PRIOR_LR``;
3. :func:`vqgen.evaluation.evaluate_two_stage` on the first ``HELD_OUT`` test images with ONE FID classifier
   (``CLASSIFIER_EPOCHS`` epochs on the first ``CLASSIFIER_TRAIN`` training images): held-out reconstruction MSE,
   codebook usage and perplexity, held-out bits per code of the prior (and of the ``independent`` baseline, for
   scale), and the classifier-feature FID of ``NUM_SAMPLES`` decoded samples.

The default budget is deliberately small (a few CPU-minutes on a shared machine), so the figures compare the
quantizers at an early point of training, not at convergence. Sample grids go to ``$VQGEN_BENCH_OUT/fsq-quality/``
(default ``<tmp>/vqgen-bench/fsq-quality/``), the figures as ``fsq-quality.json`` (see ``benchmarks.common``), written
by ``test_quantizer_quality_summary``, which trains whichever quantizer no earlier test of this run trained. CPU,
``torch.set_num_threads(1)``.
"""

from __future__ import annotations

import time

import pytest
import torch

from benchmarks.common import bench_dir, require_data, torch_threads, write_results
from vqgen import TwoStageModel
from vqgen.evaluation import evaluate_two_stage
from vqgen.images import save_grid, to_uint8
from vqgen.training.classifier import train_classifier

TRAIN, HELD_OUT, CLASSIFIER_TRAIN, CLASSIFIER_EPOCHS = 6_000, 1_000, 10_000, 1
THREADS = 1
pytestmark = pytest.mark.threads(THREADS)
ENCODER = {"name": "conv", "in_channels": 1, "hidden_channels": 32, "residual_channels": 16, "latent_dim": 16,
           "num_downsamples": 2}  # fmt: skip
QUANTIZERS = {
    "vq": {"name": "vq", "num_codes": 64, "kmeans_init": True, "restart_after": 100},
    "ema": {"name": "ema", "num_codes": 64, "kmeans_init": True, "restart_after": 100},
    "fsq": {"name": "fsq", "levels": [4, 4, 4]},  # 64 codes; projections 16 → 3 → 16
}
PRIOR = {"name": "gated_pixelcnn", "hidden_channels": 32, "num_layers": 5, "head_channels": 64}
VQVAE_STEPS, VQVAE_BATCH, VQVAE_LR = 400, 64, 1e-3
PRIOR_STEPS, PRIOR_SECONDS, PRIOR_BATCH, PRIOR_LR = 400, 90.0, 64, 2e-3
NUM_SAMPLES, GRID_SAMPLES = 500, 64


@pytest.fixture(scope="module")
def mnist():
    """``(train, test, classifier)``: the data subsets and the one FID classifier every quantizer is scored with."""
    from vqgen.data import from_arrays, load_dataset

    root = require_data("mnist")
    full = load_dataset("mnist", split="train", root=root)
    train = from_arrays(full.images[:TRAIN], full.labels[:TRAIN])
    test_full = load_dataset("mnist", split="test", root=root)
    test = from_arrays(test_full.images[:HELD_OUT], test_full.labels[:HELD_OUT])
    with torch_threads(THREADS):
        classifier = train_classifier(
            full.images[:CLASSIFIER_TRAIN], full.labels[:CLASSIFIER_TRAIN], test=test, epochs=CLASSIFIER_EPOCHS,
            seed=0, device="cpu",
        )  # fmt: skip
    return train, test, classifier


def _run(name: str, train, test, classifier) -> dict:
    torch.manual_seed(0)
    model = TwoStageModel.from_config({"encoder": ENCODER, "quantizer": QUANTIZERS[name], "prior": PRIOR})
    started = time.perf_counter()
    model.fit_stage1(
        train, max_steps=VQVAE_STEPS, batch_size=VQVAE_BATCH, lr=VQVAE_LR, seed=0, device="cpu", progress=False,
    )  # fmt: skip
    stage1_seconds = time.perf_counter() - started
    torch.manual_seed(0)
    started = time.perf_counter()
    history = model.fit_prior(
        train, max_steps=PRIOR_STEPS, max_seconds=PRIOR_SECONDS, batch_size=PRIOR_BATCH, lr=PRIOR_LR, seed=0,
        device="cpu", progress=False,
    )  # fmt: skip
    prior_seconds = time.perf_counter() - started
    metrics = evaluate_two_stage(model, train, test, classifier=classifier.model, num_samples=NUM_SAMPLES, seed=0)
    generator = torch.Generator().manual_seed(0)
    samples = to_uint8(model.sample(GRID_SAMPLES, generator=generator))
    save_grid(bench_dir("fsq-quality") / f"samples-{name}.png", samples, scale=2)
    return {
        "num_codes": model.num_codes,
        "stage1_seconds": stage1_seconds,
        "prior_steps": history[-1]["step"],
        "prior_seconds": prior_seconds,
        "reconstruction_mse": metrics["stage1"]["reconstruction_mse"],
        "perplexity": metrics["stage1"]["perplexity"],
        "usage": metrics["stage1"]["usage"],
        "bits_per_code": metrics["bits_per_code"]["prior"],
        "bits_per_code_independent": metrics["bits_per_code"]["independent"],
        "fid": metrics["fid_classifier"]["prior"],
        "classifier_test_accuracy": metrics["classifier_test_accuracy"],
    }


@pytest.mark.parametrize("name", list(QUANTIZERS))
def test_quantizer_quality(benchmark, mnist, figures, name):
    r: dict = {}
    benchmark.pedantic(lambda: r.update(_run(name, *mnist)), rounds=1, iterations=1)
    figures[name] = r
    benchmark.extra_info.update(r)
    assert r["bits_per_code"] < r["bits_per_code_independent"], r


def test_quantizer_quality_summary(benchmark, mnist, figures, summary_line, capsys):
    """The table and the JSON of every quantizer (training those no earlier test of this run trained)."""
    benchmark.pedantic(lambda: None, rounds=1)  # a benchmark, so that --benchmark-only runs this test too
    for name in QUANTIZERS:
        if name not in figures:
            figures[name] = _run(name, *mnist)
    results = {name: figures[name] for name in QUANTIZERS}
    budget = {
        "train_images": TRAIN, "held_out_images": HELD_OUT, "encoder": ENCODER, "quantizers": QUANTIZERS,
        "prior": PRIOR, "vqvae_steps": VQVAE_STEPS, "vqvae_batch": VQVAE_BATCH, "vqvae_lr": VQVAE_LR,
        "prior_steps": PRIOR_STEPS, "prior_seconds": PRIOR_SECONDS, "prior_batch": PRIOR_BATCH, "prior_lr": PRIOR_LR,
        "classifier_train_images": CLASSIFIER_TRAIN, "classifier_epochs": CLASSIFIER_EPOCHS,
        "num_samples": NUM_SAMPLES, "threads": THREADS,
    }  # fmt: skip
    path = write_results("fsq-quality", results, budget=budget)
    lines = [
        f"MNIST, K = 64, {VQVAE_STEPS} VQ-VAE steps, gated_pixelcnn {PRIOR_STEPS} steps, FID over {NUM_SAMPLES} "
        f"samples (classifier accuracy {results['vq']['classifier_test_accuracy']:.3f})",
        f"{'quantizer':<10}{'recon MSE':>11}{'usage':>8}{'perplexity':>12}{'bits/code':>11}{'indep.':>8}"
        f"{'FID':>8}{'stage1 s':>10}{'prior s':>9}",
    ]
    for name, r in results.items():
        lines.append(
            f"{name:<10}{r['reconstruction_mse']:>11.4f}{r['usage']:>8.0%}{r['perplexity']:>12.1f}"
            f"{r['bits_per_code']:>11.3f}{r['bits_per_code_independent']:>8.3f}{r['fid']:>8.2f}"
            f"{r['stage1_seconds']:>10.0f}{r['prior_seconds']:>9.0f}"
        )
    for line in lines:
        summary_line(line)
    with capsys.disabled():
        print("\n" + "\n".join(lines) + f"\n{path}; sample grids in {bench_dir('fsq-quality')}")
