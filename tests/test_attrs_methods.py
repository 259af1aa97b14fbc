"""turnfsm's attrs classes share one written ``__repr__``, ``__eq__`` and ``__hash__``
(attrs generates none per class): they behave as attrs's generated ones would."""

from __future__ import annotations

import importlib
import math
from typing import Any

import attrs
import pytest

from turnfsm._methods import attrs_eq, attrs_hash, attrs_repr

MODULES = ("turnfsm.events", "turnfsm.outputs", "turnfsm.options", "turnfsm.core.records",
           "turnfsm.chart.model", "turnfsm.core.timers", "turnfsm.core.registry",
           "turnfsm.core.engine", "turnfsm.core.dispatch", "turnfsm.core.profiles",
           "turnfsm.replay.trace", "turnfsm.audio.transcripts", "turnfsm.audio.wav")


def _classes() -> list[type]:
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [c for c in vars(module).values() if isinstance(c, type) and attrs.has(c)
                  and c.__module__ == name]
    return found


CLASSES = _classes()
IDENTITY = {"Audio"}  # equal only to itself (its samples are an array), as declared
VALUES = ["it's \"quoted\"", 0.25, None, (1, 2.5, "a"), -0.0, frozenset({"k"}), True, 7]


def _filled(cls: type, values: list[Any]) -> Any:
    """An instance of ``cls`` holding ``values`` in turn (its checks bypassed: any value)."""
    obj = object.__new__(cls)
    for i, a in enumerate(attrs.fields(cls)):
        object.__setattr__(obj, a.name, values[i % len(values)])
    return obj


def _frozen(cls: type) -> bool:
    try:
        setattr(_filled(cls, VALUES), attrs.fields(cls)[0].name, 1)
    except attrs.exceptions.FrozenInstanceError:
        return True
    return False


def _twin(cls: type) -> type:
    """The same fields (repr, eq and hash flags) in a class whose methods attrs generates."""
    return attrs.make_class(cls.__name__, {a.name: attrs.field(repr=a.repr, eq=a.eq,
                                                               hash=a.hash)
                                           for a in attrs.fields(cls)},
                            slots=True, frozen=_frozen(cls))


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
    twin = _twin(cls)
    values = [*VALUES, math.nan, {"k": [1]}, _filled(CLASSES[0], [0.5, "x"])]
    assert repr(_filled(cls, values)) == repr(_filled(twin, values))
    own, other = _filled(cls, values), _filled(twin, values)  # each inside itself
    first = attrs.fields(cls)[0].name
    object.__setattr__(own, first, own)
    object.__setattr__(other, first, other)
    assert repr(own) == repr(other)


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_eq_and_hash_are_what_attrs_generates(cls: type) -> None:
    """Equal fields are equal (and hash equal), a NaN field or any field changed is unequal
    unless its ``eq`` is off, another class is NotImplemented, a mutable class is
    unhashable: as attrs's own methods have it."""
    if cls.__name__ in IDENTITY:
        assert cls.__eq__ is object.__eq__ and cls.__hash__ is object.__hash__
        return
    assert cls.__eq__ is attrs_eq
    twin = _twin(cls)
    frozen = _frozen(cls)
    assert (cls.__hash__ is attrs_hash) if frozen else cls.__hash__ is None
    assert (twin.__hash__ is None) is (not frozen)
    names = [a.name for a in attrs.fields(cls)]
    cases = [(VALUES, VALUES)]
    for i in range(len(names)):  # one field changed, or NaN in both
        changed = [VALUES[j % len(VALUES)] for j in range(len(names))]
        cases.append((VALUES, [*changed[:i], "changed", *changed[i + 1:]]))
        cases.append(([*changed[:i], math.nan, *changed[i + 1:]],) * 2)
    for a, b in cases:
        mine, theirs = (_filled(cls, a), _filled(cls, b)), (_filled(twin, a), _filled(twin, b))
        assert (mine[0] == mine[1]) is (theirs[0] == theirs[1])
        assert (mine[0] != mine[1]) is (theirs[0] != theirs[1])
        if frozen and theirs[0] == theirs[1]:
            assert hash(mine[0]) == hash(mine[1])
    assert attrs_eq(_filled(cls, VALUES), _filled(twin, VALUES)) is NotImplemented
    assert _filled(cls, VALUES) != _filled(twin, VALUES)
