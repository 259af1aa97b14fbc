"""Behaviour profiles: a chart plus option defaults, chosen by name.

* ``livekit``: the chart ``states.yaml`` as written, and :class:`EngineOptions` defaults:
  the livekit-agents 1.5.12 recogniser minus its defects. Conformance traces run on it, and
  so does every trace whose header names no profile.
* ``default``: ``profiles/default.yaml``, an overlay on the livekit chart (see
  :mod:`turnfsm.chart.overlay`): no orphaned transcripts, the built-in end-of-turn rules
  when the host plugs no model, backchannels that neither interrupt nor become turns, one
  speech onset per turn. The default of :class:`~turnfsm.Engine`, the runtime ``Session``,
  ``turnfsm listen`` and ``turnfsm replay`` (for a trace that names it).

A profile file (``profile:``, ``base:``, ``doc:``, ``options:``, ``chart:``) may also be
read from a path (:func:`read_profile`): ``base`` is ``livekit`` or a chart file beside it.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from ..chart import Chart, loader
from ..chart.overlay import compose
from ..errors import ChartError, ConfigError
from ..options import EngineOptions, options_with
from .charts import default_chart
from .registry import RULES

#: The profiles turnfsm ships, by name.
PROFILES: tuple[str, ...] = ("default", "livekit")
#: The profile an engine, a session, ``listen`` and ``replay`` use when none is named.
DEFAULT_PROFILE = "default"
_KEYS = {"profile", "base", "doc", "options", "chart"}


@attrs.frozen
class Profile:
    """A behaviour: the chart it runs and the option defaults it sets."""

    name: str
    chart: Chart
    option_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    doc: str = ""
    source: str = ""

    def options(self, changes: Mapping[str, Any] | None = None) -> EngineOptions:
        """The profile's options, with ``changes`` (a mapping, see
        :func:`turnfsm.options.options_with`) applied over them."""
        base = options_with(EngineOptions(), self.option_defaults, f"profile {self.name}")
        return base if not changes else options_with(base, changes)


def read_profile(path: str | os.PathLike[str]) -> Profile:
    """Read a profile file (ChartError naming the file and line of each problem)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChartError([f"{p}: cannot read the profile: {exc.strerror or exc}"],
                         str(p)) from None
    source = str(p)
    doc = loader.parse_yaml(text, source)
    line = int(getattr(doc, "line", 1) or 1)
    if not isinstance(doc, dict):
        raise ChartError([f"{source}:1: a profile must be a mapping"], source)
    problems = [f"{source}:{line}: unknown key {k!r} (expected one of {sorted(_KEYS)})"
                for k in doc if k not in _KEYS]
    name = doc.get("profile")
    if not isinstance(name, str) or not name:
        problems.append(f"{source}:{line}: 'profile' must name the profile")
    base = doc.get("base", "livekit")
    opts = doc.get("options") or {}
    if not isinstance(opts, dict):
        problems.append(f"{source}:{line}: 'options' must be a mapping of option defaults")
    if problems:
        raise ChartError(problems, source)
    if base == "livekit":
        base_path = loader.packaged_chart_path()
    elif isinstance(base, str):
        base_path = (p.parent / base).resolve()
    else:
        raise ChartError([f"{source}:{line}: 'base' must be 'livekit' or a chart file"], source)
    try:
        base_text = base_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChartError([f"{source}:{line}: cannot read the base chart {base_path}: "
                          f"{exc.strerror or exc}"], source) from None
    composed = compose(loader.parse_yaml(base_text, str(base_path)), doc.get("chart"), source)
    chart = loader.build_chart(composed, f"{source} (profile {name}, on {base_path.name})",
                               registry=RULES)
    prof = Profile(str(name), chart, dict(opts), str(doc.get("doc") or ""), source)
    try:
        prof.options()
    except ConfigError as e:
        raise ChartError([f"{source}:{line}: {e}"], source) from None
    return prof


@functools.cache
def _packaged(name: str) -> Profile:
    if name == "livekit":
        return Profile("livekit", default_chart(), {},
                       "the livekit-agents 1.5.12 recogniser minus its defects",
                       str(loader.packaged_chart_path()))
    return read_profile(Path(str(resources.files("turnfsm") / "profiles" / f"{name}.yaml")))


def get_profile(profile: str | Profile | os.PathLike[str] | None = None) -> Profile:
    """A profile by name (``default``, ``livekit``), a profile file's path, or a
    :class:`Profile` as given; None is :data:`DEFAULT_PROFILE`."""
    if profile is None:
        profile = DEFAULT_PROFILE
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str) and profile in PROFILES:
        return _packaged(profile)
    if isinstance(profile, (str, os.PathLike)) and str(profile).endswith((".yaml", ".yml")):
        return read_profile(profile)
    raise ConfigError(f"unknown profile {profile!r} (the profiles are {', '.join(PROFILES)}, "
                      f"or a profile file's path)")
