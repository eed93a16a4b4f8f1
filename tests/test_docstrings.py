"""Docstring rules: mkdocstrings cross-references, never Sphinx roles; and a complete reference for every public name.

mkdocstrings renders a Sphinx role such as ``:class:`Foo``` as literal text, so a role that creeps back in is a dead
link in the API reference. The first test scans the source text of every ``.py`` file under ``vqgen/``.

The second reads the package the way the reference renders it (griffe, Google style) and holds every public name to
one standard. The public names are what ``import vqgen`` exports, and what each module that a ``docs/reference`` page
renders outside its "Internals" section exports (its ``__all__``, or the page's explicit ``members:`` list), with the
public methods and properties of the public classes. Each must have:

- ``Args:`` naming every argument, when the callable takes any (for a class, its ``__init__``'s; a dataclass may
  name its fields under ``Attributes:``);
- ``Returns:`` (or ``Yields:``) when it returns something; a property's description is its ``Returns``;
- ``Raises:`` naming each exception its own body raises (a ``raise`` statement in it, or a call of a
  ``vqgen.checks.check_*`` helper, which raise ``TypeError``/``ValueError``); for a class, its ``__init__`` and
  ``__post_init__``;
- an example: an ``Examples:`` section with ``>>>`` lines (run by ``tests/test_docstring_examples.py``), or, for a
  class whose use takes several lines, a fenced code block.

Special methods (``__len__``, ``__repr__``, ...) need a docstring only; module constants need a docstring.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|const|ref):`")
DIRECTIVE = re.compile(r"^::: (?P<path>[\w.]+)[ \t]*\n(?P<options>(?:[ \t]+\S.*\n?)*)", re.M)
INTERNALS = re.compile(r"^## Internals\b", re.M)
CHECKS = "vqgen.checks"
SOME_EXCEPTION = "an exception"  # raised, but of a type the source does not name: any Raises entry documents it


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


# ---------------------------------------------------------------------------------------------------------------------
# Which names are public: the reference pages say.


@dataclass(frozen=True)
class Directive:
    """One ``::: module`` of a reference page, outside its "Internals" section."""

    page: str
    path: str
    members: tuple[str, ...] | None  # None: every public member; (): none (``members: false``)


def reference_directives(text: str, page: str = "page") -> list[Directive]:
    """The ``::: path`` directives of a reference page that come before its ``## Internals`` heading."""
    cut = INTERNALS.search(text)
    found = []
    for match in DIRECTIVE.finditer(text[: cut.start()] if cut else text):
        options = match.group("options")
        members: tuple[str, ...] | None = None
        if re.search(r"^\s*members:\s*false\s*$", options, re.M):
            members = ()
        elif inline := re.search(r"^\s*members:\s*\[(.*?)\]", options, re.M):
            members = tuple(name.strip() for name in inline.group(1).split(",") if name.strip())
        elif re.search(r"^\s*members:\s*$", options, re.M):
            members = tuple(re.findall(r"^\s*-\s*(\S+)\s*$", options, re.M))
        found.append(Directive(page, match.group("path"), members))
    return found


def test_reference_directives():
    text = (
        "# T\n\n::: a.b\n\n::: a.c\n    options:\n      members: false\n\n::: a.d\n    options:\n"
        "      members: [X, y]\n\n::: a.e\n    options:\n      show_root_heading: false\n      members:\n"
        "        - P\n        - q\n\n## Internals\n\n::: a.hidden\n"
    )
    assert reference_directives(text) == [
        Directive("page", "a.b", None),
        Directive("page", "a.c", ()),
        Directive("page", "a.d", ("X", "y")),
        Directive("page", "a.e", ("P", "q")),
    ]


def _load_package():
    griffe = pytest.importorskip("griffe", reason="the reference checker reads the package as mkdocstrings does")
    return griffe.load("vqgen", search_paths=[str(ROOT)], docstring_parser="google", resolve_aliases=True)


def _target(obj):
    return obj.final_target if obj.is_alias else obj


