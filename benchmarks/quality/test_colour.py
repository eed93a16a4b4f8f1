"""Colour: the two-stage model and the pixel-level colour PixelCNN on the CIFAR-10 subset, at small fixed budgets.

Run each part as its own single-threaded process (the two can run at the same time on a 2-core machine) with the
driver ``scripts/experiments/quality_colour.py`` (``--help``)::

    VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data python scripts/experiments/quality_colour.py two-stage
    VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data python scripts/experiments/quality_colour.py pixel

or both through pytest (``pytest benchmarks/quality/test_colour.py --benchmark-only --quality -s``; skipped without
the real data). ``VQGEN_BENCH_TIME_SCALE=0.01`` multiplies every time budget below and ``VQGEN_BENCH_IMAGES=N`` keeps
the first N training and test images (a check in a minute; the JSON records both). Both parts write
``$VQGEN_BENCH_JSON/quality_colour_<part>.json`` (command, machine, date, load):

- ``two-stage``: ``CONFIG`` (32x32x3 images -> 8x8 codes, ``ema`` quantizer, a small class-conditional
  ``gated_pixelcnn``) trained for ``STAGE1_SECONDS`` on the 4,000 training images, then the prior for
  ``PRIOR_SECONDS`` of training time on the first 3,500, keeping its epoch of best bits/code on the last
  ``VALIDATION`` (early stopping: it overfits); held-out (1,000 test images) reconstruction MSE, codebook usage
  and bits/code of the prior against the ``independent`` and ``uniform`` baselines; the picture
  ``$VQGEN_BENCH_OUT/colour/samples-cifar10.png`` (prior samples with their class | independent-code samples |
  held-out images and their reconstructions);
- ``pixel``: the masked ``pixelcnn`` over raw pixels (K = 256, 3 channels, ``PIXEL_PRIOR``) with
  ``channel_order="sequential"`` (R -> G -> B masks) and ``"parallel"`` (channels independent given the past), each
  trained for ``PIXEL_SECONDS`` of training time one after the other, same seed and architecture; held-out bits/dim.
  ``pixel ORDER MINUTES`` trains one order for longer, paused at every ``PIXEL_CHECKPOINTS`` time to score it (the
  engine's resumable state; run the two orders as two processes at the same time, so that they share the machine
  alike) and writes ``quality_colour_pixel_<order>_<minutes>min.json``.

``pixels DATASET PRIOR MINUTES`` (issue 21) trains one pixel prior of ``PIXEL_PRIORS`` over raw pixels (K = 256;
``mnist`` 28x28x1 or ``cifar10-subset`` 32x32x3, sequential channels) for ``MINUTES`` of single-thread training time,
paused at every ``PIXELS_CHECKPOINTS`` time to score held-out bits/dim, and saves 20 samples as
``$VQGEN_BENCH_OUT/colour/pixels-<dataset>-<prior>-<minutes>min/samples.png``; it writes
``quality_pixels_<dataset>_<prior>_<minutes>min.json``. Run two priors as two processes at the same time (equal
CPU time side by side), e.g. for the 30-minute comparison on CIFAR-10::

    python scripts/experiments/quality_colour.py pixels cifar10-subset pixelcnn_pp 30 &
    python scripts/experiments/quality_colour.py pixels cifar10-subset pixelcnn 30

``pixelcnn_pp_softmax`` is the same network with a 256-way softmax head instead of the mixture: the pair tests the
paper's claim that the mixture trains faster than a softmax (denser gradients) with nothing else changed.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
import torch

from benchmarks.common import (
    bench_dir,
    data_root,
    first_images,
    fit_in_pieces,
    image_limit,
    require_data,
    scaled,
    time_scale,
    write_results,
)
from vqgen import presets

DATASET = "cifar10-subset"
PRESET = presets.get("cifar10-small")  # 32x32x3 -> 8x8 codes, the small gated prior
CONFIG = PRESET.config()
SCALE = time_scale()  # every time budget below is multiplied by $VQGEN_BENCH_TIME_SCALE (default 1)
STAGE1_SECONDS, PRIOR_SECONDS = float(PRESET.stage1["max_seconds"]), float(PRESET.stage2["max_seconds"])
STAGE1_SECONDS, PRIOR_SECONDS = SCALE * STAGE1_SECONDS, SCALE * PRIOR_SECONDS
VALIDATION = 500  # training images held back from the prior to pick its best epoch (it overfits 3,500 images fast)
PIXEL_PRIOR = {"num_categories": 256, "channels": 3, "hidden_channels": 48, "num_layers": 5, "head_channels": 96}
PIXEL_SECONDS = SCALE * 180.0
PIXEL_CHECKPOINTS = (180.0, 600.0, 1200.0, 1800.0, 3600.0)  # seconds of training: the longer pair's curve points
PIXEL_CHECKPOINTS = tuple(SCALE * t for t in PIXEL_CHECKPOINTS)
CHANNEL_ORDERS = ("sequential", "parallel")
PANEL = 20  # samples per panel of the picture (2 rows of 10)
THREADS = 1
pytestmark = pytest.mark.threads(THREADS)
PIXELS_DATASETS = {"mnist": 1, "cifar10-subset": 3}  # dataset -> channels
PIXELS_CHECKPOINTS = (60.0, 180.0, 600.0, 1200.0, 1800.0, 3600.0)  # 10 and 30 minutes among them
PIXELS_CHECKPOINTS = tuple(SCALE * t for t in PIXELS_CHECKPOINTS)
PP_CPU = {"num_filters": 32, "num_resnet": 1, "num_mixtures": 5, "dropout": 0.0}  # vqgen.priors.pixelcnn_pp.CPU_CONFIG
PIXEL_PRIORS = {  # name -> (registered prior, options at CPU sizes): the side-by-side pixel models of issue 21
    "pixelcnn": ("pixelcnn", {k: v for k, v in PIXEL_PRIOR.items() if k not in ("num_categories", "channels")}),
    "gated_pixelcnn": ("gated_pixelcnn", {"hidden_channels": 48, "num_layers": 6, "head_channels": 96}),
    "pixelcnn_pp": ("pixelcnn_pp", PP_CPU),
    "pixelcnn_pp_softmax": ("pixelcnn_pp", {**PP_CPU, "head": "softmax"}),  # the same network, a 256-way softmax
}


def load() -> tuple[Any, Any]:
    return load_pixels(DATASET)


def split_off(data: Any, n: int) -> tuple[Any, Any]:
    """``data`` without its last ``n`` images, and those ``n``: the validation split that picks the prior's epoch."""
    from vqgen.data import ImageDataset

    parts = [slice(None, len(data) - n), slice(len(data) - n, None)]
    return tuple(
        ImageDataset(data.images[part], data.labels[part], num_classes=data.num_classes, class_names=data.class_names,
                     name=data.name, split=data.split)
        for part in parts
    )  # fmt: skip


