"""Quality per CPU-minute: the README's configuration at a fixed time budget, its floor, and curves over time.

Run one dataset, or one prior's curve, as its own process on both cores (``VQGEN_BENCH_THREADS=1`` to run two at
a time on a 2-core machine, each on one) with the driver ``scripts/experiments/quality_budget.py`` (``--help``)::

    export VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data
    python scripts/experiments/quality_budget.py main mnist
    python scripts/experiments/quality_budget.py main fashion-mnist
    python scripts/experiments/quality_budget.py curve mnist rnn
    python scripts/make_figures.py --only quality   # the PNGs of docs/benchmarks/method.md from docs/data/quality_*

or ``main`` and the curves through pytest (``pytest benchmarks/quality/test_budget.py --benchmark-only --quality -s``;
skipped without the real data). ``VQGEN_BENCH_TIME_SCALE=0.01`` multiplies every time budget below and
``VQGEN_BENCH_IMAGES=2000`` keeps the first 2,000 training and test images, to check a run in a minute or two (the
JSON records both). ``main`` (per dataset, on the full training split):

1. the FID classifier (:func:`vqgen.training.classifier.train_classifier`, default widths, ``CLASSIFIER_EPOCHS`` epochs
   on
   ``CLASSIFIER_TRAIN`` training images), and the **floor**: the FID of ``N`` random real training images against
   the whole test split, over ``FLOOR_DRAWS`` draws (mean and spread). Every FID here is against the whole test split
   with ``N`` images on the other side, so all figures are on one scale;
2. stage 1 of the README's configuration (``CONFIG``) for ``STAGE1_SECONDS`` of training, then its class-conditional
   ``gated_pixelcnn`` prior for ``PRIOR_SECONDS`` (training time, evaluation excluded), stopped and resumed at every
   ``CHECKPOINTS`` time (the engine's resumable training state; the constant learning rate makes the pieces one
   run) to record the curve: held-out bits/code and the FID of ``N`` class-conditional samples;
3. at the end: FID of reconstructions (of the first floor draw), of ``N`` samples of the prior, of the
   ``independent`` and ``uniform`` baselines, the class recognition rate of the class-conditional samples (the
   classifier's prediction = the class asked for), and FID against the sampling temperature.

``curve`` refits another prior (``CURVE_PRIORS``: ``rnn``, ``pixelcnn`` and ``gated_default``, the library's defaults;
``pixelcnn_pp`` at its CPU size; main's own prior as ``gated_readme``, alone or with a trial's change) on the stage-1
model ``main`` saved, with the same checkpoints, for ``CURVE_SECONDS`` (``curve DATASET PRIOR MINUTES``: for that long
instead; ``curve DATASET PRIOR MINUTES VARIANT``: on the stage-1 model of ``main DATASET VARIANT``, e.g. 14x14 codes).
``main DATASET VARIANT`` is main with a trial's change and its own budget (``VARIANTS``: the 20 minutes split otherwise,
or longer, to see how long a dataset needs). ``trial`` retrains everything with one change (``TRIALS``: codebook, grid
and latent size, prior size, batch size, learning rate, schedule, weight average, dropout) for ``TRIAL_SECONDS``, to
compare with the unchanged ``baseline`` trial at the same budget. ``sweep DATASET [MINUTES]`` runs the transformer's
tuning curves (``TRANSFORMER_TRIALS``) and gathers them in ``transformer-sweep.json``. Results go to
``$VQGEN_BENCH_JSON/quality_budget_<dataset>.json``, ``quality_curve_<dataset>_<prior>.json`` and
``quality_trial_<dataset>_<name>.json``; the models to ``$VQGEN_BENCH_OUT/quality/<dataset>/``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.common import (
    bench_dir,
    data_root,
    first_images,
    fit_in_pieces,
    image_limit,
    json_dir,
    require_data,
    scaled,
    time_scale,
    write_results,
)
from vqgen import presets

DATASETS = ("mnist", "fashion-mnist")
README = presets.get("mnist-small")  # the README's configuration and budget
CONFIG = README.config()
README_TEMPERATURE = README.temperature  # the README samples at this temperature: the targets are checked there
SCALE = time_scale()  # every time budget below is multiplied by $VQGEN_BENCH_TIME_SCALE (default 1)
STAGE1_SECONDS, PRIOR_SECONDS = float(README.stage1["max_seconds"]), float(README.stage2["max_seconds"])  # 5 + 15
STAGE1_SECONDS, PRIOR_SECONDS = SCALE * STAGE1_SECONDS, SCALE * PRIOR_SECONDS
CURVE_SECONDS = SCALE * 300.0
CHECKPOINTS = (60.0, 120.0, 300.0, 600.0, 900.0, 1200.0, 1800.0, 2400.0, 3600.0)  # seconds of prior training
CHECKPOINTS = tuple(SCALE * t for t in CHECKPOINTS)
N, FLOOR_DRAWS, CLASSIFIER_TRAIN, CLASSIFIER_EPOCHS = 1000, 5, 30_000, 2
TEMPERATURES = (0.7, 0.8, 0.9, 1.0, 1.1, 1.2)
THREADS = int(os.environ.get("VQGEN_BENCH_THREADS", "2"))  # 2 cores: one run at a time on the 2-core machine
pytestmark = pytest.mark.threads(THREADS)


def load(dataset: str) -> tuple[Any, Any]:
    from vqgen.data import load_dataset

    root = data_root(dataset)
    splits = load_dataset(dataset, split="train", root=root), load_dataset(dataset, split="test", root=root)
    return tuple(first_images(split, image_limit()) for split in splits)


class Scorer:
    """FID of uint8 image sets against one test split (real statistics computed once), and class recognition."""

    def __init__(self, classifier: Any, test_images: torch.Tensor) -> None:
        from vqgen.metrics.frechet import fid_metric

        self.classifier = classifier.eval()
        self.metric = fid_metric(classifier.feature_extractor(), reset_real_features=False)
        with torch.no_grad():
            for batch in test_images.split(500):
                self.metric.update(batch, real=True)

    @torch.no_grad()
    def fid(self, images: torch.Tensor) -> float:
        self.metric.reset()
        for batch in images.split(500):
            self.metric.update(batch, real=False)
        return float(self.metric.compute())

    def recognised(self, images: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.classifier.predict(images).cpu() == labels.cpu()).float().mean())


def classifier_for(dataset: str, train: Any, test: Any) -> tuple[Any, dict]:
    """The dataset's FID classifier, trained once and kept in the output folder (the curve runs reuse it)."""
    from vqgen.classifier import FeatureClassifier
    from vqgen.training.classifier import train_classifier

    folder = bench_dir("quality", dataset) / "classifier"
    info_path = folder / "info.json"
    if info_path.is_file():
        return FeatureClassifier.from_pretrained(str(folder)), json.loads(info_path.read_text())
    started = time.perf_counter()
    result = train_classifier(
        train.images[:CLASSIFIER_TRAIN], train.labels[:CLASSIFIER_TRAIN], test=test, epochs=CLASSIFIER_EPOCHS, seed=0,
        device="cpu",
    )  # fmt: skip
    info = {
        "widths": list(result.model.config["widths"]) if "widths" in result.model.config else None,
        "train_images": CLASSIFIER_TRAIN, "epochs": CLASSIFIER_EPOCHS, "test_accuracy": result.test_accuracy,
        "seconds": time.perf_counter() - started,
    }  # fmt: skip
    result.model.save_pretrained(str(folder))
    info_path.write_text(json.dumps(info, indent=2))
    return result.model, info


