"""No import circle: the module-level imports of vqgen form an acyclic graph (lazy imports are not needed)."""

from __future__ import annotations

import ast
from pathlib import Path

import vqgen

ROOT = Path(vqgen.__file__).parent


def _module(path: Path) -> str:
    parts = ["vqgen", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """vqgen modules imported at module level (``if TYPE_CHECKING:`` blocks and function bodies excluded)."""
    name = _module(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{base}.{node.module}" if node.level and node.module else (node.module if not node.level else base)
            for alias in node.names:  # `from . import checks` imports the submodule, not the package's names
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    return {m for m in found if m in modules and m != name}


def test_module_level_imports_have_no_cycle():
    paths = {_module(p): p for p in ROOT.rglob("*.py")}
    graph = {name: _imports(path, set(paths)) for name, path in paths.items()}
    # A package's __init__ importing its own submodules is how packages work; a submodule importing back the
    # package's __init__ (to reach a sibling) is the circle we forbid.
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :] + [nxt]
                if not all(a.startswith(b + ".") or b.startswith(a + ".") for a, b in zip(cycle, cycle[1:])):
                    raise AssertionError("import circle: " + " -> ".join(cycle))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_interfaces_and_sampling_need_no_lazy_import():
    for name in ("interfaces.py", "sampling.py"):
        tree = ast.parse((ROOT / name).read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        lazy = [f.name for f in functions for n in ast.walk(f) if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not lazy, f"vqgen/{name} imports inside {lazy}"
