"""The benchmarks' harness (benchmarks/conftest.py, benchmarks/common.py) and the scripts that drive them.

The thread check, the goals option and the quality opt-in run in a small pytest session of their own (pytester) with
the benchmarks' conftest; the experiment drivers and ``scripts/bench_data.py`` are checked by parsing, without
running anything long.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest
import torch

import vqgen.training.prior  # noqa: F401  (imported once, before pytester's sessions, which must not import numpy again)

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def threads_marker(pytestconfig):
    """The drivers import benchmark modules, whose ``pytestmark = pytest.mark.threads(...)`` needs the marker that
    benchmarks/conftest.py registers: under ``--strict-markers`` this session must know it too, whatever ran before."""
    if not any(line.startswith("threads") for line in pytestconfig.getini("markers")):
        pytestconfig.addinivalue_line("markers", "threads(n): run the test with n torch threads, restored after it")


@pytest.fixture
def importable(monkeypatch):
    """The repository root on ``sys.path``: the ``benchmarks`` and ``scripts`` packages import."""
    monkeypatch.syspath_prepend(str(ROOT))


def _script(path: str, monkeypatch: pytest.MonkeyPatch):
    """A script of ``scripts/`` as a module (it puts the repository root on ``sys.path`` itself)."""
    name = "script_" + Path(path).stem
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, name, module)  # dataclasses look their module up there
    monkeypatch.setattr(sys, "path", [*sys.path])  # the script puts the repository root first, for this test only
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def harness(pytester, importable):
    """A pytester folder whose conftest is the benchmarks' one."""
    pytester.makeconftest("from benchmarks.conftest import *  # noqa: F401,F403\n")
    return pytester


def test_a_benchmark_that_leaves_the_thread_count_changed_errors_and_the_next_one_runs_as_before(harness):
    start = torch.get_num_threads()
    harness.makepyfile(
        f"""
        import pytest
        import torch

        def test_leaks():
            torch.set_num_threads({start + 1})

        def test_after_the_leak():
            assert torch.get_num_threads() == {start}

        @pytest.mark.threads({start + 2})
        def test_marked():
            assert torch.get_num_threads() == {start + 2}

        def test_after_the_marked_one():
            assert torch.get_num_threads() == {start}
        """
    )
    result = harness.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(["*test_leaks left torch's thread count at*"])
    assert torch.get_num_threads() == start


def test_goals_are_reported_always_and_asserted_only_under_benchmark_goals(harness):
    harness.makepyfile(
        """
        def test_goal(goals, summary_line):
            goals.check("met", True, "1.0x")
            goals.check("reported only", False, asserted=False)
            goals.check("missed", 1 > 2, "0.5x")
            assert goals.met == {"met": True, "reported only": False, "missed": False}
            goals.verify()
        """
    )
    relaxed = harness.runpytest("-p", "no:cacheprovider")
    relaxed.assert_outcomes(passed=1)
    relaxed.stdout.fnmatch_lines(["*benchmark summary*", "goal met: met (measured: 1.0x)", "goal MISSED: missed*"])
    strict = harness.runpytest("-p", "no:cacheprovider", "--benchmark-goals")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["*goals missed: missed*"])
    assert "goals missed: reported only" not in strict.stdout.str()


def test_the_quality_benchmarks_are_skipped_unless_asked_for(pytester, importable):
    quality = str(BENCHMARKS / "quality" / "test_weight_average.py")
    speed = str(BENCHMARKS / "speed" / "test_vqvae_training.py")
    skipped = pytester.runpytest(quality, speed, "-p", "no:cacheprovider", "--collect-only", "-q", "-m", "quality")
    skipped.stdout.fnmatch_lines(["*test_weight_average.py::test_weight_average_at_a_fixed_budget*", "1/5 tests *"])
    result = pytester.runpytest(quality, "-p", "no:cacheprovider", "-rs", "--benchmark-disable")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*quality benchmark (minutes to hours): run with --quality*"])


def test_benchmark_modules_write_json_only_through_write_results_and_not_through_pytest_cache():
    """No benchmark writes into the repository (docs/data) or needs pytest's cache plugin; every JSON gets the one
    header of ``write_results`` (command, ``machine()``, date)."""
    for path in sorted(BENCHMARKS.rglob("*.py")):
        text = path.read_text()
        name = path.relative_to(ROOT)
        assert '"docs" / "data"' not in text and '"docs", "data"' not in text, name
        assert "config.cache" not in text, name
        if path.name != "common.py":
            writes = [line for line in text.splitlines() if "json.dumps(" in line and "print(json.dumps(" not in line]
            assert all("info_path" in line for line in writes), (name, writes)  # only the FID classifier's info
            assert "def machine(" not in text, name