def sample_metrics(model: Any, scorer: Scorer, *, prior: Any = None, temperature: float = 1.0) -> dict[str, float]:
    """FID of ``N`` samples (class-conditional ones cycle through the classes) and their class recognition rate."""
    from vqgen.images import to_uint8

    conditional = prior is None and model.prior.num_classes is not None
    labels = torch.arange(N) % 10 if conditional else None
    generator = torch.Generator().manual_seed(0)
    started = time.perf_counter()
    images = to_uint8(model.sample(N, labels, prior=prior, temperature=temperature, generator=generator))
    record = {"fid": scorer.fid(images), "sample_seconds": time.perf_counter() - started}
    if conditional:
        record["recognised"] = scorer.recognised(images, labels)
    return record


def floor(scorer: Scorer, train: Any) -> tuple[dict, list[torch.Tensor]]:
    """The floor: the FID of ``N`` random real training images over ``FLOOR_DRAWS`` draws (mean and each), and the
    draws' indices (the first one's images are reconstructed for the reconstruction FID)."""
    generator = torch.Generator().manual_seed(0)
    draws = [torch.randperm(len(train.images), generator=generator)[:N] for _ in range(FLOOR_DRAWS)]
    floors = [scorer.fid(train.images[index]) for index in draws]
    return {"mean": sum(floors) / len(floors), "draws": floors}, draws


