"""The summary of docs/benchmarks.md: its table is the one scripts/bench_summary.py makes from the committed JSON of
docs/data, every JSON it cites is there, and every row links a section of the method page."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "docs" / "data"
PIXEL_PRIORS = ("pixelcnn_pp", "gated_pixelcnn", "pixelcnn")  # the side-by-side pixel runs of issue 21


@pytest.fixture
def summary(monkeypatch):
    """scripts/bench_summary.py as a module."""
    spec = importlib.util.spec_from_file_location("script_bench_summary", ROOT / "scripts" / "bench_summary.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_every_json_the_summary_cites_is_in_docs_data(summary):
    cited = {name for row in summary.ROWS for name in row.sources}
    assert sorted(name for name in cited if not (DATA / f"{name}.json").is_file()) == []


def test_the_summary_table_is_the_one_the_json_give(summary):
    page = summary.PAGE.read_text()
    assert summary.page_block(page) == summary.render(), "run: python scripts/bench_summary.py --write"
    assert summary.main(["--check"]) == 0


def test_every_row_links_a_section_of_the_method_page_and_shows_its_date(summary):
    method = (ROOT / "docs" / summary.METHOD).read_text()
    anchors = set(re.findall(r"\{#([\w-]+)\}", method))
    assert sorted({row.anchor for row in summary.ROWS} - anchors) == []
    for row in summary.ROWS:
        what, measured, goal, setting, date, links = summary.cells(row)
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}†?( / \d{4}-\d{2}-\d{2}†?)*", date), (row.what, date)
        assert all(f"(data/{name}.json)" in links for name in row.sources), row.what
        assert goal.endswith((": met", ": missed")) if row.goal else goal == "", row.what


def test_a_cited_json_that_is_missing_stops_the_summary_naming_it(summary, monkeypatch, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    (data / "prior_flops_1t.json").unlink()
    monkeypatch.setattr(summary, "DATA", data)
    with pytest.raises(summary.MissingJSON, match=r"docs/data/prior_flops_1t\.json is missing"):
        summary.render()
    assert summary.main(["--check"]) == 1
    assert "docs/data/prior_flops_1t.json is missing" in capsys.readouterr().err


def test_no_json_the_summary_cites_is_older_than_the_code_it_describes(summary):
    assert summary.stale() == []


def test_each_json_depends_on_the_modules_it_measured_and_what_they_import(summary):
    transformer = summary.measured_files("transformer-speed")
    assert {"vqgen/priors/transformer.py", "vqgen/priors/attention.py", "vqgen/sampling.py"} <= set(transformer)
    assert "vqgen/priors/gated_pixelcnn.py" not in transformer and "vqgen/training/engine.py" not in transformer
    assert "vqgen/priors/transformer.py" not in summary.measured_files("sampling-speed")
    snippet = set(summary.measured_files("readme_snippet"))
    assert {"vqgen/training/engine.py", "vqgen/quantizers/ema.py", "vqgen/autoencoders/conv.py"} <= snippet
    assert not any(path.endswith("__init__.py") for path in snippet)


def test_a_json_older_than_its_code_stops_the_summary_until_rerun_or_restamped(summary, monkeypatch, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    record = json.loads((data / "transformer-speed.json").read_text())
    record["vqgen_code"]["digests"]["vqgen/priors/attention.py"] = "0" * 12  # measured before attention.py changed
    (data / "transformer-speed.json").write_text(json.dumps(record))
    monkeypatch.setattr(summary, "DATA", data)
    with pytest.raises(summary.StaleJSON, match=r"transformer-speed\.json is older than vqgen/priors/attention\.py"):
        summary.render()
    assert summary.main(["--check"]) == 1
    assert "--restamp transformer-speed --reason" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        summary.main(["--restamp", "transformer-speed"])  # a restamp needs its reason
    with pytest.raises(SystemExit):
        summary.main(["--restamp", "no_such_json*", "--reason", "x"])  # names none of the cited JSON
    assert summary.main(["--restamp", "transformer-speed", "--reason", "a refactor, same seeded samples"]) == 0
    summary.render()
    stamped = json.loads((data / "transformer-speed.json").read_text())["vqgen_code"]
    assert stamped["restamped"][-1]["reason"] == "a refactor, same seeded samples"
    del record["vqgen_code"]  # a JSON from before the digests
    (data / "transformer-speed.json").write_text(json.dumps(record))
    with pytest.raises(summary.StaleJSON, match="records no code digests"):
        summary.render()


def test_the_table_follows_the_json_and_write_puts_it_between_the_markers(summary, monkeypatch, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(DATA, data)
    record = json.loads((data / "sampling-speed.json").read_text())
    case = next(result for result in record["results"] if result["case"] == "gated-pixels-28x28")
    case["naive_s"] = case["cached_s"] * 10  # a rerun that misses the goal of 20x
    record["date"] = "2027-01-02 03:04 UTC"
    (data / "sampling-speed.json").write_text(json.dumps(record))
    row = summary.ROWS[0]
    assert row.sources == ("sampling-speed",)
    _, measured, goal, _, date, _ = summary.cells(row, data)
    assert (measured, goal, date) == ("**10×** faster", "≥ 20×: missed", "2027-01-02")

    page = tmp_path / "benchmarks.md"
    page.write_text(f"# Benchmarks\n\nintro\n\n{summary.START}\nstale\n{summary.END}\n\nafter\n")
    assert summary.write(page, block="| new |") is True
    assert page.read_text() == f"# Benchmarks\n\nintro\n\n{summary.START}\n\n| new |\n\n{summary.END}\n\nafter\n"
    assert summary.write(page, block="| new |") is False
    page.write_text("# Benchmarks\n\nno markers\n")
    with pytest.raises(ValueError, match="no summary markers"):
        summary.write(page, block="| new |")


def test_the_summary_is_a_plain_markdown_table_that_github_renders(summary):
    """Not indented and not inside an admonition (GitHub shows those as code): every row starts at the line's start."""
    block = summary.page_block(summary.PAGE.read_text())
    rows = [line for line in block.splitlines() if line.startswith("|")]
    assert len(rows) == len(summary.ROWS) + 2
    assert "!!!" not in summary.PAGE.read_text() and not any(line.startswith("    |") for line in block.splitlines())


