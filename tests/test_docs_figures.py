"""The figures of the README and docs: every referenced picture exists and is small; the charts are generated."""

from __future__ import annotations

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
    spec = importlib.util.spec_from_file_location("make_figures", ROOT / "scripts" / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--only", "charts", "--out", str(tmp_path)]) == 0
    names = {p.name for p in tmp_path.glob("*.png")}
    assert names == {"chart-sampling.png", "chart-quantizer.png", "chart-prior-quality.png", "chart-two-stage.png"}
    with Image.open(tmp_path / "chart-sampling.png") as image:
        assert image.mode == "P" and image.width >= 400  # palette PNG
