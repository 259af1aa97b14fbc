"""Charts validated against the engine's registry: the packaged default and chart files."""

from __future__ import annotations

import functools
import os

from ..chart import Chart, loader
from . import rules as _rules  # noqa: F401  (registers every guard and action)
from .registry import RULES


def read_chart(path: str | os.PathLike[str]) -> Chart:
    """Load a chart file and validate it against the engine's registry (ChartError)."""
    return loader.read_chart(path, registry=RULES)


def load_chart(text: str, source: str = "states.yaml") -> Chart:
    """Parse chart text and validate it against the engine's registry (ChartError)."""
    return loader.load_chart(text, source, registry=RULES)


@functools.cache
def default_chart() -> Chart:
    """The chart packaged with turnfsm (``turnfsm/states.yaml``), parsed once per process."""
    return read_chart(loader.packaged_chart_path())
