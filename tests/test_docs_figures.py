"""The figures of the README and docs: every referenced picture exists and is small; the charts are generated."""

from __future__ import annotations

import importlib
import importlib.util
import re
from pathlib import Path

import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+\.png)\)")
MAX_BYTES = 200_000


def _referenced() -> list[Path]:
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    return sorted({(page.parent / link).resolve() for page in pages for link in IMAGE.findall(page.read_text())})


def _make_figures():
    """scripts/make_figures.py as a module (loading it puts the repository root on ``sys.path``)."""
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _quality_charts():
    """scripts/figures/quality_charts.py, the module make_figures.py runs for ``--only quality``."""
    _make_figures()
    return importlib.import_module("scripts.figures.quality_charts")


def test_referenced_pictures_exist_and_are_small():
    pictures = _referenced()
    assert (ROOT / "docs" / "images" / "readme.png").resolve() in pictures  # the README opens with one
    for path in pictures:
        assert path.is_file(), f"{path.relative_to(ROOT)} is referenced but missing: run `make figures`"
        assert path.stat().st_size < MAX_BYTES, f"{path.relative_to(ROOT)} is over {MAX_BYTES} bytes"
        with Image.open(path) as image:
            assert image.width >= 400, f"{path.relative_to(ROOT)} is only {image.width} px wide"


def test_charts_are_drawn_from_the_benchmark_json(tmp_path):
    pytest.importorskip("matplotlib")
    module = _make_figures()
    assert module.main(["--only", "charts", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {"chart-sampling.png", "chart-quantizer.png", "chart-prior-quality.png", "chart-two-stage.png"}
    with Image.open(tmp_path / "chart-sampling.png") as image:
        assert image.mode == "P" and image.width >= 400  # palette PNG


def test_quality_charts_draw_every_record(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    module, charts = _make_figures(), _quality_charts()
    drawn: dict[str, list[str]] = {}
    finish = charts.finish_chart

    def spy(fig, record, name, bottom, out):
        drawn[name] = [line.get_label() for ax in fig.axes[:1] for line in ax.get_lines()]
        finish(fig, record, name, bottom, out)

    monkeypatch.setattr(charts, "finish_chart", spy)
    assert module.main(["--only", "quality", "--out", str(tmp_path)]) == 0
    data = ROOT / "docs" / "data"
    budgets = sorted(p.stem.removeprefix("quality_budget_") for p in data.glob("quality_budget_*.json"))
    long = {charts._curve_length(p.stem.removeprefix("quality_curve_mnist_"))[1]
            for p in data.glob("quality_curve_mnist_*.json")} - {None}  # fmt: skip
    expected = {"quality-curves", "quality-temperature", "quality-floor", "quality-trials"}
    if any(data.glob("quality_colour_pixel_*_*min.json")):
        expected.add("colour-pixel-orders")
    assert set(drawn) == expected | {f"quality-curves-{length}" for length in long}
    assert {p.stem for p in tmp_path.glob("*.png")} == set(drawn)
    # one line per budget record (every variant), then one floor line per dataset
    assert drawn["quality-temperature"][: len(budgets)] == [name.replace("_", ", ") for name in budgets]


def test_curve_length_splits_off_a_curves_minutes():
    module = _quality_charts()
    assert module._curve_length("gated_readme_60min") == ("gated_readme", "60min")
    assert module._curve_length("gated_default") == ("gated_default", None)
    assert module._curve_length("rnn") == ("rnn", None)


def test_curve_charts_group_curves_by_length():
    module = _quality_charts()

    def record(seconds, threads=1):
        curve = [{"train_seconds": float(s), "fid": 1.0, "bits_per_code": 4.0} for s in seconds]
        return {"results": {"curve": curve}, "budget": {"threads": threads}}

    main = record([60, 300, 900], threads=2)
    curves = {"rnn": record([60, 300], threads=2), "gated_readme_60min": record([60, 600, 1800, 3600]),
              "gated_readme_average_10min": record([60, 600])}  # fmt: skip
    charts = module._curve_charts(main, curves)
    assert set(charts) == {"quality-curves", "quality-curves-60min", "quality-curves-10min"}
    lines, threads, source = charts["quality-curves"]
    assert set(lines) == {"gated_pixelcnn (README)", "rnn"} and threads == 2 and source is main
    lines, threads, source = charts["quality-curves-10min"]
    assert set(lines) == {"gated_readme_average", "gated_readme (60min run)"} and threads == 1
    assert source is curves["gated_readme_average_10min"]
    assert [p["train_seconds"] for p in lines["gated_readme (60min run)"]] == [60.0, 600.0]  # cut to 10 minutes
