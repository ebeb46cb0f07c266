"""Owns the wording of a value check: ``key=value must be …``. The library's constructors check their arguments with
these, naming the config key that sets each one, and config validation (``launch/config_checks.py``) calls those same
constructor checks, so each rule is stated once and fails with one message, whether it comes from the command
line or from Python. Imports nothing.
"""

from __future__ import annotations

from numbers import Real
from typing import Any


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def integer(key: str, value: Any, *, low: int | None = None, hint: str = "") -> int:
    """``value`` when it is an integer >= ``low``; else ValueError naming ``key`` (``hint``: the other choices)."""
    if not is_int(value) or (low is not None and value < low):
        bound = "an integer" if low is None else f"an integer >= {low}"
        raise ValueError(f"{key}={value!r} must be {bound}{f' ({hint})' if hint else ''}")
    return value


def number(
    key: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str = "",
) -> float:
    """``value`` when it is a number within the bounds (``*_open``: the bound itself excluded); else ValueError."""
    ok = is_number(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        if low is not None and high is not None:
            where = f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            where = f"{'>' if low_open else '>='} {low}"
        else:
            where = f"{'<' if high_open else '<='} {high}"
        raise ValueError(f"{key}={value!r} must be a number {where}{f' ({hint})' if hint else ''}")
    return value


def boolean(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}={value!r} must be true or false")
    return value
