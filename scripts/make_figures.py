"""Regenerate every picture of the README and the docs (``make figures``); nothing is drawn by hand.

Run from the repository root::

    python scripts/make_figures.py                  # everything: pictures of trained models, then the charts
    python scripts/make_figures.py --only charts    # only the charts (seconds; reads docs/data/*.json)
    python scripts/make_figures.py --only readme gallery --quick   # tiny budgets, to check the script itself
    python scripts/make_figures.py --only quality   # quality per CPU-minute (docs/data/quality_*.json)

``readme`` and ``gallery`` train small two-stage models through the public API
(``TwoStageModel.from_config(...).fit(...)``) with fixed seeds on MNIST, Fashion-MNIST, the CIFAR-10 subset (read
from ``$VQGEN_DATA``; a missing dataset is reported and skipped) and the offline ``digits``, then write labelled
PNGs: prior samples beside samples of the ``independent`` and ``uniform`` baselines over the same codes, and
completions of held-out images whose lower half was hidden. ``charts`` turns the benchmark results in
``docs/data/*.json`` (written by ``benchmarks/``, see ``docs/benchmarks.md``) into matplotlib charts; ``quality``
draws those of ``benchmarks/test_quality_budget.py`` (``docs/data/quality_*.json``): bits/code and FID against
training minutes per prior, FID against sampling temperature, and the FID of each kind of image against the floor.

Every figure carries a footer with the command that made it, the machine and the date. PNGs are stored with an
adaptive palette (at most 256 colours), which keeps each one well under 200 KB.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import vqgen
from vqgen import TwoStageModel, presets
from vqgen.data import DatasetNotFoundError
from vqgen.evaluation import baseline_priors
from vqgen.images import FONT_SIZE, label_grid, make_grid, make_panels

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "docs" / "images"
DATA = ROOT / "docs" / "data"
SEED = 0
THREADS = 2
MAX_BYTES = 200_000

# Small models that train in about a minute each on two CPU threads: the demo presets of vqgen.presets (one
# definition for the demo, the figures and the benchmarks), all class-conditional so each sample can be captioned.
MODELS = {
    "digits": {
        "title": "digits (8x8 scikit-learn digits at 16x16, offline)",
        "config": presets.get("digits-demo").config(),
        "train": None,  # all 1,442 training images
        "stage1": {"epochs": 15},
        "stage2": {"epochs": 15},
    },
    "mnist": {
        "title": "MNIST",
        "config": presets.get("mnist-demo").config(),
        "train": 12_000,
        "stage1": {"max_steps": 600},
        "stage2": {"max_steps": 800},
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "config": presets.get("mnist-demo").config(),
        "train": 12_000,
        "stage1": {"max_steps": 600},
        "stage2": {"max_steps": 800},
    },
    "cifar10": {
        "title": "CIFAR-10 (4,000-image subset)",
        "config": presets.get("cifar10-small").config(),
        "train": None,
        "stage1": {"max_steps": 600},
        "stage2": {"max_steps": 800},
    },
}
# Budgets are counted in steps, never in seconds, so that a run on a busy machine draws the same pictures.
QUICK = {"stage1": {"max_steps": 5}, "stage2": {"max_steps": 5}}


def machine() -> str:
    """``"AMD EPYC, 2 torch threads, Linux"``: what the footer and the JSON say about the machine."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, {platform.system()}"


def stamp(command: str) -> str:
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{command} | {machine()} | {today}"


def with_footer(canvas: np.ndarray, text: str) -> np.ndarray:
    """``canvas`` above a strip that says how it was made (the title of an otherwise empty one-row grid)."""
    channels = canvas.shape[2:] if canvas.ndim == 3 else ()
    strip = label_grid(np.full((1, canvas.shape[1], *channels), 255, np.uint8), tile_shape=(1, 1), padding=0,
                       title=text)  # fmt: skip
    strip = strip[: FONT_SIZE + 8]
    width = max(canvas.shape[1], strip.shape[1])
    parts = [np.pad(p, [(0, 0), (0, width - p.shape[1])] + [(0, 0)] * len(channels), constant_values=255)
             for p in (canvas, strip)]  # fmt: skip
    return np.concatenate(parts)