def test_write_results_goes_to_the_json_folder_a_user_names_else_a_temporary_one(importable, monkeypatch, tmp_path):
    from benchmarks import common

    monkeypatch.delenv("VQGEN_BENCH_JSON", raising=False)
    monkeypatch.delenv("VQGEN_BENCH_OUT", raising=False)
    assert ROOT not in common.json_dir().resolve().parents
    monkeypatch.setenv("VQGEN_BENCH_JSON", str(tmp_path))
    path = common.write_results("check", {"x": 1}, threads=2)
    record = json.loads(path.read_text())
    assert path == tmp_path / "check.json" and record["results"] == {"x": 1} and record["threads"] == 2
    assert record["machine"] == common.machine()
    assert re.fullmatch(r".+, \d+ CPUs, \d+ torch threads, \w+, torch .+", record["machine"]), record["machine"]
    assert record["vqgen_code"]["digests"] == common.code_digests()  # the code it measured, for the staleness check
    sampling = (ROOT / "vqgen" / "sampling.py").read_text()
    assert record["vqgen_code"]["digests"]["vqgen/sampling.py"] == common.code_digest(sampling)


def test_code_digest_follows_the_code_and_not_its_wording(importable):
    from benchmarks.common import code_digest

    plain = "def f(x):\n    return x + 1\n"
    worded = '"""Module."""\n\ndef f(x):\n    """Doc."""\n    # a comment\n    return (x+1)\n'
    assert code_digest(worded) == code_digest(plain)
    assert code_digest("def f(x):\n    return x + 2\n") != code_digest(plain)
    assert code_digest('def f(x):\n    """Only a docstring."""\n') == code_digest("def f(x):\n    pass\n")


def test_time_scale_reads_the_environment_and_refuses_what_is_not_a_positive_number(importable, monkeypatch):
    from benchmarks.common import time_scale

    monkeypatch.delenv("VQGEN_BENCH_TIME_SCALE", raising=False)
    assert time_scale() == 1.0
    monkeypatch.setenv("VQGEN_BENCH_TIME_SCALE", "0.01")
    assert time_scale() == 0.01
    for bad in ("0", "-1", "fast"):
        monkeypatch.setenv("VQGEN_BENCH_TIME_SCALE", bad)
        with pytest.raises(ValueError, match=f"VQGEN_BENCH_TIME_SCALE must be a positive number, got '{bad}'"):
            time_scale()


def test_quality_budget_driver_parses_every_run_and_refuses_unknown_names(monkeypatch, capsys):
    driver = _script("scripts/experiments/quality_budget.py", monkeypatch)
    budget = driver.budget
    args = driver.parser().parse_args(["main", "fashion-mnist", "grid14"])
    assert (args.run, args.dataset, args.variant) == ("main", "fashion-mnist", "grid14")
    args = driver.parser().parse_args(["curve", "mnist", "gated_readme", "60"])
    assert (args.run, args.prior, args.minutes) == ("curve", "gated_readme", "60")
    assert driver.parser().parse_args(["curve", "mnist", "rnn"]).minutes is None
    assert driver.parser().parse_args(["trial", "mnist", "k128"]).name == "k128"
    for name in budget.CURVE_PRIORS:  # the choices are the tables: a new prior needs no driver change
        assert driver.parser().parse_args(["curve", "mnist", name]).prior == name
    for bad in (["curve", "mnist", "transformer9"], ["curve", "mnist", "rnn", "0"], ["main", "cifar"], ["trial"]):
        with pytest.raises(SystemExit) as exit_:
            driver.parser().parse_args(bad)
        assert exit_.value.code == 2, bad
    with pytest.raises(SystemExit) as exit_:
        driver.main(["--help"])
    assert exit_.value.code == 0 and "{main,curve,sweep,temperatures,trial}" in capsys.readouterr().out


def test_quality_colour_driver_takes_an_order_with_its_minutes_or_neither(monkeypatch, capsys):
    driver = _script("scripts/experiments/quality_colour.py", monkeypatch)
    assert driver.parser().parse_args(["pixel", "sequential", "30"]).minutes == "30"
    assert driver.parser().parse_args(["pixels", "cifar10-subset", "pixelcnn_pp", "30"]).prior == "pixelcnn_pp"
    assert driver.parser().parse_args(["two-stage"]).run == "two-stage"
    with pytest.raises(SystemExit) as exit_:
        driver.main(["pixel", "sequential"])
    assert exit_.value.code == 2 and "pixel takes both ORDER and MINUTES, or neither" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        driver.parser().parse_args(["pixels", "mnist", "nope", "30"])


def test_a_driver_without_the_data_says_so_in_one_line(monkeypatch, tmp_path, capsys):
    driver = _script("scripts/experiments/quality_colour.py", monkeypatch)
    from benchmarks import common

    monkeypatch.delenv("VQGEN_DATA", raising=False)
    monkeypatch.setattr(common, "ROOT", tmp_path / "clone")  # no ../shared/data beside this one
    before = torch.get_num_threads()
    try:
        assert driver.main(["two-stage"]) == 2
    finally:
        torch.set_num_threads(before)  # the driver sets the threads of its process
    expected = "real cifar10-subset not found: set VQGEN_DATA to a folder holding cifar10-subset/"
    assert capsys.readouterr().err.strip() == expected


