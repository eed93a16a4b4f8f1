"""Shared benchmark helpers: a ``summary_line`` fixture, ``write_results``, ``data_root`` and ``bench_dir``.

Benchmarks report ratios measured in one run; ``summary_line("...")`` collects a line that appears in a
"benchmark summary" section after pytest-benchmark's table, without ``-s``. ``write_results(name, results)`` writes
the figures of a whole run as ``<name>.json`` with the command, machine and date, into ``$VQGEN_BENCH_JSON``
(default ``$VQGEN_BENCH_OUT``, else ``<tmp>/vqgen-bench``); ``make bench-data`` points it at ``docs/data/``, from
which ``scripts/make_figures.py`` draws the charts of ``docs/benchmarks.md``. ``data_root(dataset)`` finds the real
data (or skips), ``bench_dir(name)`` is where a benchmark keeps its models and pictures.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
import torch


def machine() -> str:
    """``"AMD EPYC, 2 torch threads, Linux, torch 2.x"``."""
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {torch.get_num_threads()} torch threads, {platform.system()}, torch {torch.__version__}"


#: A file every copy of the dataset has (its test images); the IDX datasets need no entry.
_TEST_FILE = {"cifar10-subset": "test_batch_first1000.bin"}


def data_root(dataset: str) -> Path:
    """The folder holding ``dataset/``: ``$VQGEN_DATA``, else ``../shared/data`` beside the repository (or skip)."""
    test_file = _TEST_FILE.get(dataset, "t10k-images-idx3-ubyte.gz")
    shared = Path(__file__).resolve().parents[2] / "shared" / "data"
    for candidate in (os.environ.get("VQGEN_DATA"), shared):
        if candidate and (Path(candidate) / dataset / test_file).is_file():
            return Path(candidate)
    pytest.skip(f"real {dataset} not found: set VQGEN_DATA to a folder holding {dataset}/")


def bench_dir(*parts: str) -> Path:
    """``$VQGEN_BENCH_OUT/<parts>`` (default ``<tmp>/vqgen-bench/<parts>``), created."""
    root = os.environ.get("VQGEN_BENCH_OUT") or Path(tempfile.gettempdir()) / "vqgen-bench"
    folder = Path(root, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def fit_in_pieces(prior: Any, data: Any, seconds: float, stops: tuple[float, ...], folder: Path,
                  **options: Any) -> Iterator[Any]:  # fmt: skip
    """``fit_prior`` for ``seconds`` of training time, stopped at every time of ``stops`` below it and resumed from
    its saved state in ``folder``, so that the pieces are one run: yields the history at each stop (and at the end),
    with ``prior`` holding that moment's weights. ``options`` go to ``fit_prior`` (``cond``, ``ema_decay``, ...).
    The first piece replaces a run an earlier benchmark left in ``folder`` (``overwrite``)."""
    from vqgen.training.prior import fit_prior

    resume = None
    for at in [t for t in stops if t < seconds] + [seconds]:
        yield fit_prior(
            prior, data, epochs=10_000, max_seconds=at, seed=0, device="cpu", progress=False,
            checkpoint_dir=str(folder), save_states=True, keep="last", resume=resume, overwrite=resume is None,
            **options,
        )  # fmt: skip
        resume = str(folder)


def write_results(name: str, results: Any, **fields: Any) -> Path:
    """Write ``{"benchmark", "command", "machine", "load_average", "date", **fields, "results"}`` as ``<name>.json``."""
    root = os.environ.get("VQGEN_BENCH_JSON") or os.environ.get("VQGEN_BENCH_OUT")
    folder = Path(root or Path(tempfile.gettempdir()) / "vqgen-bench")
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "command": " ".join(["pytest", *sys.argv[1:]]),
        "machine": machine(),
        "load_average": [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **fields,
        "results": results,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


_SUMMARY = pytest.StashKey[list]()


@pytest.fixture
def summary_line(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """Add one line to the end-of-run benchmark summary."""
    return request.config.stash.setdefault(_SUMMARY, []).append


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:
    lines = config.stash.get(_SUMMARY, [])
    if lines:
        terminalreporter.section("benchmark summary")
        for line in lines:
            terminalreporter.write_line(line)
