"""Shared fixtures: deterministic torch, the real-data directory, temporary checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


def pytest_configure(config):
    # The test models are tiny: one thread is faster than two, and far faster on a shared, loaded machine.
    torch.set_num_threads(1)


def shared_data_dir() -> Path | None:
    """``$VQGEN_DATA`` if set, else ``../shared/data`` beside the repository; ``None`` if absent."""
    candidates = [os.environ.get("VQGEN_DATA"), REPO.parent / "shared" / "data"]
    for candidate in candidates:
        if candidate and Path(candidate).is_dir():
            return Path(candidate)
    return None


@pytest.fixture
def shared_data() -> Path | None:
    """``shared_data_dir()`` as a fixture (test modules cannot import this conftest by name: ``tests/data`` has one
    of its own, which wins when the whole suite is collected)."""
    return shared_data_dir()


@pytest.fixture
def real_data_dir() -> Path:
    """The directory of the real datasets; tests that need it skip cleanly when it is absent."""
    path = shared_data_dir()
    if path is None:
        pytest.skip("real data not found: set VQGEN_DATA to a folder holding mnist/, fashion-mnist/, cifar10-subset/")
    return path
