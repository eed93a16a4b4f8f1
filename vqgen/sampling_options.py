"""How values are drawn from a prior's logits: [`SamplingOptions`][SamplingOptions], the one definition of the
sampling options, validated once, and [`SamplingSettings`][SamplingSettings], its fields as keywords.

Re-exported by [`vqgen.sampling`][vqgen.sampling], the loop that reads them.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, TypedDict

import torch

from . import checks

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack from Python 3.11

__all__ = ["METHODS", "SamplingMethod", "SamplingOptions", "SamplingSettings"]


METHODS = ("cached", "naive")
"""The sampling methods: ``"cached"`` (the prior's own stepper) and ``"naive"`` (a forward pass per value)."""

SamplingMethod = Literal["cached", "naive"]
"""The type of ``SamplingOptions.method``."""


@dataclass(frozen=True)
class SamplingOptions:
    """How values are drawn from a prior's logits: the one definition of the sampling options, validated once.

    Attributes:
        temperature: logits are divided by it; must be > 0 (< 1: more typical samples, > 1: more varied).
        top_k: keep only the k most likely categories at each step (``None``: all).
        top_p: keep the smallest set of categories whose probability reaches ``top_p`` (nucleus sampling,
            arXiv:1904.09751; ``None``: all).
        method: ``"cached"`` (fast incremental generation, arXiv:1704.06001) or ``"naive"`` (a full forward pass per
            value: the reference). Both return the same samples for the same generator seed.
        generator: a ``torch.Generator`` on the prior's device, for reproducible draws.
        progress: show a progress bar over rows.

    Raises:
        TypeError: if a number has the wrong type, or ``generator`` is not a ``torch.Generator``.
        ValueError: if ``temperature`` is not finite and > 0, ``top_k`` < 1, ``top_p`` outside ``(0, 1]``, or
            ``method`` unknown.

    Examples:
        >>> import torch, vqgen
        >>> from vqgen.sampling import SamplingOptions
        >>> options = SamplingOptions(temperature=0.8, top_k=8, generator=torch.Generator().manual_seed(0))
        >>> prior = vqgen.build("prior", "rnn", num_categories=16, hidden_size=8)
        >>> prior.sample(2, (3, 3), options=options).shape
        torch.Size([2, 1, 3, 3])
        >>> SamplingOptions(top_p=1.5)
        Traceback (most recent call last):
        ValueError: top_p must lie in (0, 1], got 1.5
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    method: SamplingMethod = "cached"
    generator: torch.Generator | None = None
    progress: bool = False

    def __post_init__(self) -> None:
        """Validate every field (the errors are listed in the class docstring)."""
        checks.check_positive(self.temperature, name="temperature")
        if not math.isfinite(self.temperature):  # inf would divide every logit to 0: uniform draws, silently
            raise ValueError(f"temperature must be finite, got {self.temperature}; use e.g. 0.7 to 1.2")
        if self.top_k is not None:
            checks.check_positive(self.top_k, name="top_k", integer=True)
        if self.top_p is not None:
            checks.check_probability(self.top_p, name="top_p")
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {list(METHODS)}, got {self.method!r}")
        if self.generator is not None and not isinstance(self.generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(self.generator).__name__}")

    @classmethod
    def of(cls, options: SamplingOptions | None = None, **fields: Unpack[SamplingSettings]) -> SamplingOptions:
        """``options`` (default: all defaults) with ``fields`` replaced; an unknown field is a ``TypeError``.

        Args:
            options: the options to start from; ``None`` for the defaults.
            **fields: fields to replace ([`SamplingSettings`][SamplingSettings]).

        Returns:
            New, validated options.

        Raises:
            TypeError: if ``options`` is not a ``SamplingOptions``, or a field is unknown.
            ValueError: if a new value is out of range.

        Examples:
            >>> from vqgen.sampling import SamplingOptions
            >>> SamplingOptions.of(SamplingOptions(top_k=5), temperature=0.7)
            SamplingOptions(temperature=0.7, top_k=5, top_p=None, method='cached', generator=None, progress=False)
            >>> SamplingOptions.of(temp=0.7)
            Traceback (most recent call last):
            TypeError: unknown sampling options ['temp']; the options are ['generator', 'method', ...]
        """
        if options is not None and not isinstance(options, SamplingOptions):
            raise TypeError(f"options must be a SamplingOptions, got {type(options).__name__}")
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(fields) - known)
        if unknown:
            raise TypeError(f"unknown sampling options {unknown}; the options are {sorted(known)}")
        return dataclasses.replace(options or cls(), **fields)


class SamplingSettings(TypedDict, total=False):
    """[`SamplingOptions`][SamplingOptions]' fields as keyword arguments, each optional: what every ``sample`` and
    ``complete`` takes besides ``options=`` (a test keeps the two in step).

    Examples:
        >>> import vqgen
        >>> from vqgen.sampling import SamplingSettings
        >>> settings: SamplingSettings = {"temperature": 0.9, "method": "naive"}
        >>> vqgen.build("prior", "uniform", num_categories=4).sample(2, (2, 2), **settings).shape
        torch.Size([2, 1, 2, 2])
    """

    temperature: float
    top_k: int | None
    top_p: float | None
    method: SamplingMethod
    generator: torch.Generator | None
    progress: bool
