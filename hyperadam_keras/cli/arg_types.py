"""argparse `type=` functions shared by the subcommands: a bad value is an argparse error (exit code
2, one line naming the option, no traceback), e.g.

    hyperadam-keras evaluate: error: argument --seeds: must be an integer >= 1, got '0'
"""

from __future__ import annotations

import argparse
import math
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")

NONE_WORDS = ("none", "null", "")


def _integer(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """An integer >= 1 (step counts, seed counts, sizes)."""
    return _integer(text, 1)


def nonnegative_int(text: str) -> int:
    """An integer >= 0 (seeds; a count where 0 means "none")."""
    return _integer(text, 0)


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates, epsilons, norms, minutes)."""
    value = _finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def finite_nonnegative_float(text: str) -> float:
    """A finite number >= 0 (noise scales)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


def open_unit_float(text: str) -> float:
    """A number strictly between 0 and 1 (decay rates, stored as logits)."""
    value = _finite(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text!r}")
    return value


def optional(parse: Callable[[str], T]) -> Callable[[str], T | None]:
    """`parse`, or None for 'none' / 'null' / '' (options whose default may be "off")."""

    def parse_optional(text: str) -> T | None:
        return None if text.strip().lower() in NONE_WORDS else parse(text)

    parse_optional.__name__ = f"optional_{getattr(parse, '__name__', 'value')}"
    return parse_optional


def comma_list(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """A comma-separated, non-empty list of names out of `choices`."""

    def parse_list(text: str) -> list[str]:
        names = [name.strip() for name in text.split(",") if name.strip()]
        unknown = [name for name in names if name not in choices]
        if unknown or not names:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated names out of {', '.join(choices)}; got {text!r}")
        return names

    parse_list.__name__ = "comma_list"
    return parse_list
