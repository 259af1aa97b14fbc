"""turnfsm's attrs classes share one written ``__repr__`` (attrs builds none per class):
it prints exactly what attrs's generated one would."""

from __future__ import annotations

import importlib
import math
from typing import Any

import attrs
import pytest

from turnfsm._repr import attrs_repr

MODULES = ("turnfsm.events", "turnfsm.outputs", "turnfsm.options", "turnfsm.core.records",
           "turnfsm.chart.model", "turnfsm.core.timers", "turnfsm.core.registry",
           "turnfsm.core.engine", "turnfsm.core.dispatch", "turnfsm.core.profiles",
           "turnfsm.replay.trace")


def _classes() -> list[type]:
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [c for c in vars(module).values() if isinstance(c, type) and attrs.has(c)
                  and c.__module__ == name]
    return found


CLASSES = _classes()


def _twin(cls: type) -> type:
    """The same fields in a class whose repr attrs generates (same name, same repr flags)."""
    return attrs.make_class(cls.__name__, {a.name: attrs.field(repr=a.repr)
                                           for a in attrs.fields(cls)}, slots=True)


def _filled(cls: type, values: list[Any]) -> Any:
    """An instance of ``cls`` holding ``values`` in turn (its checks bypassed: any value)."""
    obj = object.__new__(cls)
    for i, a in enumerate(attrs.fields(cls)):
        object.__setattr__(obj, a.name, values[i % len(values)])
    return obj


def test_the_classes_are_found() -> None:
    """The event, output, option, record and chart classes are all here (80 or so)."""
    names = {c.__name__ for c in CLASSES}
    assert len(CLASSES) >= 75
    assert {"Input", "VadInferenceDone", "Output", "EndOfTurn", "DecisionRecord",
            "EngineOptions", "TurnData", "Chart", "Timer", "Profile", "Trace"} <= names


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_repr_is_what_attrs_generates(cls: type) -> None:
    """Strings with quotes, NaN, None, tuples, nested instances and an object inside itself
    print as attrs's own repr prints them."""
    assert cls.__repr__ is attrs_repr
    inner = _filled(CLASSES[0], [0.5, "x"])
    values = ["it's \"quoted\"", math.nan, None, (1, 2.5, "a"), inner, -0.0, {"k": [1]}, True]
    assert repr(_filled(cls, values)) == repr(_filled(_twin(cls), values))
    own, twin = _filled(cls, values), _filled(_twin(cls), values)  # each inside itself
    first = attrs.fields(cls)[0].name
    object.__setattr__(own, first, own)
    object.__setattr__(twin, first, twin)
    assert repr(own) == repr(twin)
