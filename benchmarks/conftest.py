"""Shared benchmark helpers: a ``summary_line`` fixture whose lines are printed at the end of the run.

Benchmarks report ratios measured in one run; ``summary_line("...")`` collects a line that appears in a
"benchmark summary" section after pytest-benchmark's table, without ``-s``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

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