def targets(floor_fid: float, readme: dict, fid_reconstructions: float, fid_independent: float) -> dict[str, bool]:
    """The quality targets of docs/benchmarks/method.md#quality-budget, from the samples at the README's temperature."""
    return {
        "samples_le_3x_floor": readme["fid"] <= 3 * floor_fid,
        "reconstructions_le_2x_floor": fid_reconstructions <= 2 * floor_fid,
        "independent_ge_10x_prior": fid_independent >= 10 * readme["fid"],
        "recognised_ge_90pct": readme["recognised"] >= 0.9,
    }


def fit_with_checkpoints(
    model: Any, prior: Any, codes: torch.Tensor, labels: torch.Tensor, test_codes: torch.Tensor,
    test_labels: torch.Tensor, scorer: Scorer, seconds: float, folder: Path, **options: Any,
) -> list[dict]:  # fmt: skip
    """Train ``prior`` for ``seconds`` of training time, pausing at every checkpoint to measure bits/code and FID.

    ``options`` go to ``fit_prior`` (``ema_decay``, ...)."""
    from vqgen.metrics import prior_bits_per_dim

    model.prior = prior
    curve = []
    for history in fit_in_pieces(prior, codes, seconds, CHECKPOINTS, folder, cond=labels, **options):
        model.fitted_[1] = True
        prior.eval()
        point = {
            "train_seconds": history[-1]["train_seconds"], "step": history[-1]["step"], "epoch": history[-1]["epoch"],
            "bits_per_code": prior_bits_per_dim(prior, test_codes, test_labels),
            **sample_metrics(model, scorer), "load_average": list(os.getloadavg()),
        }  # fmt: skip
        curve.append(point)
        print(f"  {type(prior).__name__} at {point['train_seconds']:.0f} s: {point}", flush=True)
    return curve


def save_samples(model: Any, dataset: str, path: Path, minutes: str) -> None:
    """60 class-conditional samples at the README's temperature, one class per column, as a labelled PNG."""
    from vqgen.images import save_grid

    labels = torch.arange(60) % 10
    samples = model.sample(60, labels, temperature=README_TEMPERATURE, generator=torch.Generator().manual_seed(0))
    save_grid(path, samples, ncols=10, scale=2, captions=[str(int(c)) for c in labels],
              title=f"{dataset}: samples after {minutes} CPU-minutes, temperature {README_TEMPERATURE}")  # fmt: skip