def public_names(package) -> dict[str, object]:
    """``{qualified name: griffe object}`` of every public name (see the module docstring), aliases resolved."""
    found: dict[str, object] = {}

    def add(qualified: str, obj) -> None:
        obj = _target(obj)
        if obj.is_module or obj.path in {_target(o).path for o in found.values()}:
            return
        found[qualified] = obj
        if obj.is_class:
            for name, member in obj.members.items():
                if member.is_alias or member.inherited or name == "__init__" or not member.is_public:
                    continue
                if member.is_attribute and "property" not in member.labels:
                    continue  # fields and instance attributes: the class's Args or Attributes name them
                add(f"{qualified}.{name}", member)

    def add_module(path: str, members: tuple[str, ...] | None) -> None:
        module = package if path == "vqgen" else package[path.removeprefix("vqgen.")]
        if members is not None:  # the page's own list; ``members: false`` renders the module's docstring only
            names = list(members)
        elif module.exports:
            names = [str(name) for name in module.exports]
        else:
            names = [name for name, obj in module.members.items() if obj.is_public and not obj.is_module]
        for name in names:
            obj = module.members[name]
            if not (_target(obj).is_module or obj.is_special):
                add(f"{path}.{name}", obj)

    add_module("vqgen", None)
    for page in sorted((ROOT / "docs" / "reference").glob("*.md")):
        for directive in reference_directives(page.read_text(), page.name):
            add_module(directive.path, directive.members)
    return found


# ---------------------------------------------------------------------------------------------------------------------
# What each name's docstring must hold.


def _sections(obj) -> dict[str, list]:
    """``{section kind: [section, ...]}`` of ``obj``'s Google-style docstring."""
    found: dict[str, list] = {}
    if obj.docstring is not None:
        for section in obj.docstring.parse("google"):
            kind = str(section.kind.value)
            if kind == "admonition" and section.title and section.title.lower().startswith("example"):
                kind = "examples"
            found.setdefault(kind, []).append(section)
    return found


def _documented_names(sections: dict[str, list], *kinds: str) -> set[str]:
    return {item.name.lstrip("*") for kind in kinds for section in sections.get(kind, []) for item in section.value}


