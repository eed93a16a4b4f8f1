"""What every benchmark and experiment driver shares: one ``machine()``, the JSON writer, data and output folders,
thread counts, the quality budgets' time scale, and training in resumable pieces.

``write_results(name, results)`` writes the figures of a run as ``<name>.json`` with the command, machine and date
into ``json_dir()``: ``$VQGEN_BENCH_JSON``, else ``$VQGEN_BENCH_OUT``, else ``<tmp>/vqgen-bench``, never into the
repository unless asked (``make bench-data`` sets ``VQGEN_BENCH_JSON=docs/data``; ``scripts/make_figures.py`` draws
the charts of ``docs/benchmarks/method.md`` from there). ``bench_dir(name)`` is where a benchmark keeps its models and
pictures (``$VQGEN_BENCH_OUT``, else ``<tmp>/vqgen-bench``). ``data_root(dataset)`` finds the real data.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]

#: A file every copy of the dataset has (its test images); the IDX datasets need no entry.
_TEST_FILE = {"cifar10-subset": "test_batch_first1000.bin"}


class MissingDataError(FileNotFoundError):
    """The real data set a benchmark needs is not there (``$VQGEN_DATA``, ``../shared/data``)."""


def machine() -> str:
    """The machine as every benchmark JSON and chart footer names it: ``"AMD EPYC 7B13, 2 CPUs, 2 torch threads,
    Linux, torch 2.5.1"`` (the torch threads at the time of the call)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, {platform.system()}, "
        f"torch {torch.__version__}"
    )


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages, rounded (``None`` where the system has none)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


def data_root(dataset: str) -> Path:
    """The folder holding ``dataset/``: ``$VQGEN_DATA``, else ``../shared/data`` beside the repository.

    Raises ``MissingDataError`` when neither holds it (see ``require_data`` for tests)."""
    test_file = _TEST_FILE.get(dataset, "t10k-images-idx3-ubyte.gz")
    for candidate in (os.environ.get("VQGEN_DATA"), ROOT.parent / "shared" / "data"):
        if candidate and (Path(candidate) / dataset / test_file).is_file():
            return Path(candidate)
    raise MissingDataError(f"real {dataset} not found: set VQGEN_DATA to a folder holding {dataset}/")


def require_data(dataset: str) -> Path:
    """``data_root(dataset)``, or skip the calling test when the data is absent."""
    import pytest

    try:
        return data_root(dataset)
    except MissingDataError as error:
        pytest.skip(str(error))


def output_root() -> Path:
    """``$VQGEN_BENCH_OUT``, else ``<tmp>/vqgen-bench``."""
    return Path(os.environ.get("VQGEN_BENCH_OUT") or Path(tempfile.gettempdir()) / "vqgen-bench")