def test_readme_snippet_driver_reads_its_time_scale_from_the_environment(monkeypatch):
    driver = _script("scripts/experiments/readme_snippet.py", monkeypatch)
    monkeypatch.setenv("VQGEN_README_TIME_SCALE", "0.01")
    assert float(driver.parser().parse_args([]).time_scale) == 0.01
    assert float(driver.parser().parse_args(["--time-scale", "0.5"]).time_scale) == 0.5
    with pytest.raises(SystemExit):
        driver.parser().parse_args(["--time-scale", "-1"])


def test_readme_snippet_scaling_changes_only_the_two_budgets_while_it_runs(importable):
    from benchmarks.quality.test_readme_snippet import readme_snippet, scaled_budget
    from vqgen import presets

    line, code, name = readme_snippet()
    before = presets.get(name)
    assert line > 1 and "model.fit(" in code and "preset.budget" in code
    with scaled_budget(name, 0.01):
        scaled = presets.get(name)
        assert [stage["max_seconds"] for stage in scaled.budget.values()] == [3.0, 9.0]
        assert dataclasses.replace(scaled, stage1=before.stage1, stage2=before.stage2) == before
    assert presets.get(name) is before


def test_bench_data_has_a_command_for_every_json_the_benchmarks_pages_cite(monkeypatch):
    bench_data = _script("scripts/bench_data.py", monkeypatch)
    assert bench_data.problems() == []
    on_disk = {path.stem for path in (ROOT / "docs" / "data").glob("*.json")}
    assert on_disk <= bench_data.cited() <= set(bench_data.by_output())
    assert sorted(bench_data.cited() - on_disk) == [], "a benchmarks page cites a JSON missing from docs/data"


def test_bench_data_finds_the_json_a_page_cites_as_text_as_a_link_or_as_a_pattern(monkeypatch, tmp_path):
    bench_data = _script("scripts/bench_data.py", monkeypatch)
    summary, method = tmp_path / "summary.md", tmp_path / "method.md"
    summary.write_text("| [prior_flops.json](data/prior_flops.json) |\n")
    method.write_text(
        "in `docs/data/sampling-speed.json`, [x](../data/transformer-speed.json), `docs/data/quality_colour_*.json`"
    )
    monkeypatch.setattr(bench_data, "PAGES", (summary, method))
    colour = {path.stem for path in (ROOT / "docs" / "data").glob("quality_colour_*.json")}
    assert colour and bench_data.cited() == {"prior_flops", "sampling-speed", "transformer-speed"} | colour


def test_bench_data_check_finds_a_cited_json_without_a_command_and_a_command_its_driver_refuses(monkeypatch):
    bench_data = _script("scripts/bench_data.py", monkeypatch)
    monkeypatch.setattr(bench_data, "cited", lambda: {"sampling-speed", "nobody_writes_this"})
    budget = ("python", "scripts/experiments/quality_budget.py")
    monkeypatch.setattr(bench_data, "SOURCES", [
        bench_data.Source(("sampling-speed",), (*bench_data.PYTEST, "benchmarks/speed/test_sampling.py")),
        bench_data.Source(("a",), (*budget, "curve", "mnist", "no_such_prior")),
        bench_data.Source(("b",), (*bench_data.PYTEST, "benchmarks/test_sampling_speed.py")),
    ])  # fmt: skip
    found = bench_data.problems()
    assert len(found) == 3, found
    assert "cite docs/data/nobody_writes_this.json but no command" in found[0]
    assert found[1].endswith("scripts/experiments/quality_budget.py refuses these arguments")
    assert found[2].endswith("no benchmarks/test_sampling_speed.py")


def test_the_method_page_lists_the_commands_of_bench_data(monkeypatch):
    """docs/benchmarks/method.md says which command writes which JSON: the table of ``scripts/bench_data.py --list``."""
    bench_data = _script("scripts/bench_data.py", monkeypatch)
    page = (ROOT / "docs" / "benchmarks" / "method.md").read_text()
    for source in bench_data.SOURCES:
        assert f"| {', '.join(f'`{name}.json`' for name in source.outputs)} | `{source.shell()}` |" in page, source


def test_the_docs_name_only_benchmark_files_and_scripts_that_exist():
    pages = [ROOT / "README.md", *(ROOT / "docs").rglob("*.md")]
    named = {m for page in pages for m in re.findall(r"((?:benchmarks|scripts)/[\w/.-]+\.py)", page.read_text())}
    assert named, "the docs name no benchmark file"
    assert sorted(path for path in named if not (ROOT / path).is_file()) == []


def test_every_driver_script_has_a_parser_and_a_main(monkeypatch):
    for path in sorted((ROOT / "scripts" / "experiments").glob("*.py")):
        if path.name != "__init__.py":
            driver = _script(str(path.relative_to(ROOT)), monkeypatch)
            assert callable(driver.parser) and callable(driver.main), path.name