def run_main(dataset: str, variant: str | None = None) -> dict:
    """The 20-minute run of the README's configuration, or ``VARIANTS[variant]``: a trial's change, its budget."""
    from vqgen import TwoStageModel
    from vqgen.evaluation import baseline_priors
    from vqgen.images import to_uint8
    from vqgen.metrics import prior_bits_per_dim
    from vqgen.training.prior import encode_codes
    from vqgen.training.stage1 import evaluate_vqvae

    train, test = load(dataset)
    out = bench_dir("quality", dataset)
    classifier, classifier_info = classifier_for(dataset, train, test)
    scorer = Scorer(classifier, test.images)
    trial, stage1_seconds, prior_seconds = VARIANTS[variant] if variant else (None, STAGE1_SECONDS, PRIOR_SECONDS)
    if variant:
        stage1_seconds, prior_seconds = SCALE * stage1_seconds, SCALE * prior_seconds
    config = CONFIG if trial is None else trial_config(trial)
    options = TRIALS.get(trial, {})  # the trial's stage-1 and prior training options, if any
    if variant is not None:
        out = out / variant
        out.mkdir(exist_ok=True)
    record: dict[str, Any] = {"classifier": classifier_info, "load_average_start": list(os.getloadavg())}

    record["floor"], draws = floor(scorer, train)
    print(f"{dataset}: floor {record['floor']}", flush=True)

    torch.manual_seed(0)
    model = TwoStageModel.from_config(config)
    started = time.perf_counter()
    history = model.fit_stage1(
        train, max_seconds=stage1_seconds, seed=0, device="cpu", progress=False, **options.get("stage1", {}),
    )  # fmt: skip
    stage1 = evaluate_vqvae(model.vqvae, test.images)
    record["stage1"] = {
        "seconds": time.perf_counter() - started, "train_seconds": history[-1]["train_seconds"],
        "steps": history[-1]["step"], "epochs": history[-1]["epoch"],
        **{key: stage1[key] for key in ("reconstruction_mse", "perplexity", "usage")},
    }  # fmt: skip
    reconstructions = to_uint8(model.reconstruct(train.images[draws[0]]))
    record["fid"] = {"floor": record["floor"]["mean"], "reconstructions": scorer.fid(reconstructions)}
    print(f"{dataset}: stage 1 {record['stage1']}, reconstruction FID {record['fid']['reconstructions']}", flush=True)

    codes = encode_codes(model.vqvae, train)  # (N, 1, h, w)
    test_codes = encode_codes(model.vqvae, test)
    prior = model.prior
    record["curve"] = fit_with_checkpoints(
        model, prior, codes, train.labels, test_codes, test.labels, scorer, prior_seconds, out / "prior-state",
        **options.get("prior", {}),
    )  # fmt: skip
    model.save_pretrained(str(out / "model"))
    final = record["curve"][-1]
    record["fid"]["prior"], record["recognised"] = final["fid"], final["recognised"]
    baselines = baseline_priors(model, train)
    record["bits_per_code"] = {"prior": final["bits_per_code"]}
    for name, baseline in baselines.items():
        record["bits_per_code"][name] = prior_bits_per_dim(baseline, test_codes)
        record["fid"][name] = sample_metrics(model, scorer, prior=baseline)["fid"]
    record["temperature"] = {str(t): sample_metrics(model, scorer, temperature=t) for t in TEMPERATURES}
    readme = record["temperature"][str(README_TEMPERATURE)]
    record["fid"]["prior_readme_temperature"], record["recognised_readme_temperature"] = (
        readme["fid"],
        readme["recognised"],
    )
    save_samples(model, dataset, out / "samples.png", f"{stage1_seconds / 60:g} + {prior_seconds / 60:g}")
    record["load_average_end"] = list(os.getloadavg())
    record["targets"] = targets(
        record["floor"]["mean"], readme, record["fid"]["reconstructions"], record["fid"]["independent"]
    )
    budget = {"config": config, "options": options, "stage1_seconds": stage1_seconds, "prior_seconds": prior_seconds,
              "checkpoints": CHECKPOINTS, "readme_temperature": README_TEMPERATURE, "n": N,
              "floor_draws": FLOOR_DRAWS, "threads": THREADS, "train_images": len(train.images),
              "test_images": len(test.images), "time_scale": SCALE}  # fmt: skip
    name = f"quality_budget_{dataset}" + ("" if variant is None else f"_{variant}")
    write_results(name, record, budget=budget, **_command("main", dataset, *([variant] if variant else [])))
    return record