def bench_dir(*parts: str) -> Path:
    """``output_root()/<parts>``, created."""
    folder = output_root().joinpath(*parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def json_dir() -> Path:
    """Where ``write_results`` writes: ``$VQGEN_BENCH_JSON``, else ``output_root()``."""
    root = os.environ.get("VQGEN_BENCH_JSON")
    return Path(root) if root else output_root()


def command() -> str:
    """The command line of this process as a user would type it (``pytest ...`` or ``python script ...``)."""
    program = Path(sys.argv[0])
    if program.name in ("pytest", "py.test") or (program.name == "__main__.py" and program.parent.name == "pytest"):
        return " ".join(["pytest", *sys.argv[1:]])
    return " ".join(["python", os.path.relpath(sys.argv[0]) if sys.argv[0] else "-c", *sys.argv[1:]])


def write_results(name: str, results: Any, *, folder: Path | None = None, **fields: Any) -> Path:
    """Write ``{"benchmark", "command", "machine", "load_average", "date", "vqgen_code", **fields, "results"}`` as
    ``<folder>/<name>.json`` (default folder: ``json_dir()``; ``fields`` may replace the command; ``vqgen_code`` is
    ``code_record()``, the code that was measured)."""
    folder = json_dir() if folder is None else folder
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": name,
        "command": command(),
        "machine": machine(),
        "load_average": load_average(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "vqgen_code": code_record(),
        **fields,
        "results": results,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def code_digest(source: str) -> str:
    """A short hash of a Python file's syntax tree without its docstrings: what it computes, not how it is worded
    (comments, docstrings and formatting leave it unchanged; any change of code changes it)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:12]


def code_digests(root: Path = ROOT) -> dict[str, str]:
    """``{"vqgen/....py": code_digest}`` for every module of the package under ``root``."""
    return {
        path.relative_to(root).as_posix(): code_digest(path.read_text())
        for path in sorted((root / "vqgen").rglob("*.py"))
    }


def code_record() -> dict[str, Any]:
    """What a benchmark JSON records of the code it measured: the version and ``code_digests()``, against which
    ``scripts/bench_summary.py`` tells a JSON that is older than the code it describes."""
    import vqgen

    return {"vqgen": vqgen.__version__, "digests": code_digests()}


@contextlib.contextmanager
def torch_threads(threads: int) -> Iterator[None]:
    """``torch.set_num_threads(threads)`` inside the block, the previous count restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def time_scale() -> float:
    """``$VQGEN_BENCH_TIME_SCALE`` (default 1): multiplies every time budget of the quality experiments, so that
    ``VQGEN_BENCH_TIME_SCALE=0.01`` checks one in a minute; the JSON records it."""
    value = os.environ.get("VQGEN_BENCH_TIME_SCALE", "1")
    try:
        scale = float(value)
    except ValueError:
        raise ValueError(f"VQGEN_BENCH_TIME_SCALE must be a positive number, got {value!r}") from None
    if not scale > 0:
        raise ValueError(f"VQGEN_BENCH_TIME_SCALE must be a positive number, got {value!r}")
    return scale


def image_limit() -> int | None:
    """``$VQGEN_BENCH_IMAGES`` (default: none): the quality experiments use only the first that many training and
    test images, so that ``VQGEN_BENCH_IMAGES=2000`` (with ``VQGEN_BENCH_TIME_SCALE``) checks one in a minute; the
    JSON records the sizes used."""
    value = os.environ.get("VQGEN_BENCH_IMAGES")
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"VQGEN_BENCH_IMAGES must be a positive whole number, got {value!r}")
    return int(value)


def first_images(data: Any, limit: int | None) -> Any:
    """The first ``limit`` images of the ``vqgen.data.ImageDataset`` ``data`` (all of it when ``limit`` is ``None``)."""
    from vqgen.data import ImageDataset

    if limit is None or limit >= len(data):
        return data
    return ImageDataset(data.images[:limit], data.labels[:limit], num_classes=data.num_classes,
                        class_names=data.class_names, name=data.name, split=data.split, source=data.source)  # fmt: skip


def scaled() -> str:
    """The environment that scaled this run down (``"VQGEN_BENCH_TIME_SCALE=0.01 "``), to prefix its command with;
    empty for a run at full size."""
    return "".join(f"{key}={os.environ[key]} " for key in ("VQGEN_BENCH_TIME_SCALE", "VQGEN_BENCH_IMAGES")
                   if os.environ.get(key) and os.environ[key] != "1")  # fmt: skip


def positive_number(text: str) -> str:
    """An ``argparse`` type for the drivers' ``MINUTES`` and scales: ``text`` if it is a positive number, kept as
    written (minutes name the JSON: ``..._<minutes>min.json``)."""
    import argparse

    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return text


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
            prior, data, max_seconds=at, seed=0, device="cpu", progress=False, checkpoint_dir=str(folder),
            save_states=True, keep="last", resume=resume, overwrite=resume is None, **options,
        )  # fmt: skip
        resume = str(folder)


def seconds(fn: Callable[[], object]) -> float:
    """Wall seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def step_seconds(step: Callable[[], object], rounds: int) -> dict[str, float]:
    """``{"median", "min"}`` seconds of ``rounds`` calls of ``step`` after one warm-up call."""
    step()
    times = [seconds(step) for _ in range(rounds)]
    return {"median": statistics.median(times), "min": min(times)}


def naive_value_seconds(prior: Any, batch: int, shape: tuple[int, int], count: int, generator: Any) -> list[float]:
    """Seconds of each of the first ``count`` values of the naive sampling loop (``NaiveStepper``, ``filter_logits``,
    ``draw``), timed one by one on ``batch`` grids of ``shape``: the naive sampler's cost, too long to run whole."""
    from vqgen.priors import NaiveStepper, draw, filter_logits

    height, width = shape
    x = torch.zeros(batch, prior.channels, height, width, dtype=torch.long)
    stepper = NaiveStepper(prior, None)
    order = [(i, j, c) for i in range(height) for j in range(width) for c in range(prior.channels)]
    times = []
    with torch.no_grad():
        for i, j, c in order[:count]:
            start = time.perf_counter()
            x[:, c, i, j] = draw(filter_logits(stepper.logits(x, i, j, c)), generator)
            times.append(time.perf_counter() - start)
    return times