def _trained(history: Any) -> dict:
    last = history[-1]
    return {"train_seconds": last["train_seconds"], "steps": last["step"], "epochs": last["epoch"]}


def run_two_stage() -> dict:
    from vqgen import TwoStageModel
    from vqgen.evaluation import baseline_priors
    from vqgen.images import save_panels, to_uint8
    from vqgen.metrics import prior_bits_per_dim
    from vqgen.persistence import from_pretrained
    from vqgen.training.prior import encode_codes
    from vqgen.training.stage1 import evaluate_vqvae

    train, test = load()
    record: dict[str, Any] = {"load_average_start": list(os.getloadavg())}
    torch.manual_seed(0)
    model = TwoStageModel.from_config(CONFIG)
    history = model.fit_stage1(train, max_seconds=STAGE1_SECONDS, seed=0, device="cpu", progress=False)
    stage1 = evaluate_vqvae(model.vqvae, test.images)
    record["stage1"] = {**_trained(history), **{k: stage1[k] for k in ("reconstruction_mse", "perplexity", "usage")}}
    print(f"stage 1: {record['stage1']}", flush=True)
    fit, val = split_off(train, VALIDATION)
    history = model.fit_prior(
        fit, eval_data=val, max_seconds=PRIOR_SECONDS, seed=0, device="cpu", progress=False,
        checkpoint_dir=str(bench_dir("colour") / "prior"), keep="best", overwrite=True,  # the last run's goes
    )  # fmt: skip
    best = from_pretrained(bench_dir("colour") / "prior")  # the best epoch on ``val``
    model.prior.load_state_dict(best.state_dict())
    model.eval()
    curve = [h["eval"]["bits_per_dim"] for h in history]
    record["prior"] = {
        **_trained(history), "parameters": sum(p.numel() for p in model.prior.parameters()),
        "validation_bits_per_code": curve, "best_epoch": curve.index(min(curve)) + 1,
    }  # fmt: skip
    test_codes = encode_codes(model.vqvae, test)  # (N, 1, 8, 8)
    record["bits_per_code"] = {"prior": prior_bits_per_dim(model.prior, test_codes, test.labels)}
    baselines = baseline_priors(model, fit)  # fit on the same 3,500 images as the prior
    for name, baseline in baselines.items():
        record["bits_per_code"][name] = prior_bits_per_dim(baseline, test_codes)
    print(f"prior: {record['prior']}, bits/code {record['bits_per_code']}", flush=True)

    labels = torch.arange(PANEL) % 10
    samples = model.sample(PANEL, labels, generator=torch.Generator().manual_seed(0))
    independent = model.sample(PANEL, prior=baselines["independent"], generator=torch.Generator().manual_seed(0))
    held_out = test.images[:5]
    pairs = torch.stack([held_out, to_uint8(model.reconstruct(held_out))], 1).flatten(0, 1)  # image, reconstruction
    names = test.class_names or [str(i) for i in range(10)]
    picture = save_panels(
        bench_dir("colour") / "samples-cifar10.png",
        {"prior samples (class asked for)": to_uint8(samples), "independent codes": to_uint8(independent),
         "held-out | reconstruction": pairs},
        ncols=10, scale=2, captions={"prior samples (class asked for)": [names[i] for i in labels]},
    )  # fmt: skip
    record["picture"] = str(picture)
    record["load_average_end"] = list(os.getloadavg())
    budget = {"config": CONFIG, "stage1_seconds": STAGE1_SECONDS, "prior_seconds": PRIOR_SECONDS,
              "validation_images": VALIDATION, "threads": THREADS, "train_images": len(train.images),
              "test_images": len(test.images), "time_scale": SCALE}  # fmt: skip
    write_results("quality_colour_two-stage", record, budget=budget, **_command("two-stage"))
    return record