def run_curve(dataset: str, name: str, minutes: str | None = None, variant: str | None = None) -> dict:
    """``CURVE_PRIORS[name]`` on main's stage-1 model (or that of main's ``variant``, e.g. ``grid14``) for
    ``CURVE_SECONDS``, or ``minutes`` (its own JSON and state)."""
    from vqgen import TwoStageModel
    from vqgen.priors.code_prior import build_code_prior
    from vqgen.training.prior import encode_codes

    train, test = load(dataset)
    out = bench_dir("quality", dataset)
    classifier, classifier_info = classifier_for(dataset, train, test)
    scorer = Scorer(classifier, test.images)
    out = out / variant if variant else out  # main DATASET VARIANT saved its stage-1 model there
    model = TwoStageModel.from_pretrained(str(out / "model"))
    codes, test_codes = encode_codes(model.vqvae, train), encode_codes(model.vqvae, test)
    torch.manual_seed(0)
    prior = build_code_prior(CURVE_PRIORS[name], num_codes=model.num_codes)
    seconds, suffix = (SCALE * 60.0 * float(minutes), f"_{minutes}min") if minutes else (CURVE_SECONDS, "")
    suffix = (f"_{variant}" if variant else "") + suffix
    record = {
        "prior": name, "spec": CURVE_PRIORS[name], "fit": CURVE_FIT.get(name, {}),
        "parameters": sum(p.numel() for p in prior.parameters()),
        "classifier": classifier_info,
        "curve": fit_with_checkpoints(
            model, prior, codes, train.labels, test_codes, test.labels, scorer, seconds, out / f"{name}{suffix}-state",
            **CURVE_FIT.get(name, {}),
        ),
    }  # fmt: skip
    budget = {"curve_seconds": seconds, "checkpoints": CHECKPOINTS, "n": N, "threads": THREADS, "time_scale": SCALE,
              "stage1": variant}  # fmt: skip
    args = ("curve", dataset, name) + ((minutes,) if minutes else ()) + ((variant,) if variant else ())
    write_results(f"quality_curve_{dataset}_{name}{suffix}", record, budget=budget, **_command(*args))
    return record


TRANSFORMER = {"name": "transformer", "num_classes": 10}  # the library's default size, PRESETS["cpu"]: 2 x 128
TRANSFORMER_FIT = {"lr": 2e-3, "warmup_steps": 0}  # its learning rate and warm-up, from the sweep below
# Its tuning sweep on MNIST codes (``curve mnist transformer_d6 4``): one change each to the sweep's base
# (``transformer_base``: 4 layers, Adam 1e-3 after 200 warm-up steps), then the winners combined; (prior, fit) changes
TRANSFORMER_SWEEP_BASE = ({"num_layers": 4}, {"lr": 1e-3, "warmup_steps": 200})
TRANSFORMER_TRIALS = {
    "base": ({}, {}), "w64": ({"hidden_size": 64}, {}), "w192": ({"hidden_size": 192}, {}),
    "d2": ({"num_layers": 2}, {}), "d6": ({"num_layers": 6}, {}), "h2": ({"num_heads": 2}, {}),
    "h8": ({"num_heads": 8}, {}), "lr3e-4": ({}, {"lr": 3e-4}), "lr3e-3": ({}, {"lr": 3e-3}),
    "warmup0": ({}, {"warmup_steps": 0}), "warmup1000": ({}, {"warmup_steps": 1000}),
    "d2_warmup0": ({"num_layers": 2}, {"warmup_steps": 0}), "warmup0_lr2e-3": ({}, {"warmup_steps": 0, "lr": 2e-3}),
    "d2_warmup0_lr2e-3": ({"num_layers": 2}, {"warmup_steps": 0, "lr": 2e-3}),  # the default and its fit
    "h8_warmup0": ({"num_heads": 8}, {"warmup_steps": 0}),
}  # fmt: skip


