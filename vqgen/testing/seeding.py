"""The seed every contract case starts from, as a pytest fixture (the contract modules import it) and as a context
manager (for [`run_case`][vqgen.testing.run_case], outside pytest)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
import torch

__all__ = ["contract_seed", "seeded"]


@contextlib.contextmanager
def seeded(seed: int = 0) -> Iterator[None]:
    """Run the block from torch's ``seed`` (the global generator is restored after), so that random weights and
    inputs are the same whatever ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


@pytest.fixture(autouse=True)
def contract_seed() -> Iterator[None]:
    """Every contract case starts from torch's seed 0 (see [`seeded`][seeded])."""
    with seeded():
        yield
