"""Docstrings use mkdocstrings/autorefs cross-references (``[`Name`][vqgen.module.Name]``), never Sphinx roles.

mkdocstrings renders a Sphinx role such as ``:class:`Foo``` as literal text, so a role that creeps back in is a dead
link in the API reference. This test scans the source text of every ``.py`` file under ``vqgen/``.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const|ref):`")


def sphinx_roles(text: str) -> list[tuple[int, str]]:
    """``(line number, line)`` of each line of ``text`` that holds a Sphinx role."""
    return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if ROLE.search(line)]


def test_role_detection():
    text = 'x = 1\n"""See :class:`vqgen.TwoStageModel` and :py:meth:`~a.b`."""\n"""See [`A`][vqgen.A]."""\n'
    assert [n for n, _ in sphinx_roles(text)] == [2]


def test_no_sphinx_roles_in_docstrings():
    found = [
        f"{path.relative_to(ROOT)}:{n}: {line}"
        for path in sorted((ROOT / "vqgen").rglob("*.py"))
        for n, line in sphinx_roles(path.read_text())
    ]
    assert not found, "Sphinx roles render as literal text; write [`Name`][vqgen.module.Name]:\n" + "\n".join(found)