def run_temperatures(dataset: str, minutes: str, variant: str | None, names: list[str]) -> dict:
    """The final priors of ``curve DATASET NAME MINUTES [VARIANT]`` (one per name, already run) on their stage-1 model:
    FID and recognised fraction of ``N`` class-conditional samples at the README's temperature and at 1, written to
    ``quality_<dataset>[_<variant>]_<minutes>min_temperatures.json`` (the curves score at temperature 1 only)."""
    import vqgen
    from vqgen import TwoStageModel

    train, test = load(dataset)
    classifier, _ = classifier_for(dataset, train, test)
    scorer = Scorer(classifier, test.images)
    out = bench_dir("quality", dataset) / variant if variant else bench_dir("quality", dataset)
    model = TwoStageModel.from_pretrained(str(out / "model")).eval()
    suffix = (f"_{variant}" if variant else "") + f"_{minutes}min"
    results = {}
    for name in names:
        model.prior = vqgen.from_pretrained(str(out / f"{name}{suffix}-state")).eval()
        model.fitted_[1] = True
        results[name] = {t: sample_metrics(model, scorer, temperature=t) for t in (README_TEMPERATURE, 1.0)}
    args = ("temperatures", dataset, minutes, *names, *(("--variant", variant) if variant else ()))
    write_results(f"quality_{dataset}{suffix}_temperatures", results, threads=THREADS, **_command(*args))
    return results


def run_sweep(dataset: str, minutes: str = "4") -> dict:
    """The transformer's tuning sweep: every ``TRANSFORMER_TRIALS`` curve for ``minutes`` one after another (each
    writes its own JSON), gathered into ``$VQGEN_BENCH_JSON/transformer-sweep.json``."""
    runs = []
    for trial in TRANSFORMER_TRIALS:
        name = f"transformer_{trial}"
        run_curve(dataset, name, minutes)
        runs.append(json.loads((json_dir() / f"quality_curve_{dataset}_{name}_{minutes}min.json").read_text()))
    note = "curve runs of the sweep's trials: one change each to transformer_base, then the winners combined"
    write_results("transformer-sweep", runs, note=note, **_command("sweep", dataset, minutes))
    return {"runs": runs}


