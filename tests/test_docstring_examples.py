"""Every ``>>>`` example of a docstring in ``vqgen/`` runs, and prints what it shows.

One test per module that holds an example, run by ``doctest`` (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``) in a
temporary working directory, on one torch thread, with torch's generator seeded and the registries restored
afterwards, since an example may write files (``save_pretrained("runs/...")``) or register a component. Examples
are kept small (tiny configs, the offline ``digits`` data, a fit of two steps) so that the whole run stays within
seconds; the codebook-usage warning of such short fits is silenced.

The examples of the real-data loaders (MNIST, Fashion-MNIST, CIFAR-10) read ``$VQGEN_DATA``, set here to
``../shared/data`` when it is unset and that folder exists; a docstring whose example finds its data missing
(``DatasetNotFoundError``) is skipped, as every real-data test is, and the test says which.
"""

from __future__ import annotations

import doctest
import importlib
import io
import os
from pathlib import Path

import pytest
import torch

from vqgen.data import DatasetNotFoundError
from vqgen.registry import KINDS, registry

ROOT = Path(__file__).resolve().parent.parent
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


def modules_with_examples() -> list[str]:
    """Dotted names of the modules under ``vqgen/`` whose source holds a ``>>>`` line."""
    found = []
    for path in sorted((ROOT / "vqgen").rglob("*.py")):
        if ">>>" in path.read_text():
            parts = path.relative_to(ROOT).with_suffix("").parts
            found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found


class _Runner(doctest.DocTestRunner):
    """A doctest runner that notes the examples that stopped on missing real data."""

    def __init__(self) -> None:
        super().__init__(optionflags=FLAGS)
        self.missing_data: list[str] = []

    def report_unexpected_exception(self, out, test, example, exc_info) -> None:
        if isinstance(exc_info[1], DatasetNotFoundError):
            self.missing_data.append(test.name)
        super().report_unexpected_exception(out, test, example, exc_info)


def run_examples(module, out: io.StringIO) -> tuple[doctest.TestResults, list[str]]:
    """Run the docstring examples of the objects defined in ``module``; the report of failures goes to ``out``.

    Returns the results of the docstrings that ran to their end with their data, and the names of those skipped
    because an example found its real data missing.
    """
    runner, failed, attempted, skipped = _Runner(), 0, 0, []
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__):
        report = io.StringIO()
        results = runner.run(test, out=report.write)
        if test.name in runner.missing_data:
            skipped.append(test.name)
            continue
        failed, attempted = failed + results.failed, attempted + results.attempted
        out.write(report.getvalue())
    return doctest.TestResults(failed, attempted), skipped


def test_failing_example_is_reported(tmp_path):
    module = type(doctest)("fake_module")
    source = 'def f():\n    """Add.\n\n    >>> 1 + 1\n    3\n    """\n'
    exec(compile(source, "fake_module.py", "exec"), module.__dict__)
    module.f.__module__ = "fake_module"
    out = io.StringIO()
    assert run_examples(module, out) == ((1, 1), [])
    assert "Expected:\n    3\nGot:\n    2" in out.getvalue()


def test_missing_data_skips_the_docstring():
    module = type(doctest)("fake_data_module")
    source = (
        "def needs_data():\n"
        '    """>>> from vqgen.data import load_dataset\n'
        '    >>> load_dataset("mnist", root="nowhere").image_shape\n'
        "    (1, 28, 28)\n"
        '    """\n'
        "def broken():\n"
        '    """>>> 1 / 0\n'
        "    0\n"
        '    """\n'
    )
    exec(compile(source, "fake_data_module.py", "exec"), module.__dict__)
    for function in (module.needs_data, module.broken):
        function.__module__ = "fake_data_module"
    out = io.StringIO()
    results, skipped = run_examples(module, out)
    assert skipped == ["fake_data_module.needs_data"]
    assert results == (1, 1) and "ZeroDivisionError" in out.getvalue()


def test_the_modules_are_found():
    assert "vqgen.registry" in modules_with_examples()


@pytest.mark.filterwarnings("ignore:only .* codes used:UserWarning")
@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name, tmp_path, monkeypatch, shared_data):
    monkeypatch.chdir(tmp_path)
    if "VQGEN_DATA" not in os.environ and shared_data is not None:
        monkeypatch.setenv("VQGEN_DATA", str(shared_data))
    for kind in KINDS:  # an example may register a component: for this test only
        monkeypatch.setattr(registry(kind), "_entries", dict(registry(kind)._entries))
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the examples' tiny models: a second thread only adds contention on a busy machine
    out = io.StringIO()
    try:
        results, skipped = run_examples(importlib.import_module(name), out)
    finally:
        torch.set_num_threads(threads)
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples of {name} failed:\n{out.getvalue()}"
    if skipped:
        pytest.skip(f"real data not found (set VQGEN_DATA): the examples of {', '.join(skipped)} did not run")
    assert results.attempted > 0, f"{name} has '>>>' in its source but no example that doctest finds"
