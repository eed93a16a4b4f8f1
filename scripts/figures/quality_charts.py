"""The charts of quality per CPU-minute (``--only quality``), drawn from what ``scripts/experiments/`` wrote to
``docs/data/quality_*.json``: bits/code and FID against training minutes per prior, FID against the sampling
temperature, the FID of each kind of image against the floor, the one-change trials and the colour channel orders."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from scripts.figures.common import DATA, finish_chart

QUALITY_COLOURS = {
    "gated_pixelcnn": "tab:blue", "gated_readme": "tab:blue", "pixelcnn": "tab:orange", "rnn": "tab:green",
    "gated_default": "purple", "gated_readme_average": "tab:cyan", "gated_readme_dropout": "tab:olive",
    "pixelcnn_pp": "tab:red", "transformer": "tab:brown",
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


def chart_quality_curves(budget: dict, lines: dict[str, list], threads: int, name: str, source: dict,
                         out: Path) -> None:  # fmt: skip
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
    finish_chart(fig, source, name, bottom=0.1, out=out)


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


def chart_quality_temperature(budgets: dict[str, dict], out: Path) -> None:
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
    finish_chart(fig, next(iter(budgets.values())), "quality-temperature", bottom=0.14, out=out)


def chart_quality_floor(budgets: dict[str, dict], out: Path) -> None:
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
    finish_chart(fig, next(iter(budgets.values())), "quality-floor", bottom=0.14, out=out)


def chart_quality_trials(trials: dict[str, dict], out: Path) -> None:
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
    finish_chart(fig, trials[names[0]], "quality-trials", bottom=0.08, out=out)


def chart_colour_orders(records: dict[str, dict], out: Path) -> None:
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
    finish_chart(fig, source, "colour-pixel-orders", bottom=0.14, out=out)


def _pixels_run(stem: str) -> tuple[str, str, str]:
    """``quality_pixels_cifar10-subset_pixelcnn_pp_10min`` -> ``("cifar10-subset", "pixelcnn_pp", "10min")``."""
    dataset, _, rest = stem.removeprefix("quality_pixels_").partition("_")
    prior, _, minutes = rest.rpartition("_")
    return dataset, prior, minutes


PIXELS_TITLES = {"cifar10-subset": "CIFAR-10 subset, 32×32×3 pixels", "mnist": "MNIST, 28×28 pixels"}


def chart_pixel_priors(dataset: str, records: dict[tuple[str, str], dict], out: Path) -> None:
    """Held-out bits/dim against training minutes of the pixel priors on ``dataset`` (``quality_pixels_*.json``), one
    line per run: a run's learning-rate schedule spans its own budget, so a 10-minute run is not the start of a 30."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for (prior, minutes), record in sorted(records.items(), key=lambda item: (item[0][1] != "30min", item[0])):
        curve = record["results"]["curve"]
        x = [p["train_seconds"] / 60 for p in curve]
        last = f"{curve[-1]['bits_per_dim']:.3f} after {x[-1]:.0f} min"
        style = "o-" if minutes != "10min" else "s--"
        ax.plot(x, [p["bits_per_dim"] for p in curve], style, label=f"{prior} ({minutes} run): {last}")
    source = next(iter(records.values()))
    ax.set_xscale("log")
    ax.set_xlabel(f"minutes of training (log; {_threads(source['budget'].get('threads', 1))} each, two side by side)")
    ax.set_ylabel("held-out bits per dim")
    ax.set_title(f"{PIXELS_TITLES.get(dataset, dataset)}: pixel priors at equal CPU time", fontsize=10)
    ax.legend(fontsize=7)
    finish_chart(fig, source, f"pixels-{dataset}", bottom=0.14, out=out)


def make_quality_charts(out: Path) -> None:
    """Every quality chart whose JSON is in ``docs/data/``, into ``out``."""
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
            chart_quality_curves(main, lines, threads, name, source, out)
    chart_quality_temperature(budgets, out)
    chart_quality_floor(readme or budgets, out)
    trials = {p.stem.removeprefix("quality_trial_mnist_"): json.loads(p.read_text())
              for p in sorted(DATA.glob("quality_trial_mnist_*.json"))}  # fmt: skip
    trials = {name: t for name, t in trials.items() if "fid_readme_temperature" in t["results"]}
    if "baseline" in trials:
        chart_quality_trials(trials, out)
    orders = {p.stem.removeprefix("quality_colour_pixel_").split("_")[0]: json.loads(p.read_text())
              for p in sorted(DATA.glob("quality_colour_pixel_*_*min.json"))}  # fmt: skip
    if orders:
        chart_colour_orders(orders, out)
    pixels: dict[str, dict[tuple[str, str], dict]] = {}
    for path in sorted(DATA.glob("quality_pixels_*_*min.json")):
        dataset, prior, minutes = _pixels_run(path.stem)
        pixels.setdefault(dataset, {})[prior, minutes] = json.loads(path.read_text())
    for dataset, records in pixels.items():
        chart_pixel_priors(dataset, records, out)