CURVE_PRIORS = {  # name -> prior spec, class-conditional (main's curve is the README's 6 x 48 gated prior)
    "rnn": {"name": "rnn", "num_classes": 10},
    "pixelcnn": {"name": "pixelcnn", "num_classes": 10},
    "gated_default": {"name": "gated_pixelcnn", "num_classes": 10},  # the library's default, 15 x 64, head 256
    "gated_readme": CONFIG["prior"],  # main's prior on its own, for curves longer than main's (``MINUTES``)
    # two trials on one stage-1 model (the 4-minute trials retrained it, so their steps differed): main's prior with
    # a weight average (``CURVE_FIT``), and with dropout
    "gated_readme_average": CONFIG["prior"],
    "gated_readme_dropout": {**CONFIG["prior"], "dropout": 0.1},
    # issue 21: PixelCNN++ as a code prior (its softmax head: codes have no order) at its CPU size
    # (vqgen.priors.pixelcnn_pp.CPU_CONFIG), against main's gated prior: ``curve mnist pixelcnn_pp 20``
    "pixelcnn_pp": {"name": "pixelcnn_pp", "num_classes": 10, "num_filters": 32, "num_resnet": 1, "dropout": 0.0},
    # the transformer (issue 22), side by side with gated_readme: ``curve mnist transformer 20`` and ``curve
    # fashion-mnist transformer 20 grid14`` (14x14 codes: the stage-1 model of ``main fashion-mnist grid14``)
    "transformer": TRANSFORMER,
    **{f"transformer_{trial}": {**TRANSFORMER, **TRANSFORMER_SWEEP_BASE[0], **change}
       for trial, (change, _) in TRANSFORMER_TRIALS.items()},
}  # fmt: skip
CURVE_FIT = {  # name -> fit_prior options of its curve
    "gated_readme_average": {"ema_decay": 0.999},
    "transformer": TRANSFORMER_FIT,
    **{f"transformer_{trial}": {**TRANSFORMER_SWEEP_BASE[1], **fit} for trial, (_, fit) in TRANSFORMER_TRIALS.items()},
}
TRIALS = {  # name -> one change to the README's configuration: component settings, stage-1 and prior options
    "baseline": {},
    "k128": {"config": {"quantizer": {"num_codes": 128}}},
    "k1024": {"config": {"quantizer": {"num_codes": 1024}}},
    "grid14": {"config": {"encoder": {"num_downsamples": 1}}},  # 14x14 codes instead of 7x7
    "grid14_k128": {"config": {"encoder": {"num_downsamples": 1}, "quantizer": {"num_codes": 128}}},
    # 14x14 codes with a prior that sees the whole grid: 6 layers see 9 rows above, 12 layers 15
    "grid14_deep": {"config": {"encoder": {"num_downsamples": 1}, "prior": {"num_layers": 12}}},
    "latent32": {"config": {"encoder": {"latent_dim": 32}}},
    "prior_large": {"config": {"prior": {"hidden_channels": 64, "num_layers": 15, "head_channels": 256}}},
    "batch128": {"stage1": {"batch_size": 128}, "prior": {"batch_size": 128}},
    "lr2e-3": {"stage1": {"lr": 2e-3}, "prior": {"lr": 2e-3}},
    "cosine": {"stage1": {"schedule": "cosine", "lr": 2e-3}, "prior": {"schedule": "cosine", "lr": 2e-3}},
    "weight_average": {"prior": {"ema_decay": 0.999}},
    "dropout": {"config": {"prior": {"dropout": 0.1}}},
}
VARIANTS = {  # ``main DATASET VARIANT`` -> (the trial whose change it makes, stage-1 seconds, prior seconds)
    "grid14": ("grid14", 180.0, 1020.0),
    "grid14_k128": ("grid14_k128", 180.0, 1020.0),
    "grid14_40min": ("grid14", 180.0, 2220.0),  # how long 14x14 codes need: the prior for 37 minutes
    "grid14_deep": ("grid14_deep", 180.0, 1020.0),
    "k128": ("k128", 300.0, 900.0),  # the 4-minute trials' winner at the README's 5 + 15 minutes
    "repeat": ("baseline", 300.0, 900.0),  # main again, unchanged: how far two runs of one budget differ
    "weight_average": ("weight_average", 300.0, 900.0),  # the README's 20 minutes with a weight average of the prior
}
TRIAL_SECONDS = (SCALE * 120.0, SCALE * 120.0)  # stage 1, prior: every trial, the baseline included, at this budget


def trial_config(name: str) -> dict:
    """The README's configuration with trial ``name``'s component settings merged in."""
    changes = TRIALS[name].get("config", {})
    return {key: {**spec, **changes.get(key, {})} for key, spec in CONFIG.items()}