def _own_body(function_source: str) -> list[ast.AST]:
    """The nodes of a function's own body: nested functions, lambdas and classes left out."""
    tree = ast.parse(textwrap.dedent(function_source))
    definition = tree.body[0]
    nodes, stack = [], list(definition.body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            continue
        nodes.append(node)
        stack.extend(ast.iter_child_nodes(node))
    return nodes


def _name_of(node: ast.AST) -> str | None:
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def raised_exceptions(function_source: str, imports: dict[str, str], checks: dict[str, set[str]]) -> set[str]:
    """Names of the exceptions a function's own body raises (``raise X(...)``, ``vqgen.checks.check_*`` calls).

    ``imports`` maps the module's imported names to their full paths (``{"checks": "vqgen.checks", ...}``);
    ``checks`` maps each ``vqgen.checks`` function to what it raises. A bare ``raise`` (re-raising the error being
    handled) and ``raise error`` (a variable) are not the function's own; ``raise make_error(...)`` is
    [`SOME_EXCEPTION`][SOME_EXCEPTION].
    """
    raised: set[str] = set()
    for node in _own_body(function_source):
        if isinstance(node, ast.Raise) and node.exc is not None:
            name = _name_of(node.exc)
            if name and name[0].isupper():
                raised.add(name)
            elif isinstance(node.exc, ast.Call):  # an exception made by a function: ``raise write_error(...)``
                raised.add(SOME_EXCEPTION)
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
                if imports.get(func.value.id) == CHECKS:
                    raised |= checks.get(func.attr, set())
            elif isinstance(func, ast.Name) and imports.get(func.id, "").startswith(CHECKS + "."):
                raised |= checks.get(imports[func.id].rsplit(".", 1)[-1], set())
    return raised


def check_raises(package) -> dict[str, set[str]]:
    """``{name: exceptions}`` of the functions of ``vqgen.checks``, through the checks they call in turn."""
    module = package["checks"]
    functions = {name: obj for name, obj in module.members.items() if not obj.is_alias and obj.is_function}
    own = {name: raised_exceptions(obj.source, {}, {}) for name, obj in functions.items()}
    calls = {
        name: {_name_of(node) for node in _own_body(obj.source) if isinstance(node, ast.Call)} & set(functions)
        for name, obj in functions.items()
    }
    raises = {name: set(found) for name, found in own.items()}
    changed = True
    while changed:
        changed = False
        for name in functions:
            more = set().union(*(raises[called] for called in calls[name])) - raises[name]
            if more:
                raises[name] |= more
                changed = True
    return raises


def returns_value(function_source: str) -> bool:
    """Whether a function's own body returns a value (``return x`` with ``x`` not ``None``) or yields."""
    for node in _own_body(function_source):
        if isinstance(node, (ast.Yield, ast.YieldFrom)):
            return True
        if isinstance(node, ast.Return) and node.value is not None:
            if not (isinstance(node.value, ast.Constant) and node.value.value is None):
                return True
    return False


def test_raised_exceptions_and_returns():
    source = (
        "def f(x):\n"
        "    checks.check_tensor(x, name='x')\n"
        "    if x is None:\n"
        "        raise KeyError('x')\n"
        "    try:\n"
        "        pass\n"
        "    except OSError as error:\n"
        "        raise\n"
        "    if x == 1:\n"
        "        raise make_error(x)\n"
        "    def inner():\n"
        "        raise OSError('inner')\n"
        "        return 1\n"
        "    return None\n"
    )
    checks = {"check_tensor": {"TypeError", "ValueError"}, "check_finite": {"ValueError"}}
    everything = {"KeyError", "TypeError", "ValueError", SOME_EXCEPTION}
    assert raised_exceptions(source, {"checks": CHECKS}, checks) == everything
    assert raised_exceptions(source, {"checks": "other.checks"}, checks) == {"KeyError", SOME_EXCEPTION}
    imports = {"check_finite": CHECKS + ".check_finite"}
    assert raised_exceptions("def f(x):\n    check_finite(x, name='x')\n", imports, checks) == {"ValueError"}
    assert not returns_value(source)
    assert returns_value("def f():\n    yield 1\n")
    assert returns_value("def f(x):\n    if x:\n        return\n    return x + 1\n")


def _has_example(obj, sections: dict[str, list]) -> bool:
    if any(">>>" in str(value) for section in sections.get("examples", []) for value in _flatten(section.value)):
        return True
    return obj.is_class and "```" in (obj.docstring.value if obj.docstring else "")


def _flatten(value) -> list:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _flatten(item)]
    return [value]


def _imports(obj) -> dict[str, str]:
    return dict(obj.module.imports)


def _arguments(function) -> list[str]:
    names = [p.name for p in function.parameters]
    if function.parent is not None and function.parent.is_class and "staticmethod" not in function.labels:
        names = names[1:]  # self / cls
    return names


