"""The README's own snippet as a benchmark: its first ```` ```python ```` block, executed as written on the real MNIST.

A quality benchmark (it takes the snippet's 20 CPU-minutes and more), skipped unless ``--quality`` is given::

    VQGEN_DATA=/work/shared/data VQGEN_BENCH_JSON=docs/data \\
        pytest benchmarks/quality/test_readme_snippet.py --benchmark-only --quality -s
    VQGEN_DATA=/work/shared/data python scripts/experiments/readme_snippet.py       # the same, as a script

The block runs in a temporary working directory (it writes ``samples.png`` and ``runs/mnist`` there) with
``$VQGEN_DATA`` pointing at the real data, in one namespace, unchanged but for one knob:
``VQGEN_README_TIME_SCALE=0.01`` multiplies the two ``max_seconds`` of the preset the snippet trains (only those, while
it runs), to check this benchmark in a minute or two instead of 20. Recorded: the wall time of ``model.fit`` and of the
whole snippet; from the histories ``model.fit`` returns, the held-out reconstruction MSE (stage 1) and bits per code
(stage 2) of the last epoch and the best; then the snippet's ``model`` is scored as ``test_budget.py`` scores
the README's configuration (same classifier, floor, FID of ``N`` samples at the README's temperature, recognised
fraction, reconstruction FID, the independent baseline's FID and the targets), written as ``readme_snippet.json`` to
``$VQGEN_BENCH_JSON`` (see ``benchmarks.common.write_results``). What the snippet wrote (``runs/mnist`` and
``samples.png``) is kept in ``bench_dir("readme")`` (``$VQGEN_BENCH_OUT/readme/model``, ``.../samples.png``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import ROOT, bench_dir, data_root, require_data, write_results
from benchmarks.quality.test_budget import (
    README_TEMPERATURE,
    THREADS,
    N,
    Scorer,
    classifier_for,
    floor,
    load,
    sample_metrics,
    targets,
)

README = ROOT / "README.md"
BLOCK = re.compile(r"^```python\n(?P<code>.*?)^```", re.S | re.M)
PRESET = re.compile(r'presets\.get\("(?P<name>[^"]+)"\)')
SCALE = "VQGEN_README_TIME_SCALE"
pytestmark = pytest.mark.threads(THREADS)


def readme_snippet() -> tuple[int, str, str]:
    """``(line, code, preset)`` of the README's first Python block and the name of the preset it trains."""
    text = README.read_text()
    match = BLOCK.search(text)
    code = match.group("code")
    (preset,) = set(PRESET.findall(code))
    return text.count("\n", 0, match.start("code")) + 1, code, preset


@contextlib.contextmanager
def scaled_budget(name: str, scale: float) -> Iterator[None]:
    """The preset ``name`` with its two ``max_seconds`` multiplied by ``scale`` while the block runs."""
    from vqgen import presets

    original = presets.get(name)
    budget = original.budget
    for stage in budget.values():
        stage["max_seconds"] *= scale
    presets._PRESETS[name] = dataclasses.replace(original, **budget)
    try:
        yield
    finally:
        presets._PRESETS[name] = original


