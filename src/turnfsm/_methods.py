"""``__repr__``, ``__eq__`` and ``__hash__`` for turnfsm's attrs classes, written once
instead of generated per class.

attrs generates and compiles these methods for every class it builds: with ``__init__``,
most of the CPU a class costs to make (some 0.2 ms each, on about 80 classes every command
imports). The classes declare ``repr=False, eq=False`` and take these, which behave exactly
as attrs's generated ones: the same text, the same equality (field by field with ``==`` in
order, so a NaN field is unequal as attrs has it; ``NotImplemented`` for another class), a
hash of the same fields (equal objects hash equal; attrs's values differ per process
anyway). A mutable class sets ``__hash__ = None``, as attrs does.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs

#: per class, the fields its repr shows: (name, True or the field's own repr callable)
_SHOWN: dict[type, tuple[tuple[str, Any], ...]] = {}
#: per class, the fields equality compares: (name, the field's eq key or None)
_COMPARED: dict[type, tuple[tuple[str, Any], ...]] = {}
#: per class, (its salt, the fields its hash covers as in _COMPARED)
_HASHED: dict[type, tuple[int, tuple[tuple[str, Any], ...]]] = {}
_ACTIVE = threading.local()  # ids of the objects whose repr is being made, per thread


def attrs_repr(self: Any) -> str:
    """``ClassName(field=value, ...)`` as attrs writes it: the fields whose ``repr`` is on,
    in order (a field's own repr callable used as given), and ``...`` for an object met
    again inside its own repr."""
    cls = self.__class__
    shown = _SHOWN.get(cls)
    if shown is None:
        shown = _SHOWN[cls] = tuple((a.name, a.repr) for a in attrs.fields(cls)
                                    if a.repr is not False)
    try:
        active: set[int] = _ACTIVE.ids
    except AttributeError:
        active = _ACTIVE.ids = set()
    me = id(self)
    if me in active:
        return "..."
    active.add(me)
    try:
        body = ", ".join(f"{name}={getattr(self, name)!r}" if r is True
                         else f"{name}={r(getattr(self, name))}" for name, r in shown)
        return f"{cls.__qualname__.rsplit('>.', 1)[-1]}({body})"
    finally:
        active.discard(me)


def _compared(cls: type) -> tuple[tuple[str, Any], ...]:
    found = _COMPARED[cls] = tuple((a.name, a.eq_key) for a in attrs.fields(cls) if a.eq)
    return found


def attrs_eq(self: Any, other: Any) -> Any:
    """attrs's equality: ``NotImplemented`` unless ``other`` is of the same class, else
    ``self.a == other.a and self.b == other.b ...`` over the fields whose ``eq`` is on (a
    field's eq key applied first), with that expression's value."""
    cls = self.__class__
    if other.__class__ is not cls:
        return NotImplemented
    try:
        fields = _COMPARED[cls]
    except KeyError:
        fields = _compared(cls)
    result: Any = True
    for name, key in fields:
        if key is None:
            result = getattr(self, name) == getattr(other, name)
        else:
            result = key(getattr(self, name)) == key(getattr(other, name))
        if not result:
            return result
    return result


def _hashed(cls: type) -> tuple[int, tuple[tuple[str, Any], ...]]:
    fields = tuple((a.name, a.eq_key) for a in attrs.fields(cls)
                   if a.hash is True or (a.hash is None and a.eq))
    found = _HASHED[cls] = (hash((cls.__module__, cls.__qualname__)), fields)
    return found


def attrs_hash(self: Any) -> int:
    """attrs's hash: of a per-class salt and the fields whose ``hash`` is on (by default
    those equality compares; a field's eq key applied first)."""
    cls = self.__class__
    try:
        salt, fields = _HASHED[cls]
    except KeyError:
        salt, fields = _hashed(cls)
    return hash((salt, *[getattr(self, name) if key is None else key(getattr(self, name))
                         for name, key in fields]))
