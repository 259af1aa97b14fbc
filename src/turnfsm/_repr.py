"""One ``__repr__`` for turnfsm's attrs classes, written once instead of generated per class.

attrs generates and compiles a ``__repr__`` for every class it builds (about a quarter of the
code it compiles per class, some 0.1 ms of start-up each, on about 80 classes every command
imports). The classes declare ``repr=False`` and take this one, which prints exactly what
attrs's would.
"""

from __future__ import annotations

import threading
from typing import Any

import attrs

#: per class, the fields its repr shows: (name, True or the field's own repr callable)
_SHOWN: dict[type, tuple[tuple[str, Any], ...]] = {}
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
