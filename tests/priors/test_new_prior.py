"""A new prior is one file with ``forward``: register a throw-away one and it passes every prior contract test.

:class:`BigramPrior` below is all a plugin author writes: it hands ``num_categories``, ``channels``, ``num_classes``,
``cond_dim`` and ``channel_order`` to :class:`~vqgen.AutoregressivePrior` (which stores them and checks inputs and
conditions), builds a small network, and writes ``forward``. It has no ``incremental``: cached sampling falls back
to the reference stepper. The test registers it for the duration of each test only, then runs every test of
the prior contract (``vqgen.testing``) on it with every parametrisation, as a plugin's own test suite would.
"""

from __future__ import annotations

import pytest
import torch
from einops import rearrange
from torch import Tensor, nn

import vqgen
import vqgen.testing
from vqgen.priors import IndexInput
from vqgen.registry import registry

NAME = "throwaway_bigram"


class BigramPrior(vqgen.AutoregressivePrior):
    """Each value from the previous position's values and, with sequential channels, the earlier channels of its own.

    Args:
        num_categories: K.
        channels: C.
        embed_dim: E, width of the value embeddings.
        num_classes: condition on class labels.
        cond_dim: condition on vectors.
        channel_order: ``"sequential"`` or ``"parallel"``.
    """

    def __init__(
        self,
        num_categories: int = 16,
        channels: int = 1,
        embed_dim: int = 8,
        num_classes: int | None = None,
        cond_dim: int | None = None,
        channel_order: str = "sequential",
    ) -> None:
        super().__init__(num_categories, channels, num_classes, cond_dim, channel_order)
        self.input = IndexInput(num_categories, channels, "embed", embed_dim)  # the only path by which x enters
        width = channels * embed_dim
        self.start = nn.Parameter(torch.randn(width))  # stands for the position before the first
        self.previous = nn.Linear(width, 32)
        self.current = nn.Linear(width, 32, bias=False)
        self.label = nn.Embedding(num_classes, 32) if num_classes else None
        self.vector = nn.Linear(cond_dim, 32) if cond_dim else None
        self.heads = nn.ModuleList(nn.Linear(32, num_categories) for _ in range(channels))

    def forward(self, x: Tensor, cond: Tensor | None = None) -> Tensor:
        """Logits ``(B, K, C, H, W)`` for ``x`` ``(B, C, H, W)``."""
        self.check_input(x, cond)
        batch, channels, height, width = x.shape
        f = rearrange(self.input(x), "b (c e) h w -> b (h w) c e", c=channels)  # (B, L, C, E)
        start = self.start.view(1, 1, -1).expand(batch, 1, -1)  # (B, 1, C*E)
        hidden = self.previous(torch.cat([start, f[:, :-1].flatten(2)], dim=1))  # (B, L, 32)
        if cond is not None:
            hidden = hidden + (self.vector(cond) if cond.is_floating_point() else self.label(cond))[:, None]
        logits = []
        for c in range(channels):
            seen = f.clone()
            seen[:, :, c if self.sequential_channels else 0 :] = 0  # current pixel: channels < c, or none
            logits.append(self.heads[c](torch.tanh(hidden + self.current(seen.flatten(2)))))  # (B, L, K)
        return rearrange(torch.stack(logits, 1), "b c (h w) k -> b k c h w", h=height, w=width)


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """Register the throw-away prior for one test only (no other test sees it)."""
    monkeypatch.setitem(registry("prior")._entries, NAME, BigramPrior)
    monkeypatch.setattr(BigramPrior, "_registry_kind", "prior")
    monkeypatch.setattr(BigramPrior, "_registry_name", NAME)
    yield


def test_throwaway_prior_is_registered_for_this_test_only():
    assert NAME in vqgen.available("prior")
    assert vqgen.build("prior", NAME, num_categories=5).num_categories == 5


@pytest.mark.parametrize(("case", "kwargs"), vqgen.testing.contract_cases("prior"))
def test_throwaway_prior_passes_the_contract(case, kwargs, tmp_path):
    vqgen.testing.run_case(case, kwargs, name=NAME, tmp_path=tmp_path)


def test_check_prior_runs_the_whole_contract_in_one_call():
    report = vqgen.testing.check_prior(NAME)
    assert len(report.passed) + len(report.skipped) == len(vqgen.testing.contract_cases("prior"))
    assert len(report.passed) > 40 and all("prefill" in case for case in report.skipped)


def test_check_prior_names_the_failing_case(monkeypatch):
    """A prior whose logits peek at the value they predict fails, and the error names the case."""

    class Leaky(BigramPrior):
        def forward(self, x, cond=None):
            logits = super().forward(x, cond)
            return logits + rearrange(x.float(), "b c h w -> b 1 c h w")  # each logit sees its own value

    monkeypatch.setitem(registry("prior")._entries, NAME, Leaky)
    with pytest.raises(AssertionError, match=r"prior 'throwaway_bigram' fails the contract case"):
        vqgen.testing.check_prior(NAME)


def test_check_prior_of_an_unknown_name_is_a_clear_error():
    with pytest.raises(ValueError, match="no prior registered as 'nope'"):
        vqgen.testing.check_prior("nope")
