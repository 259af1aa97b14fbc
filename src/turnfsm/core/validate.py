"""Checking input events before anything changes (:class:`~turnfsm.errors.InputError`).

Each input class's field checks are derived once from its resolved type hints
(``typing.get_type_hints``): numbers must be finite numbers (not bools), whole numbers
whole, flags bools, texts strings, mappings mappings; ``X | None`` also admits None.
``ref`` is the caller's and is never checked.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable
from typing import Any

import attrs

from .. import events as ev
from ..errors import InputError

Check = Callable[[str, Any], None]


def _number(what: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise InputError(f"{what} must be a number, not {v!r}")
    if not math.isfinite(v):
        raise InputError(f"{what} must be finite, not {v!r}")


def _integer(what: str, v: Any) -> None:
    _number(what, v)
    if v != int(v):
        raise InputError(f"{what} must be a whole number, not {v!r}")


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


def checks(cls: type) -> tuple[tuple[str, Check, bool], ...]:
    """(field, check, None allowed) of every checked field of input class ``cls``."""
    found = _CHECKS.get(cls)
    if found is None:
        hints = typing.get_type_hints(cls)
        items = []
        for f in attrs.fields(cls):
            if f.name == "ref":
                continue
            check, optional = _check_for(hints[f.name])
            if check is not None:
                items.append((f.name, check, optional))
        found = _CHECKS[cls] = tuple(items)
    return found


def check_input(e: ev.Input) -> None:
    """Refuse wrong types, NaN and infinities (InputError) before anything changes."""
    name = type(e).__name__
    for field, check, optional in checks(type(e)):
        v = getattr(e, field)
        if v is None and optional:
            continue
        check(f"{name}.{field}", v)
