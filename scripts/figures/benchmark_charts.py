"""The charts of ``docs/benchmarks/method.md`` drawn from the speed and quality benchmarks' JSON in ``docs/data/``
(``--only charts``): sampling time, quantizer step time, the pixel priors' bits/dim, the two-stage models."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from scripts.figures.common import finish_chart, load_record


def chart_sampling(record: dict, out: Path) -> None:
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
    finish_chart(fig, record, "chart-sampling", bottom=0.12, out=out)


def chart_quantizer(record: dict, out: Path) -> None:
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
    finish_chart(fig, record, "chart-quantizer", bottom=0.15, out=out)


def chart_prior_quality(record: dict, out: Path) -> None:
    import matplotlib.pyplot as plt

    rows = record["results"]
    fig, ax = plt.subplots(figsize=(5, 3.6), dpi=100)
    bars = ax.bar([r["prior"] for r in rows], [r["bits_per_dim"] for r in rows], color="tab:purple", width=0.6)
    ax.bar_label(bars, [f"{r['bits_per_dim']:.3f}" for r in rows], fontsize=8)
    ax.set_ylim(0, max(r["bits_per_dim"] for r in rows) * 1.15)
    ax.set_ylabel("test bits/dim (lower is better)")
    ax.set_title(f"pixel priors on MNIST, {record['budget']}", fontsize=10)
    finish_chart(fig, record, "chart-prior-quality", bottom=0.2, out=out)


def chart_two_stage(record: dict, out: Path) -> None:
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
    finish_chart(fig, record, "chart-two-stage", bottom=0.14, out=out)


#: The charts and the JSON each is drawn from (``docs/data/<name>.json``).
CHARTS = {"sampling-speed": chart_sampling, "quantizer-speed": chart_quantizer, "prior-quality": chart_prior_quality,
          "two-stage-quality": chart_two_stage}  # fmt: skip


def make_charts(out: Path) -> None:
    """Every chart whose JSON is in ``docs/data/``, into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    for name, chart in CHARTS.items():
        if (record := load_record(name)) is not None:
            chart(record, out)
