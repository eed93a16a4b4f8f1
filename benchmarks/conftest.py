"""The benchmarks' pytest options, markers and fixtures.

``benchmarks/speed/`` (seconds to minutes each) is what ``pytest benchmarks/ --benchmark-only`` runs;
``benchmarks/quality/`` (minutes to hours, most on real data) is skipped unless ``--quality`` is given. Options:

- ``--quality``: run the quality benchmarks too;
- ``--benchmark-goals``: assert the machine-dependent goals (speed ratios, FLOP utilisation). Without it they are
  measured, printed in the summary and written to the JSON (``goals``), but a slow or busy machine fails nothing.

Markers and fixtures:

- ``@pytest.mark.threads(n)`` (on a test, or ``pytestmark`` on a module): the ``torch_threads`` fixture sets torch's
  intra-op thread count to ``n`` for the test and restores it after. Every test is checked: one that leaves the count
  changed errors at teardown (``set_num_threads`` directly, or in a fixture wider than a test, leaks into later tests);
- ``summary_line("...")`` adds a line to a "benchmark summary" section after pytest-benchmark's table, without ``-s``;
- ``goals`` records each goal (``goals.check(text, met)``), reports it, and ``goals.verify()`` asserts them under
  ``--benchmark-goals``;
- ``figures``: a dict per module of the figures its tests measured in this run; a test that needs a figure no earlier
  test measured measures it itself, so that every test passes alone and in any order.

Helpers shared with the experiment drivers (``machine``, ``write_results``, ``bench_dir``, ...) live in
``benchmarks/common.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

QUALITY = Path(__file__).resolve().parent / "quality"
_SUMMARY = pytest.StashKey[list]()
_THREADS_BEFORE = pytest.StashKey[int]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("vqgen benchmarks")
    group.addoption("--quality", action="store_true", help="also run the long quality benchmarks (benchmarks/quality/)")
    group.addoption(
        "--benchmark-goals", action="store_true",
        help="assert the machine-dependent goals (speed ratios, FLOP utilisation) instead of only reporting them",
    )  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "quality: a long quality benchmark (benchmarks/quality/), run with --quality")
    config.addinivalue_line("markers", "threads(n): run the test with n torch threads, restored after it")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="quality benchmark (minutes to hours): run with --quality")
    for item in items:
        if QUALITY in item.path.parents:
            item.add_marker(pytest.mark.quality)
            if not config.getoption("--quality"):
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def torch_threads(request: pytest.FixtureRequest) -> Iterator[None]:
    """torch's thread count set to ``n`` of the test's ``threads(n)`` marker for the test, restored after it."""
    marker = request.node.get_closest_marker("threads")
    if marker is None:
        yield
        return
    (threads,) = marker.args
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_THREADS_BEFORE] = torch.get_num_threads()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Error the test after which torch's thread count differs from before its set-up (and put the count back)."""
    result = yield
    before, now = item.stash.get(_THREADS_BEFORE, None), torch.get_num_threads()
    if before is not None and now != before:
        torch.set_num_threads(before)
        pytest.fail(
            f"{item.nodeid} left torch's thread count at {now} (it was {before}): set it for a test with "
            "@pytest.mark.threads(n), or inside a fixture with benchmarks.common.torch_threads(n)",
            pytrace=False,
        )
    return result


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


class Goals:
    """The machine-dependent goals of one test: ``check`` records and reports each, ``verify`` asserts them when
    ``enforce`` (``--benchmark-goals``); ``met`` maps each goal to whether it was met, for the JSON."""

    def __init__(self, enforce: bool, report: Callable[[str], None]) -> None:
        self.enforce, self.report = enforce, report
        self.met: dict[str, bool] = {}
        self._asserted: set[str] = set()

    def check(self, goal: str, met: bool, measured: str = "", *, asserted: bool = True) -> bool:
        """Record ``goal`` (``"cached <= 10x one forward pass, 7x7 codes"``) as met or not, with what was measured;
        ``asserted=False``: a goal only ever reported."""
        self.met[goal] = bool(met)
        if asserted:
            self._asserted.add(goal)
        self.report(f"goal {'met' if met else 'MISSED'}: {goal}" + (f" (measured: {measured})" if measured else ""))
        return bool(met)

    def verify(self) -> None:
        """Fail the test if an asserted goal was missed and ``--benchmark-goals`` was given."""
        missed = [goal for goal, met in self.met.items() if not met and goal in self._asserted]
        if self.enforce:
            assert not missed, "goals missed: " + "; ".join(missed)


@pytest.fixture
def goals(request: pytest.FixtureRequest, summary_line: Callable[[str], None]) -> Goals:
    """The test's goals, asserted only under ``--benchmark-goals`` (see ``Goals``)."""
    return Goals(request.config.getoption("--benchmark-goals"), summary_line)


@pytest.fixture(scope="module")
def figures() -> dict[Any, Any]:
    """The figures this module's tests measured in this run, by key (a case name, a dataset, ...)."""
    return {}