def test_the_choose_prior_guide_quotes_the_pixelcnn_pp_runs_as_their_json_give():
    """The figures the guide's PixelCNN++ rows quote by hand are those of the JSON they link to."""
    guide = (ROOT / "docs" / "guides" / "choose-prior.md").read_text()

    def last(name: str) -> dict:
        return json.loads((DATA / f"{name}.json").read_text())["results"]["curve"][-1]

    cifar = [last(f"quality_pixels_cifar10-subset_{p}_30min")["bits_per_dim"] for p in PIXEL_PRIORS]
    mnist = [last(f"quality_pixels_mnist_{p}_30min")["bits_per_dim"] for p in PIXEL_PRIORS]
    codes = last("quality_curve_fashion-mnist_pixelcnn_pp_grid14_20min")
    floor = json.loads((DATA / "quality_fashion-mnist_grid14_20min_temperatures.json").read_text())["floor"]
    assert f"{cifar[0]:.2f} bits/dim after 30 one-core minutes against {cifar[1]:.2f} (`gated_pixelcnn`) and " \
           f"{cifar[2]:.2f} (`pixelcnn`)" in guide  # fmt: skip
    assert f"({mnist[2]:.3f} against {mnist[0]:.3f} and {mnist[1]:.3f} at 30)" in guide
    assert f"FID {codes['fid']:.2f} = {codes['fid'] / floor:.0f}× the floor, {100 * codes['recognised']:.0f} % " \
           f"recognised" in guide and f"at {codes['bits_per_code']:.2f} bits per code" in guide  # fmt: skip