def _scored(prior: Any, history: Any, test_pixels: torch.Tensor) -> dict:
    """What training did (``_trained``) and the held-out bits/dim of a pixel prior, with the seconds they took."""
    from vqgen.metrics import prior_bits_per_dim

    started = time.perf_counter()
    bits = prior_bits_per_dim(prior, test_pixels, batch_size=100)
    return {
        **_trained(history), "bits_per_dim": bits,
        "train_bits_per_dim_last_epoch": history[-1]["train"]["bits_per_dim"],
        "eval_seconds": time.perf_counter() - started,
    }  # fmt: skip


def run_pixel() -> dict:
    from vqgen.priors.pixelcnn import PixelCNN
    from vqgen.training.prior import fit_prior

    train, test = load()
    test_pixels = test.images.long()  # (N, 3, 32, 32)
    record: dict[str, Any] = {"spec": PIXEL_PRIOR}
    for order in CHANNEL_ORDERS:
        torch.manual_seed(0)
        prior = PixelCNN(**PIXEL_PRIOR, channel_order=order)
        load_start = list(os.getloadavg())
        history = fit_prior(prior, train, max_seconds=PIXEL_SECONDS, seed=0, device="cpu", progress=False)
        record[order] = {
            **_scored(prior, history, test_pixels), "parameters": sum(p.numel() for p in prior.parameters()),
            "load_average": [load_start, list(os.getloadavg())],
        }  # fmt: skip
        print(f"pixel PixelCNN, {order}: {record[order]}", flush=True)
    budget = {"pixel_seconds": PIXEL_SECONDS, "threads": THREADS, "train_images": len(train.images),
              "test_images": len(test.images), "time_scale": SCALE}  # fmt: skip
    write_results("quality_colour_pixel", record, budget=budget, **_command("pixel"))
    return record


def run_pixel_curve(order: str, minutes: str) -> dict:
    """One channel order for ``minutes`` of training time, held-out bits/dim at every ``PIXEL_CHECKPOINTS`` time."""
    from vqgen.priors.pixelcnn import PixelCNN

    if order not in CHANNEL_ORDERS:
        raise ValueError(f"order must be one of {CHANNEL_ORDERS}, got {order!r}")
    train, test = load()
    test_pixels = test.images.long()  # (N, 3, 32, 32)
    seconds, folder = SCALE * 60.0 * float(minutes), bench_dir("colour", f"pixel-{order}-{minutes}min")
    torch.manual_seed(0)
    prior = PixelCNN(**PIXEL_PRIOR, channel_order=order)
    curve = []
    for history in fit_in_pieces(prior, train, seconds, PIXEL_CHECKPOINTS, folder):
        curve.append({**_scored(prior, history, test_pixels), "load_average": list(os.getloadavg())})
        print(f"pixel PixelCNN, {order}, at {curve[-1]['train_seconds']:.0f} s: {curve[-1]}", flush=True)
    record = {"spec": PIXEL_PRIOR, "channel_order": order, "curve": curve}
    budget = {"pixel_seconds": seconds, "checkpoints": PIXEL_CHECKPOINTS, "threads": THREADS,
              "train_images": len(train.images), "test_images": len(test.images), "time_scale": SCALE}  # fmt: skip
    name = f"quality_colour_pixel_{order}_{minutes}min"
    write_results(name, record, budget=budget, **_command(f"pixel {order} {minutes}"))
    return record


