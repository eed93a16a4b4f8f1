"""The README's table of what its configuration gives: every figure is the one its linked JSON holds.

The two rows link ``docs/data/quality_budget_mnist.json`` (the quality benchmark's ``main mnist``) and
``docs/data/readme_snippet.json`` (the README's snippet executed as written); this test recomputes each row from its
JSON, in the README's format, so that a rerun of either benchmark that changes a figure fails here until the README
says the new one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _json(name: str) -> dict:
    return json.loads((ROOT / "docs" / "data" / f"{name}.json").read_text())["results"]


def _row(record: dict, *, steps: tuple[int, int], bits: float) -> str:
    fid = record["fid"]["prior_readme_temperature"]
    floor = record["fid"]["floor"]
    recognised = 100 * record["recognised_readme_temperature"]
    return f"| {steps[0]:,} + {steps[1]:,} | **{fid / floor:.1f}×** ({fid:.2f}", f"| {recognised:.1f} % | {bits:.2f} |"


def test_the_readme_table_holds_the_figures_of_its_json():
    readme = (ROOT / "README.md").read_text()
    rows = {link: line for line in readme.splitlines() for link in re.findall(r"\(docs/data/(\w+)\.json\)", line)
            if line.startswith("| ")}  # fmt: skip
    budget = _json("quality_budget_mnist")
    budget["fid"]["floor"] = budget["floor"]["mean"]
    snippet = _json("readme_snippet")
    expected = {
        "quality_budget_mnist": _row(budget, steps=(budget["stage1"]["steps"], budget["curve"][-1]["step"]),
                                     bits=budget["bits_per_code"]["prior"]),
        "readme_snippet": _row(snippet, steps=(snippet["stage1"]["steps"], snippet["stage2"]["steps"]),
                               bits=snippet["stage2"]["bits_per_dim_last"]),
    }  # fmt: skip
    for name, parts in expected.items():
        assert name in rows, f"the README's table has no row linking docs/data/{name}.json"
        for part in parts:
            assert part in rows[name], f"README row of {name}.json: expected {part!r} in {rows[name]!r}"