def run_trial(dataset: str, name: str) -> dict:
    """One change to the README's configuration (``TRIALS``), trained for ``TRIAL_SECONDS`` and scored like main."""
    from vqgen import TwoStageModel
    from vqgen.evaluation import baseline_priors
    from vqgen.images import to_uint8
    from vqgen.metrics import prior_bits_per_dim
    from vqgen.training.prior import encode_codes, fit_prior
    from vqgen.training.stage1 import evaluate_vqvae

    trial = TRIALS[name]
    train, test = load(dataset)
    classifier, classifier_info = classifier_for(dataset, train, test)
    scorer = Scorer(classifier, test.images)
    torch.manual_seed(0)
    config = trial_config(name)
    model = TwoStageModel.from_config(config)
    stage1_history = model.fit_stage1(
        train, max_seconds=TRIAL_SECONDS[0], seed=0, device="cpu", progress=False, **trial.get("stage1", {}),
    )  # fmt: skip
    stage1 = evaluate_vqvae(model.vqvae, test.images)
    generator = torch.Generator().manual_seed(0)
    first_draw = torch.randperm(len(train.images), generator=generator)[:N]  # main's first floor draw
    codes, test_codes = encode_codes(model.vqvae, train), encode_codes(model.vqvae, test)
    history = fit_prior(
        model.prior, codes, cond=train.labels, max_seconds=TRIAL_SECONDS[1], seed=0, device="cpu", progress=False,
        **trial.get("prior", {}),
    )  # fmt: skip
    model.fitted_[1] = True
    model.prior.eval()
    baselines = baseline_priors(model, train)
    readme = sample_metrics(model, scorer, temperature=README_TEMPERATURE)
    record = {
        "trial": name, "change": trial, "config": config, "seconds": TRIAL_SECONDS,
        "stage1_steps": stage1_history[-1]["step"], "prior_steps": history[-1]["step"],
        "usage": stage1["usage"], "perplexity": stage1["perplexity"],
        "reconstruction_mse": stage1["reconstruction_mse"],
        "fid_reconstructions": scorer.fid(to_uint8(model.reconstruct(train.images[first_draw]))),
        "bits_per_code": prior_bits_per_dim(model.prior, test_codes, test.labels),
        "bits_per_code_independent": prior_bits_per_dim(baselines["independent"], test_codes),
        **sample_metrics(model, scorer), "readme_temperature": README_TEMPERATURE,
        "fid_readme_temperature": readme["fid"], "recognised_readme_temperature": readme["recognised"],
        "load_average": list(os.getloadavg()), "classifier": classifier_info,
    }  # fmt: skip
    print(f"{dataset} trial {name}: {record}", flush=True)
    write_results(f"quality_trial_{dataset}_{name}", record, **_command("trial", dataset, name))
    return record


def _command(*args: str) -> dict:
    """The JSON's ``command`` (the driver's, whichever way the run was started), threads and time scale."""
    return {"command": f"{scaled()}python scripts/experiments/quality_budget.py " + " ".join(args),
            "threads": THREADS, "time_scale": SCALE}  # fmt: skip


@pytest.mark.parametrize("dataset", DATASETS)
def test_quality_budget(benchmark, dataset):
    """The README's configuration at 20 minutes: every prior beats the independent baseline (targets in the JSON)."""
    require_data(dataset)
    record: dict = {}
    benchmark.pedantic(lambda: record.update(run_main(dataset)), rounds=1, iterations=1)
    assert record["bits_per_code"]["prior"] < record["bits_per_code"]["independent"]
    assert record["fid"]["prior"] < record["fid"]["independent"]


@pytest.mark.parametrize("name", [name for name in CURVE_PRIORS if not name.startswith("transformer_")])  # no sweep
def test_quality_curve(benchmark, name):
    """Another prior on the MNIST stage-1 model that ``main`` saved (``test_quality_budget[mnist]``, or the driver,
    in this run or an earlier one with the same ``$VQGEN_BENCH_OUT``); without one, this test runs ``main`` first."""
    require_data("mnist")
    if not (bench_dir("quality", "mnist") / "model" / "config.json").is_file():
        run_main("mnist")
    record: dict = {}
    benchmark.pedantic(lambda: record.update(run_curve("mnist", name)), rounds=1, iterations=1)
    assert record["curve"][-1]["bits_per_code"] < record["curve"][0]["bits_per_code"]
