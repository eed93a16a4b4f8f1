"""The Python code blocks of README.md and docs/*.md run as written, so that they cannot rot.

Each page's ```` ```python ```` blocks run in order in one namespace (a later block may use an earlier one's names), in
a temporary working directory. The default run shrinks the work, not the code: datasets are cut to their first
``SMALL`` images, never downloaded (offline, the README falls back to ``digits`` as its text says), and
``TwoStageModel.fit`` stops each stage after ``STEPS`` steps. The ``slow`` run uses the whole datasets.

Registrations a page makes (the plugin guide registers a prior) are undone after its test. A block preceded by
``<!-- docs-test: skip -->`` is not run (e.g. a fragment with ``...`` or one that registers a
plugin globally); say why next to the marker.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import vqgen
from vqgen import TwoStageModel
from vqgen.registry import KINDS, registry

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"(?P<skip><!-- docs-test: skip[^>]*-->\s*\n)?^```python\n(?P<code>.*?)^```", re.S | re.M)
SMALL = 128
STEPS = 2


def python_blocks(text: str) -> list[tuple[int, str, bool]]:
    """``(line number, code, skipped)`` of each ```` ```python ```` block of a Markdown page."""
    return [
        (text.count("\n", 0, m.start("code")) + 1, m.group("code"), m.group("skip") is not None)
        for m in BLOCK.finditer(text)
    ]


def test_block_extraction():
    text = "a\n```python\nx = 1\n```\n<!-- docs-test: skip (a fragment) -->\n```python\n...\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == [(3, "x = 1\n", False), (7, "...\n", True)]


def _shrink(monkeypatch, *, small: int | None, steps: int) -> None:
    real_load, real_fit = vqgen.data.load_dataset, TwoStageModel.fit

    def load_dataset(*args, **kwargs):
        kwargs["download"] = False  # tests never touch the network; a missing dataset raises DatasetNotFoundError
        data = real_load(*args, **kwargs)
        if small is None or len(data.images) <= small:
            return data
        return vqgen.data.from_arrays(data.images[:small], data.labels[:small], class_names=data.class_names)

    def fit(self, *args, **kwargs):
        for stage in ("stage1", "stage2"):
            kwargs[stage] = {**dict(kwargs.get(stage) or {}), "max_steps": steps, "progress": False}
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(vqgen.data, "load_dataset", load_dataset)
    monkeypatch.setattr(TwoStageModel, "fit", fit)


def _run_page(page: Path, tmp_path: Path, monkeypatch) -> int:
    blocks = python_blocks(page.read_text())
    monkeypatch.chdir(tmp_path)
    for kind in KINDS:  # a page may register a plugin (the plugin guide does): for this test only
        monkeypatch.setattr(registry(kind), "_entries", dict(registry(kind)._entries))
    namespace: dict = {"__name__": f"docs_example_{page.stem}"}
    ran = 0
    for line, code, skipped in blocks:
        if skipped:
            continue
        try:
            exec(compile(code, f"{page.relative_to(ROOT)}:{line}", "exec"), namespace)
        except vqgen.data.DatasetNotFoundError as error:  # real data absent: skip cleanly, as every real-data test
            pytest.skip(f"the Python block at {page.relative_to(ROOT)}:{line} needs data that is not here: {error}")
        except Exception as error:
            raise AssertionError(f"the Python block at {page.relative_to(ROOT)}:{line} failed: {error!r}") from error
        ran += 1
    return ran


@pytest.mark.parametrize("page", [p for p in DOCS if python_blocks(p.read_text())], ids=lambda p: p.name)
def test_page_examples_run(page, tmp_path, monkeypatch):
    _shrink(monkeypatch, small=SMALL, steps=STEPS)
    assert _run_page(page, tmp_path, monkeypatch) > 0


def test_readme_writes_what_it_says(tmp_path, monkeypatch):
    """The README's snippet leaves a labelled PNG and a loadable two-stage model behind."""
    _shrink(monkeypatch, small=SMALL, steps=STEPS)
    assert _run_page(README, tmp_path, monkeypatch) == 1
    assert (tmp_path / "samples.png").stat().st_size > 0
    assert isinstance(vqgen.from_pretrained(tmp_path / "runs" / "mnist"), TwoStageModel)


# The guides and the README on whole datasets (their fits are cut to 20 steps); the reference pages' blocks call
# fit_vqvae/fit_prior for whole epochs, which the default run already checks on small data.
GUIDES = [page for page in DOCS if "reference" not in page.parts]


@pytest.mark.slow
@pytest.mark.parametrize("page", [README, *GUIDES], ids=lambda p: p.name)
def test_page_examples_run_on_the_whole_datasets(page, tmp_path, monkeypatch):
    _shrink(monkeypatch, small=None, steps=20)
    if not python_blocks(page.read_text()):
        pytest.skip("no Python blocks")
    assert _run_page(page, tmp_path, monkeypatch) > 0
