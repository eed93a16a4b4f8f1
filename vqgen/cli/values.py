"""The ``argparse`` types of the flags' numbers: a bad number is a usage error (exit status 2) that names the flag.

``vqgen <command> --epochs 0`` says ``argument --epochs: expected an integer >= 1, got 0``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

__all__ = ["fraction", "non_negative_int", "positive_float", "positive_int", "probability"]


def _number(convert: Callable[[str], Any], check: Callable[[Any], bool], expected: str) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
        if not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text}")
        return value

    parse.__name__ = expected  # argparse names the type in "invalid <name> value" messages
    return parse


positive_int = _number(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = _number(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number(float, lambda v: v > 0 and v != float("inf"), "a number > 0")
fraction = _number(float, lambda v: 0 < v < 1, "a number in (0, 1)")
probability = _number(float, lambda v: 0 < v <= 1, "a number in (0, 1]")
