"""Every ``>>>`` example of a docstring in ``vqgen/`` runs, and prints what it shows.

One test per module that holds an example, run by ``doctest`` (``ELLIPSIS`` and ``NORMALIZE_WHITESPACE``) in a
temporary working directory, on one torch thread, with torch's generator seeded and the registries restored
afterwards, since an example may write files (``save_pretrained("runs/...")``) or register a component. Examples are kept small (tiny configs,
the offline ``digits`` data) so that the whole run stays within seconds.
"""

from __future__ import annotations

import doctest
import importlib
import io
from pathlib import Path

import pytest
import torch

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


def run_examples(module, out: io.StringIO) -> doctest.TestResults:
    """Run the docstring examples of the objects defined in ``module``; the report of failures goes to ``out``."""
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    for test in doctest.DocTestFinder(exclude_empty=True).find(module, module.__name__):
        runner.run(test, out=out.write)
    return runner.summarize(verbose=False)


def test_failing_example_is_reported(tmp_path):
    module = type(doctest)("fake_module")
    source = 'def f():\n    """Add.\n\n    >>> 1 + 1\n    3\n    """\n'
    exec(compile(source, "fake_module.py", "exec"), module.__dict__)
    module.f.__module__ = "fake_module"
    out = io.StringIO()
    assert run_examples(module, out) == (1, 1)
    assert "Expected:\n    3\nGot:\n    2" in out.getvalue()


def test_the_modules_are_found():
    assert "vqgen.registry" in modules_with_examples()


@pytest.mark.parametrize("name", modules_with_examples())
def test_docstring_examples_run(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for kind in KINDS:  # an example may register a component: for this test only
        monkeypatch.setattr(registry(kind), "_entries", dict(registry(kind)._entries))
    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the examples' tiny models: a second thread only adds contention on a busy machine
    out = io.StringIO()
    try:
        results = run_examples(importlib.import_module(name), out)
    finally:
        torch.set_num_threads(threads)
    assert results.attempted > 0, f"{name} has '>>>' in its source but no example that doctest finds"
    assert results.failed == 0, f"{results.failed} of {results.attempted} examples of {name} failed:\n{out.getvalue()}"
