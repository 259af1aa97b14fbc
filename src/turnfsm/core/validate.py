"""Checking input events before anything changes (:class:`~turnfsm.errors.InputError`).

Each input class's field checks are derived once from its resolved type hints
(``typing.get_type_hints``): numbers must be finite numbers (not bools), whole numbers
whole, flags bools, texts strings, mappings mappings; ``X | None`` also admits None.
``ref`` is the caller's and is never checked.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs

from .. import events as ev
from ..errors import InputError

Check = Callable[[str, Any], None]
_MAX = ev.MAX_NUMBER


def _number(what: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{what} must be a number, not {_short(v)}")
    if not -_MAX <= v <= _MAX:  # one comparison refuses NaN, infinities and huge numbers
        if isinstance(v, float) and not math.isfinite(v):
            raise InputError(f"{what} must be finite, not {v!r}")
        raise InputError(f"{what} must be at most {_MAX:g} in size, not {_short(v)}")


def _integer(what: str, v: Any) -> None:
    _number(what, v)  # a whole number within MAX_NUMBER is exact in a float
    if v != int(v):
        raise InputError(f"{what} must be a whole number, not {v!r}")


def _short(v: Any) -> str:
    """``repr(v)``, cut to 60 characters (a 400-digit number, a long text)."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 200:
        return f"a number of about {int(v.bit_length() * 0.30103)} digits"
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _flag(what: str, v: Any) -> None:
    if not isinstance(v, bool):
        raise InputError(f"{what} must be true or false, not {v!r}")


def _text(what: str, v: Any) -> None:
    if not isinstance(v, str):
        raise InputError(f"{what} must be a string, not {v!r}")


def _mapping(what: str, v: Any) -> None:
    if not isinstance(v, dict):
        raise InputError(f"{what} must be a mapping, not {v!r}")


_BY_TYPE: dict[Any, Check] = {float: _number, int: _integer, bool: _flag, str: _text,
                              dict: _mapping}


def _check_for(tp: Any) -> tuple[Check | None, bool]:
    """(check, None allowed) for a resolved type hint."""
    optional = False
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        rest = [a for a in args if a is not type(None)]
        optional = len(rest) < len(args)
        tp = rest[0] if len(rest) == 1 else Any
    base = typing.get_origin(tp) or tp
    return _BY_TYPE.get(base), optional


_CHECKS: dict[type, tuple[tuple[str, Check, bool], ...]] = {}
#: an annotation of turnfsm.events, as ``typing.get_type_hints`` evaluates it
_EVALUATED: dict[str, Any] = {}


def type_hints(cls: type) -> dict[str, Any]:
    """``typing.get_type_hints(cls)``. For a class of :mod:`turnfsm.events` alone, each
    annotation text is evaluated once in that module (get_type_hints compiles and evaluates
    every inherited annotation again for each class: about 0.2 ms per class at its first
    input)."""
    if any(b.__module__ != ev.__name__ for b in cls.__mro__[:-1]):
        return typing.get_type_hints(cls)
    hints: dict[str, Any] = {}
    for base in reversed(cls.__mro__[:-1]):
        for name, value in inspect.get_annotations(base).items():
            if isinstance(value, str):
                found = _EVALUATED.get(value)
                if found is None:
                    found = _EVALUATED[value] = eval(value, vars(ev))
                value = found
            hints[name] = value
    return hints


def checks(cls: type) -> tuple[tuple[str, Check, bool], ...]:
    """(field, check, None allowed) of every checked field of input class ``cls``."""
    found = _CHECKS.get(cls)
    if found is None:
        hints = type_hints(cls)
        items = []
        for f in attrs.fields(cls):
            if f.name == "ref":
                continue
            check, optional = _check_for(hints[f.name])
            if check is not None:
                lo_hi = ev.FIELD_RANGES.get((cls, f.name))
                if lo_hi is not None:
                    check = _ranged(check, *lo_hi)
                items.append((f.name, check, optional))
        found = _CHECKS[cls] = tuple(items)
    return found


def check_input(e: ev.Input) -> None:
    """Refuse wrong types, NaN, infinities and out-of-range numbers (InputError) before
    anything changes."""
    name = type(e).__name__
    for field, check, optional in checks(type(e)):
        v = getattr(e, field)
        if v is None and optional:
            continue
        check(f"{name}.{field}", v)


def _ranged(check: Check, lo: float, hi: float) -> Check:
    """``check``, then ``lo <= v <= hi`` (a field with a narrower range, events.FIELD_RANGES)."""
    def ranged(what: str, v: Any) -> None:
        check(what, v)
        if not lo <= v <= hi:
            raise InputError(f"{what} must be between {lo:g} and {hi:g}, not {v!r}")
    return ranged