def load_pixels(dataset: str) -> tuple[Any, Any]:
    """``dataset``'s training and test splits (their first ``$VQGEN_BENCH_IMAGES`` images, if set)."""
    from vqgen.data import load_dataset

    root = data_root(dataset)
    splits = load_dataset(dataset, split="train", root=root), load_dataset(dataset, split="test", root=root)
    return tuple(first_images(split, image_limit()) for split in splits)


def run_pixels(dataset: str, name: str, minutes: str) -> dict:
    """Pixel prior ``PIXEL_PRIORS[name]`` on ``dataset`` for ``minutes``, held-out bits/dim at every checkpoint."""
    import vqgen
    from vqgen.images import save_grid

    if dataset not in PIXELS_DATASETS or name not in PIXEL_PRIORS:
        raise ValueError(f"dataset must be one of {list(PIXELS_DATASETS)} and name one of {list(PIXEL_PRIORS)}, "
                         f"got {dataset!r} and {name!r}")  # fmt: skip
    train, test = load_pixels(dataset)
    test_pixels = test.images.long()  # (N, C, H, W)
    seconds, folder = SCALE * 60.0 * float(minutes), bench_dir("colour", f"pixels-{dataset}-{name}-{minutes}min")
    registered, options = PIXEL_PRIORS[name]
    spec = {"name": registered, "num_categories": 256, "channels": PIXELS_DATASETS[dataset], **options}
    torch.manual_seed(0)
    prior = vqgen.build("prior", **spec)
    curve = []
    for history in fit_in_pieces(prior, train, seconds, PIXELS_CHECKPOINTS, folder / "state"):
        curve.append({**_scored(prior, history, test_pixels), "load_average": list(os.getloadavg())})
        print(f"{name} on {dataset} pixels, at {curve[-1]['train_seconds']:.0f} s: {curve[-1]}", flush=True)
    prior.eval()
    started = time.perf_counter()
    samples = prior.sample(PANEL, tuple(test_pixels.shape[-2:]), generator=torch.Generator().manual_seed(0))
    sample_seconds = time.perf_counter() - started
    picture = save_grid(folder / "samples.png", samples.to(torch.uint8), ncols=10, scale=2,
                        title=f"{name}, {dataset} pixels, after {minutes} min on one core")  # fmt: skip
    record = {
        "prior": name, "spec": spec, "parameters": sum(p.numel() for p in prior.parameters()), "curve": curve,
        "picture": str(picture), "sample_seconds": sample_seconds,
    }  # fmt: skip
    budget = {"pixel_seconds": seconds, "checkpoints": PIXELS_CHECKPOINTS, "threads": THREADS,
              "train_images": len(train.images), "test_images": len(test.images), "time_scale": SCALE}  # fmt: skip
    write_results(f"quality_pixels_{dataset}_{name}_{minutes}min", record, budget=budget,
                  **_command(f"pixels {dataset} {name} {minutes}"))  # fmt: skip
    return record


def _command(part: str) -> dict:
    """The JSON's ``command`` (the driver's, whichever way the run was started), threads and time scale."""
    return {"command": f"{scaled()}python scripts/experiments/quality_colour.py {part}", "threads": THREADS,
            "time_scale": SCALE}  # fmt: skip


def test_colour_two_stage(benchmark):
    """The prior over CIFAR-10 codes beats the independent baseline held out."""
    require_data(DATASET)
    record: dict = {}
    benchmark.pedantic(lambda: record.update(run_two_stage()), rounds=1, iterations=1)
    assert record["bits_per_code"]["prior"] < record["bits_per_code"]["independent"]


def test_colour_pixel(benchmark):
    """Sequential and parallel colour PixelCNNs at equal time: both far below 8 bits/dim (uniform pixels)."""
    require_data(DATASET)
    record: dict = {}
    benchmark.pedantic(lambda: record.update(run_pixel()), rounds=1, iterations=1)
    assert all(record[order]["bits_per_dim"] < 8.0 for order in CHANNEL_ORDERS)