def run_snippet(scale: float = 1.0) -> dict[str, Any]:
    """Execute the snippet in a temporary folder, timing it and its ``model.fit``; score what it trained."""
    from vqgen import TwoStageModel
    from vqgen.evaluation import baseline_priors
    from vqgen.images import to_uint8

    data, previous_data = str(data_root("mnist")), os.environ.get("VQGEN_DATA")
    line, code, preset = readme_snippet()
    real_fit, fits = TwoStageModel.fit, []

    def timed_fit(self, *args, **kwargs):
        started = time.perf_counter()
        histories = real_fit(self, *args, **kwargs)
        fits.append({"seconds": time.perf_counter() - started, "histories": histories})
        return histories

    namespace: dict[str, Any] = {"__name__": "readme_snippet"}
    cwd = os.getcwd()
    TwoStageModel.fit = timed_fit
    os.environ["VQGEN_DATA"] = data  # the snippet loads MNIST from $VQGEN_DATA
    try:
        with tempfile.TemporaryDirectory(prefix="vqgen-readme-") as folder:
            os.chdir(folder)
            started = time.perf_counter()
            with scaled_budget(preset, scale):
                exec(compile(code, f"README.md:{line}", "exec"), namespace)  # noqa: S102  (the project's own README)
            snippet_seconds = time.perf_counter() - started
            wrote = {name: Path(folder, name).exists() for name in ("samples.png", "runs/mnist/config.json")}
            kept = bench_dir("readme")  # what the snippet wrote, kept for the README's picture (make_figures --model)
            shutil.copytree(Path(folder, "runs", "mnist"), kept / "model", dirs_exist_ok=True)
            shutil.copy(Path(folder, "samples.png"), kept / "samples.png")
            os.chdir(cwd)
    finally:
        os.chdir(cwd)
        TwoStageModel.fit = real_fit
        if previous_data is None:
            del os.environ["VQGEN_DATA"]
        else:
            os.environ["VQGEN_DATA"] = previous_data
    (fit,) = fits
    stage1, stage2 = fit["histories"]["stage1"], fit["histories"]["stage2"]
    record: dict[str, Any] = {
        "time_scale": scale, "snippet_seconds": snippet_seconds, "fit_seconds": fit["seconds"], "wrote": wrote,
        "stage1": _stage(stage1, "reconstruction_mse"), "stage2": _stage(stage2, "bits_per_dim"),
        "load_average_start": list(os.getloadavg()),
    }  # fmt: skip
    print(f"README snippet: {record}", flush=True)

    model = namespace["model"].eval()
    train, test = load("mnist")
    classifier, classifier_info = classifier_for("mnist", train, test)
    scorer = Scorer(classifier, test.images)
    record["classifier"] = classifier_info
    record["floor"], draws = floor(scorer, train)
    readme = sample_metrics(model, scorer, temperature=README_TEMPERATURE)
    independent = baseline_priors(model, train)["independent"]
    record["fid"] = {
        "floor": record["floor"]["mean"], "prior_readme_temperature": readme["fid"],
        "reconstructions": scorer.fid(to_uint8(model.reconstruct(train.images[draws[0]]))),
        "independent": sample_metrics(model, scorer, prior=independent)["fid"],
    }  # fmt: skip
    record["recognised_readme_temperature"] = readme["recognised"]
    record["targets"] = targets(
        record["floor"]["mean"], readme, record["fid"]["reconstructions"], record["fid"]["independent"]
    )
    record["load_average_end"] = list(os.getloadavg())
    print(f"README snippet scored: {record['fid']}, targets {record['targets']}", flush=True)
    budget = {"readme_line": line, "preset": preset, "time_scale": scale, "n": N,
              "readme_temperature": README_TEMPERATURE, "threads": THREADS}  # fmt: skip
    write_results("readme_snippet", record, budget=budget, code=code)
    return record


def _stage(history: list[dict], key: str) -> dict[str, Any]:
    """A stage's held-out ``key`` at its last epoch and its best, with the training it took."""
    last = history[-1]
    values = [r["eval"][key] for r in history if key in r.get("eval", {})]
    return {f"{key}_last": last["eval"][key], f"{key}_best": min(values), "train_seconds": last["train_seconds"],
            "steps": last["step"], "epochs": last["epoch"]}  # fmt: skip


def test_readme_snippet(benchmark):
    """The README's snippet on MNIST: the prior beats the independent baseline (figures and targets in the JSON)."""
    require_data("mnist")
    record: dict = {}
    scale = float(os.environ.get(SCALE, "1"))
    benchmark.pedantic(lambda: record.update(run_snippet(scale)), rounds=1, iterations=1)
    assert all(record["wrote"].values()), record["wrote"]
    assert record["stage2"]["bits_per_dim_last"] < 9  # log2(512): better than uniform codes