def missing_sections(obj, checks: dict[str, set[str]]) -> list[str]:
    """What ``obj``'s docstring lacks under the rules of the module docstring (empty when complete)."""
    if obj.docstring is None or not obj.docstring.value.strip():
        return ["a docstring"]
    sections, missing = _sections(obj), []
    if obj.is_attribute and "property" not in obj.labels or obj.is_type_alias:
        return []
    if obj.is_function and obj.is_special:
        return []
    if obj.is_class:
        init = obj.members.get("__init__")
        init = init if init is not None and not init.is_alias else None
        if init is not None and init.docstring is not None:
            for kind, found in _sections(init).items():
                sections.setdefault(kind, []).extend(found)
        arguments = _arguments(init) if init is not None else []
        if "dataclass" in obj.labels:
            arguments = [p.name for p in obj.parameters][1:]
        documented = _documented_names(sections, "parameters", "other parameters", "attributes")
        if undocumented := [name for name in arguments if name not in documented]:
            missing.append(f"Args: {', '.join(undocumented)}")
        raised: set[str] = set()
        for name in ("__init__", "__post_init__"):
            method = obj.members.get(name)
            if method is not None and not method.is_alias and method.source:
                raised |= raised_exceptions(method.source, _imports(obj), checks)
        if undocumented := sorted(raised - _documented_names_raises(sections)):
            missing.append(f"Raises: {', '.join(undocumented)}")
        if not _has_example(obj, sections):
            missing.append("Examples")
        return missing
    if "property" in obj.labels:  # its description says what it returns
        raised = raised_exceptions(obj.source, _imports(obj), checks) if obj.source else set()
        if undocumented := sorted(raised - _documented_names_raises(sections)):
            missing.append(f"Raises: {', '.join(undocumented)}")
        if not _has_example(obj, sections):
            missing.append("Examples")
        return missing
    if obj.is_function:
        documented = _documented_names(sections, "parameters", "other parameters")
        if undocumented := [name for name in _arguments(obj) if name not in documented]:
            missing.append(f"Args: {', '.join(undocumented)}")
        annotation = str(obj.returns) if obj.returns is not None else None
        returns = annotation not in {None, "None", "NoReturn", "Never"} or (
            annotation is None and obj.source and returns_value(obj.source)
        )
        if returns and not (sections.get("returns") or sections.get("yields")):
            missing.append("Returns")
        raised = raised_exceptions(obj.source, _imports(obj), checks) if obj.source else set()
        if undocumented := sorted(raised - _documented_names_raises(sections)):
            missing.append(f"Raises: {', '.join(undocumented)}")
        if not _has_example(obj, sections):
            missing.append("Examples")
    return missing


def _documented_names_raises(sections: dict[str, list]) -> set[str]:
    """The exception names of the ``Raises:`` sections; any entry also covers [`SOME_EXCEPTION`][SOME_EXCEPTION]."""
    items = [item for section in sections.get("raises", []) for item in section.value]
    names = {str(item.annotation).rsplit(".", 1)[-1] for item in items}
    return names | {SOME_EXCEPTION} if names else names


SAMPLE = '''
from . import checks


def documented(x: int, *, scale: int = 2) -> int:
    """Scale a number.

    Args:
        x: a number.
        scale: the factor.

    Returns:
        ``x * scale``.

    Raises:
        ValueError: if ``x`` is negative.

    Examples:
        >>> documented(2)
        4
    """
    if x < 0:
        raise ValueError("x must be >= 0")
    return x * scale


def bare(x, y=1):
    """Add."""
    checks.check_finite(x, name="x")
    return x + y


class Thing:
    """A thing.

    ```python
    thing = Thing(3)
    ```
    """

    def __init__(self, size: int) -> None:
        if size < 0:
            raise ValueError("size")

    @property
    def size(self) -> int:
        """The size."""
        return 1

    def __len__(self) -> int:
        return 1
'''


def test_missing_sections_of_a_sample_module():
    griffe = pytest.importorskip("griffe")
    checks = {"check_finite": {"ValueError"}}
    with griffe.temporary_visited_module(SAMPLE, module_name="sample", docstring_parser="google") as module:
        module.imports["checks"] = CHECKS
        found = {path: missing_sections(module[path], checks) for path in ("documented", "bare", "Thing", "Thing.size")}
        special = missing_sections(module["Thing.__len__"], checks)
    assert found == {
        "documented": [],
        "bare": ["Args: x, y", "Returns", "Raises: ValueError", "Examples"],
        "Thing": ["Args: size", "Raises: ValueError"],  # a code block is a class's example
        "Thing.size": ["Examples"],  # its description is its Returns
    }
    assert special == ["a docstring"]


def test_every_public_name_has_args_returns_raises_and_an_example():
    package = _load_package()
    checks = check_raises(package)
    assert checks["check_image_size"] == {"ValueError"} and checks["check_images"] == {"TypeError", "ValueError"}
    found = {name: missing_sections(obj, checks) for name, obj in public_names(package).items()}
    incomplete = {name: missing for name, missing in found.items() if missing}
    report = "\n".join(f"{name}: {'; '.join(missing)}" for name, missing in sorted(incomplete.items()))
    assert not incomplete, f"{len(incomplete)} of {len(found)} public names lack sections of their docstring:\n{report}"
