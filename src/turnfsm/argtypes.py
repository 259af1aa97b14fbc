"""Argument types of the command line: each turns an option's text into its value, or
raises ``argparse.ArgumentTypeError`` saying what to give (argparse prints it as one line
naming the option)."""

from __future__ import annotations

import argparse
import math
import re
from collections.abc import Callable
from typing import Any

__all__ = ["asr_latency", "count", "language_tag", "number", "positive_seconds", "seconds",
           "threshold"]


def language_tag(value: str) -> str:
    """``--language``: a language tag such as ``es`` or ``pt-BR``."""
    if not re.fullmatch(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*", value):
        raise argparse.ArgumentTypeError(
            f"expected a language tag such as 'es' or 'pt-BR', got {value!r}")
    return value


def asr_latency(v: str) -> str:
    """``--asr-latency``: 'measured' or a non-negative number of seconds."""
    if v != "measured":
        try:
            if not 0 <= float(v) < float("inf"):
                raise ValueError
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{v!r}: give seconds (a non-negative number) or 'measured'") from None
    return v


def number(v: str, ok: Callable[[float], bool], want: str, kind: type = float) -> Any:
    """``v`` as a number of ``kind`` that ``ok`` accepts; else the argparse error ``want``."""
    try:
        x = kind(v)
    except ValueError:
        x = float("nan")
    if not ok(x):
        raise argparse.ArgumentTypeError(f"{v!r}: give {want}")
    return x


def seconds(v: str) -> float:
    """A non-negative, finite number of seconds."""
    return float(number(v, lambda x: 0 <= x < math.inf, "a non-negative number of seconds"))


def positive_seconds(v: str) -> float:
    """A positive, finite number of seconds."""
    return float(number(v, lambda x: 0 < x < math.inf, "a positive number of seconds"))


def count(v: str) -> int:
    """A whole number, 0 or more."""
    return int(number(v, lambda n: n >= 0, "a whole number, 0 or more", int))


def threshold(v: str) -> float:
    """A VAD probability threshold in (0, 1]."""
    return float(number(v, lambda x: 0 < x <= 1, "a probability above 0, at most 1"))