def stack(parts: list[np.ndarray], gap: int = 16) -> np.ndarray:
    """Arrays one above the other, left-aligned, padded white; grey arrays are made RGB when any is colour."""
    if any(p.ndim == 3 for p in parts):
        parts = [np.repeat(p[..., None], 3, axis=2) if p.ndim == 2 else p for p in parts]
    width = max(p.shape[1] for p in parts)
    out = []
    for p in parts:
        pad = [(0, gap), (0, width - p.shape[1])] + [(0, 0)] * (p.ndim - 2)
        out.append(np.pad(p, pad, constant_values=255))
    return np.concatenate(out)[:-gap]


def save_small_png(path: Path, canvas: np.ndarray) -> Path:
    """Save with an adaptive palette (grey stays 8-bit grey); checks the size limit."""
    image = Image.fromarray(canvas)
    if image.mode == "RGB":
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise RuntimeError(f"{path} is {size} bytes, over the {MAX_BYTES}-byte limit for committed figures")
    print(f"wrote {path} ({size / 1000:.0f} KB, {canvas.shape[1]}x{canvas.shape[0]})")
    return path


def train(name: str, quick: bool) -> tuple[TwoStageModel, object, object]:
    """Fit the model of ``MODELS[name]`` on its dataset; returns (model, train set, test set)."""
    spec = MODELS[name]
    train_set = vqgen.data.load_dataset(name, split="train")
    test_set = vqgen.data.load_dataset(name, split="test")
    if spec["train"]:
        train_set = vqgen.data.from_arrays(train_set.images[: spec["train"]], train_set.labels[: spec["train"]],
                                           class_names=train_set.class_names)  # fmt: skip
    torch.manual_seed(SEED)
    model = TwoStageModel.from_config(spec["config"])
    common = {"seed": SEED, "progress": False}
    stage1, stage2 = (QUICK["stage1"], QUICK["stage2"]) if quick else (spec["stage1"], spec["stage2"])
    started = time.perf_counter()
    model.fit(train_set, stage1={**stage1, **common}, stage2={**stage2, **common})
    print(f"{name}: trained in {time.perf_counter() - started:.0f} s")
    return model, train_set, test_set


def class_names(dataset, labels: torch.Tensor) -> list[str]:
    names = getattr(dataset, "class_names", None)
    return [str(names[i]) if names else str(i) for i in labels.tolist()]


def samples_figure(model: TwoStageModel, train_set, *, per_panel: int, ncols: int) -> np.ndarray:
    """prior samples | independent codes | uniform codes, side by side; prior samples captioned with their class."""
    cond = torch.arange(per_panel) % 10
    generator = torch.Generator().manual_seed(SEED)
    panels = {"prior samples": model.sample(per_panel, cond, generator=generator)}
    for base, prior in baseline_priors(model, train_set).items():
        panels[f"{base} codes"] = model.sample(per_panel, prior=prior, generator=generator)
    captions = {"prior samples": class_names(train_set, cond)}
    return make_panels(panels, ncols=ncols, captions=captions, scale=3 if panels["uniform codes"].shape[-1] <= 16
                       else 2)  # fmt: skip


def completions_figure(model: TwoStageModel, test_set, *, n: int) -> np.ndarray:
    """Held-out images with the lower half hidden (row "given") above the model's completions."""
    images, labels = test_set.images[:n], test_set.labels[:n]
    mask = torch.zeros(images.shape[2:], dtype=torch.bool)
    mask[: images.shape[2] // 2] = True  # keep the top half
    generator = torch.Generator().manual_seed(SEED)
    completed = model.complete(images, mask, labels, generator=generator)
    rows = torch.cat([(images * mask).float() / 255, completed.cpu()])
    grid = make_grid(rows, ncols=n)
    scale = 3 if images.shape[-1] <= 16 else 2
    return label_grid(grid, tile_shape=tuple(images.shape[2:]), scale=scale, row_labels=["given", "completed"],
                      title="completions of held-out images (top half given)")  # fmt: skip


def make_pictures(which: set[str], quick: bool) -> None:
    command = "make figures (python scripts/make_figures.py" + (" --quick)" if quick else ")")
    names = ["mnist", "fashion-mnist", "digits", "cifar10"] if "gallery" in which else ["mnist"]
    for name in names:
        try:
            model, train_set, test_set = train(name, quick)
        except DatasetNotFoundError as error:
            print(f"skipping {name}: {error}", file=sys.stderr)
            continue
        samples = samples_figure(model, train_set, per_panel=20, ncols=5)
        completions = completions_figure(model, test_set, n=10)
        if name == "mnist" and "readme" in which:
            readme = stack([samples, completions])
            save_small_png(OUT / "readme.png", with_footer(readme, stamp(command)))
        if "gallery" in which:
            title = label_grid(np.full((1, 1), 255, np.uint8), tile_shape=(1, 1), padding=0,
                               title=MODELS[name]["title"])[: FONT_SIZE + 8]  # fmt: skip
            figure = stack([title, samples, completions], gap=4)
            save_small_png(OUT / f"gallery-{name}.png", with_footer(figure, stamp(command)))


# --- charts from the benchmark JSON -------------------------------------------------------------------------------


def _load(name: str) -> dict | None:
    path = DATA / f"{name}.json"
    if not path.exists():
        print(f"no {path}: skipping its chart", file=sys.stderr)
        return None
    return json.loads(path.read_text())


def _footer(fig, record: dict) -> None:
    text = f"data: {record['command']} | {record['machine']} | {record['date']}"
    if record.get("source"):
        text += f"\n{record['source']}"
    fig.text(0.01, 0.01, text, fontsize=7, color="0.3", ha="left", va="bottom", wrap=True)


def _finish_chart(fig, record: dict, name: str, bottom: float) -> None:
    """Lay ``fig`` out above a footer strip of height ``bottom`` (a fraction) naming ``record``'s source; save it."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=(0, bottom, 1, 1))
    _footer(fig, record)
    fig.canvas.draw()
    canvas = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    save_small_png(OUT / f"{name}.png", canvas)


def chart_sampling(record: dict) -> None:
    import matplotlib.pyplot as plt

    cases = record["results"]
    labels = [c["label"] for c in cases]
    y = np.arange(len(cases))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 4), dpi=100, gridspec_kw={"width_ratios": [3, 2]})
    for offset, key, colour in ((-0.2, "cached_s", "tab:blue"), (0.2, "naive_s", "tab:orange")):
        left.barh(y + offset, [c[key] for c in cases], height=0.38, color=colour, label=key[:-2])
    left.set_xscale("log")
    left.set_xlim(right=max(c["naive_s"] for c in cases) * 30)  # room for the legend right of the bars
    left.set_yticks(y, labels, fontsize=8)
    left.invert_yaxis()
    left.set_xlabel("seconds per batch (log scale)")
    left.legend(loc="upper right", fontsize=8)
    left.set_title("sampling time: cached vs naive", fontsize=10)
    speedup = [c["naive_s"] / c["cached_s"] for c in cases]
    right.barh(y, speedup, color="tab:green")
    for yi, s in zip(y, speedup):
        right.text(s, yi, f" {s:.0f}x", va="center", fontsize=8)
    right.set_yticks(y, [""] * len(y))
    right.invert_yaxis()
    right.set_xlim(0, max(speedup) * 1.25)
    right.set_xlabel("naive / cached")
    right.set_title("speed-up of cached sampling", fontsize=10)
    _finish_chart(fig, record, "chart-sampling", bottom=0.12)


def chart_quantizer(record: dict) -> None:
    import matplotlib.pyplot as plt

    results = record["results"]
    names = [("vector-quantize-pytorch", "vqp_ms"), ("plain addmm+argmin", "plain_ms"), ("vqgen vq", "vq_ms"),
             ("vqgen ema", "ema_ms")]  # fmt: skip
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    width = 0.8 / len(names)
    x = np.arange(len(results))
    for i, (label, key) in enumerate(names):
        values = [r[key] for r in results]
        bars = ax.bar(x + (i - 1.5) * width, values, width, label=label)
        ax.bar_label(bars, [f"{v:.0f}" for v in values], fontsize=7)
    ax.set_xticks(x, [f"K = {r['codes']}" for r in results])
    ax.set_yscale("log")
    ax.set_ylabel("ms per training step (log)")
    ax.set_title(f"quantizer step, z {tuple(record['shape'])}: lower is faster", fontsize=10)
    ax.set_ylim(top=max(r["vqp_ms"] for r in results) * 8)  # room for the legend above the bars
    ax.legend(fontsize=8, ncols=2, loc="upper left")
    _finish_chart(fig, record, "chart-quantizer", bottom=0.15)


def chart_prior_quality(record: dict) -> None:
    import matplotlib.pyplot as plt

    rows = record["results"]
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    bars = ax.bar([r["prior"] for r in rows], [r["bits_per_dim"] for r in rows], color="tab:purple", width=0.6)
    ax.bar_label(bars, [f"{r['bits_per_dim']:.3f}" for r in rows], fontsize=8)
    ax.set_ylim(0, max(r["bits_per_dim"] for r in rows) * 1.15)
    ax.set_ylabel("test bits/dim (lower is better)")
    ax.set_title(f"pixel priors on MNIST, {record['budget']}", fontsize=10)
    _finish_chart(fig, record, "chart-prior-quality", bottom=0.2)


def chart_two_stage(record: dict) -> None:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.8), dpi=100)
    datasets = list(record["results"])
    models = list(record["results"][datasets[0]])
    width = 0.8 / len(datasets)
    x = np.arange(len(models))
    for ax, (metric, label) in zip(axes, (("bits_per_code", "held-out bits per code"), ("fid", "FID (classifier)"))):
        for i, dataset in enumerate(datasets):
            values = [record["results"][dataset][m][metric] for m in models]
            bars = ax.bar(x + (i - (len(datasets) - 1) / 2) * width, values, width, label=dataset)
            ax.bar_label(bars, [f"{v:.2f}" if metric == "bits_per_code" else f"{v:.1f}" for v in values], fontsize=6)
        ax.set_xticks(x, models, fontsize=8)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.1)
        ax.set_title(f"two-stage models: {label}, lower is better", fontsize=10)
        ax.legend(fontsize=8, loc="upper left")
    _finish_chart(fig, record, "chart-two-stage", bottom=0.14)


def make_charts() -> None:
    import matplotlib

    matplotlib.use("Agg")
    if (record := _load("sampling-speed")) is not None:
        chart_sampling(record)
    if (record := _load("quantizer-speed")) is not None:
        chart_quantizer(record)
    if (record := _load("prior-quality")) is not None:
        chart_prior_quality(record)
    if (record := _load("two-stage-quality")) is not None:
        chart_two_stage(record)


QUALITY_COLOURS = {
    "gated_pixelcnn": "tab:blue", "gated_readme": "tab:blue", "pixelcnn": "tab:orange", "rnn": "tab:green",
    "gated_default": "purple", "gated_readme_average": "tab:cyan", "gated_readme_dropout": "tab:olive",
}  # fmt: skip


def _quality_records() -> tuple[dict[str, dict], dict[str, dict]]:
    """``({dataset: quality_budget record}, {prior: quality_curve_mnist_<prior> record})`` found in ``DATA``."""
    budgets = {p.stem.removeprefix("quality_budget_"): json.loads(p.read_text())
               for p in sorted(DATA.glob("quality_budget_*.json"))}  # fmt: skip
    curves = {p.stem.removeprefix("quality_curve_mnist_"): json.loads(p.read_text())
              for p in sorted(DATA.glob("quality_curve_mnist_*.json")) if "_pair_" not in p.name}  # fmt: skip
    return budgets, curves


def _budget_label(name: str) -> str:
    """``fashion-mnist_grid14`` (a ``main DATASET VARIANT`` record) → ``fashion-mnist, grid14``."""
    return name.replace("_", ", ")


def _threads(n: int) -> str:
    """``"1 thread"``, ``"2 threads"``."""
    return f"{n} thread{'s' if n > 1 else ''}"


def chart_quality_curves(budget: dict, lines: dict[str, list], threads: int, name: str, source: dict) -> None:
    """Held-out bits/code and sample FID against minutes of prior training, one line per prior (MNIST).

    ``lines`` maps a label to a curve (a list of points), ``budget`` (main's record) gives the baselines and floor,
    ``source`` is the record the footer names. Each label ends with the curve's last value, since the lines end close.
    """
    import matplotlib.pyplot as plt

    r = budget["results"]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for ax, key, label in ((axes[0], "bits_per_code", "held-out bits per code"), (axes[1], "fid", "sample FID")):
        for prior, curve in lines.items():
            minutes = [p["train_seconds"] / 60 for p in curve]
            colour = QUALITY_COLOURS.get(prior.split()[0])
            last = f"{curve[-1][key]:.3f} at {minutes[-1]:.0f} min"
            ax.plot(minutes, [p[key] for p in curve], "o-", color=colour, label=f"{prior}: {last}")
        baselines = r["bits_per_code"] if key == "bits_per_code" else r["fid"]
        for base, style in (("independent", "--"), ("uniform", ":")):
            ax.axhline(baselines[base], color="0.4", linestyle=style, label=f"{base} codes")
        if key == "fid":
            ax.axhline(r["fid"]["floor"], color="tab:red", linestyle="-.", label="real images (floor)")
            ax.set_yscale("log")
        ax.set_xlabel(f"minutes of prior training ({_threads(threads)})")
        ax.set_title(f"MNIST, K={budget['budget']['config']['quantizer']['num_codes']}: {label}", fontsize=10)
        ax.legend(fontsize=7)
    _finish_chart(fig, source, name, bottom=0.1)


def _curve_length(name: str) -> tuple[str, str | None]:
    """``gated_readme_60min`` (a ``curve DATASET PRIOR MINUTES`` record) → ``("gated_readme", "60min")``."""
    prior, _, length = name.rpartition("_")
    if prior and length.endswith("min") and length[:-3].isdigit():
        return prior, length
    return name, None


def _curve_charts(main: dict, curves: dict[str, dict]) -> dict[str, tuple[dict[str, list], int, dict]]:
    """``{chart name: (lines, threads, source record)}``: main's curve with the ``CURVE_SECONDS`` curves, then one
    chart per length of the ``curve DATASET PRIOR MINUTES`` runs, with ``gated_readme``'s longest run cut to it where
    it is missing."""
    by_length: dict[str | None, dict[str, dict]] = {None: {"gated_pixelcnn (README)": main}}
    for name, record in curves.items():
        prior, length = _curve_length(name)
        by_length.setdefault(length, {})[prior] = record
    readme_runs = sorted((int(k[:-3]), k) for k, r in by_length.items() if k and "gated_readme" in r)
    charts = {}
    for length, records in by_length.items():
        lines = {prior: record["results"]["curve"] for prior, record in records.items()}
        if length and "gated_readme" not in lines and readme_runs:
            longest = readme_runs[-1][1]
            end = max(p["train_seconds"] for curve in lines.values() for p in curve) + 1
            curve = by_length[longest]["gated_readme"]["results"]["curve"]
            lines[f"gated_readme ({longest} run)"] = [p for p in curve if p["train_seconds"] <= end]
        source = next(iter(records.values()))
        threads = source["budget"].get("threads", 1)
        charts["quality-curves" + (f"-{length}" if length else "")] = (lines, threads, source)
    return charts


def chart_quality_temperature(budgets: dict[str, dict]) -> None:
    """FID of the trained gated prior's samples against the sampling temperature, one line per dataset."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    floors = {}
    for index, (dataset, record) in enumerate(budgets.items()):
        colour = f"C{index % 10}"
        sweep = record["results"]["temperature"]
        label = _budget_label(dataset)
        ax.plot([float(t) for t in sweep], [v["fid"] for v in sweep.values()], "o-", color=colour, label=label)
        floors.setdefault(dataset.split("_")[0], (record["results"]["fid"]["floor"], colour))
    for dataset, (floor, colour) in floors.items():
        ax.axhline(floor, color=colour, linestyle="-.", label=f"{dataset} floor")
    ax.set_yscale("log")
    ax.set_xlabel("sampling temperature")
    ax.set_ylabel("sample FID (log)")
    ax.set_title("gated_pixelcnn at the end of each budget (README: 20 minutes)", fontsize=10)
    ax.legend(fontsize=7)
    _finish_chart(fig, next(iter(budgets.values())), "quality-temperature", bottom=0.14)


def chart_quality_floor(budgets: dict[str, dict]) -> None:
    """FID of real images (the floor), reconstructions, prior samples and the baselines' samples, per dataset."""
    import matplotlib.pyplot as plt

    kinds = ("floor", "reconstructions", "prior_readme_temperature", "independent", "uniform")
    fig, ax = plt.subplots(figsize=(8, 4), dpi=100)
    width = 0.8 / len(budgets)
    x = np.arange(len(kinds))
    for i, (dataset, record) in enumerate(budgets.items()):
        fid = record["results"]["fid"]
        values = [fid.get(k, fid["prior"] if k == "prior_readme_temperature" else None) for k in kinds]
        bars = ax.bar(x + (i - (len(budgets) - 1) / 2) * width, values, width, label=_budget_label(dataset))
        ax.bar_label(bars, [f"{v:.2f}" for v in values], fontsize=7)
    temperature = next(iter(budgets.values()))["budget"].get("readme_temperature", 1.0)
    labels = ["real (floor)", "reconstructions", f"prior samples (T={temperature:g})", "independent", "uniform"]
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("FID, classifier features (log)")
    ax.set_title("1000 images vs the test set, README config at 20 CPU-minutes", fontsize=10)
    ax.legend(fontsize=8)
    _finish_chart(fig, next(iter(budgets.values())), "quality-floor", bottom=0.14)


def chart_quality_trials(trials: dict[str, dict]) -> None:
    """Sample and reconstruction FID of each one-change trial (MNIST, same budget), the baseline marked."""
    import matplotlib.pyplot as plt

    names = sorted(trials, key=lambda n: (n != "baseline", trials[n]["results"]["fid_readme_temperature"]))
    results = [trials[n]["results"] for n in names]
    fig, ax = plt.subplots(figsize=(8, 0.4 * len(names) + 1.6), dpi=100)
    y = np.arange(len(names))
    samples = [r["fid_readme_temperature"] for r in results]
    recon = [r["fid_reconstructions"] for r in results]
    bars = ax.barh(y - 0.2, samples, 0.4, label=f"samples (T={results[0]['readme_temperature']:g})")
    ax.bar_label(bars, [f"{v:.2f}" for v in samples], fontsize=7)
    bars = ax.barh(y + 0.2, recon, 0.4, label="reconstructions", color="0.6")
    ax.bar_label(bars, [f"{v:.2f}" for v in recon], fontsize=7)
    ax.axvline(samples[0], color="tab:blue", linestyle="--", linewidth=0.8)
    ax.set_yticks(y, names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlim(left=0.1)
    ax.set_xlabel("FID, classifier features (log; lower is better)")
    seconds = trials[names[0]]["results"]["seconds"]
    title = f"MNIST, one change each: {seconds[0] / 60:g} min stage 1 + {seconds[1] / 60:g} min prior"
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    _finish_chart(fig, trials[names[0]], "quality-trials", bottom=0.08)


def chart_colour_orders(records: dict[str, dict]) -> None:
    """Held-out bits/dim of the pixel-level colour PixelCNN against training minutes, one line per channel order."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for order, record in records.items():
        curve = record["results"]["curve"]
        minutes = [p["train_seconds"] / 60 for p in curve]
        last = f"{curve[-1]['bits_per_dim']:.3f} at {minutes[-1]:.0f} min, {curve[-1]['steps']} steps"
        ax.plot(minutes, [p["bits_per_dim"] for p in curve], "o-", label=f"{order}: {last}")
    source = next(iter(records.values()))
    threads = source["budget"].get("threads", 1)
    ax.set_xlabel(f"minutes of training ({_threads(threads)} each, run side by side)")
    ax.set_ylabel("held-out bits per dim")
    ax.set_title("CIFAR-10 subset, pixel PixelCNN: colour channel order", fontsize=10)
    ax.legend(fontsize=8)
    _finish_chart(fig, source, "colour-pixel-orders", bottom=0.14)


def make_quality_charts() -> None:
    import matplotlib

    matplotlib.use("Agg")
    budgets, curves = _quality_records()
    if not budgets:
        print(f"no {DATA}/quality_budget_*.json: skipping the quality charts", file=sys.stderr)
        return
    readme = {name: record for name, record in budgets.items() if "_" not in name}  # no VARIANT
    if "mnist" in budgets:
        main = budgets["mnist"]
        for name, (lines, threads, source) in _curve_charts(main, curves).items():
            chart_quality_curves(main, lines, threads, name, source)
    chart_quality_temperature(budgets)
    chart_quality_floor(readme or budgets)
    trials = {p.stem.removeprefix("quality_trial_mnist_"): json.loads(p.read_text())
              for p in sorted(DATA.glob("quality_trial_mnist_*.json"))}  # fmt: skip
    trials = {name: t for name, t in trials.items() if "fid_readme_temperature" in t["results"]}
    if "baseline" in trials:
        chart_quality_trials(trials)
    orders = {p.stem.removeprefix("quality_colour_pixel_").split("_")[0]: json.loads(p.read_text())
              for p in sorted(DATA.glob("quality_colour_pixel_*_*min.json"))}  # fmt: skip
    if orders:
        chart_colour_orders(orders)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", choices=["readme", "gallery", "charts", "quality"], default=None,
                        help="which figures (default: all)")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="a few training steps only: checks the script, ugly")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: docs/images)")
    args = parser.parse_args(argv)
    global OUT
    OUT = args.out or OUT
    which = set(args.only or ["readme", "gallery", "charts", "quality"])
    torch.set_num_threads(THREADS)
    started = time.perf_counter()
    if which & {"readme", "gallery"}:
        make_pictures(which, args.quick)
    if "charts" in which:
        make_charts()
    if "quality" in which:
        make_quality_charts()
    print(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
