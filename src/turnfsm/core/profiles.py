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
read from a path (:func:`read_profile`). Its ``base`` is a built-in profile by name (its
chart and option defaults, over which the file's apply), or a file in the profile file's
folder or below it (a profile file, or a chart); a base chain is at most
:data:`MAX_BASE_DEPTH` deep. Every file read is a regular file of at most
:data:`~turnfsm.chart.loader.MAX_CHART_BYTES`. A trace's header names a built-in profile or
a profile file in the trace's folder or below it (:func:`get_profile` with ``within``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from .._methods import attrs_eq, attrs_hash, attrs_repr
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
#: How many profile files a base chain may hold (a profile based on one based on one...).
MAX_BASE_DEPTH = 8
_KEYS = {"profile", "base", "doc", "options", "chart", "judges_speech_over_agent"}


@attrs.frozen(repr=False, eq=False)
class Profile:
    """A behaviour: the chart it runs and the option defaults it sets."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    name: str
    chart: Chart
    option_defaults: Mapping[str, Any] = attrs.field(factory=dict)
    doc: str = ""
    source: str = ""
    #: the composed chart document (what a profile based on this one composes onto)
    chart_doc: Any = attrs.field(default=None, eq=False, repr=False)
    #: user speech over the agent is judged before it is a turn even with no interruption
    #: detector (held by the gate, then dropped as a backchannel, interrupting by its words
    #: or released): a shell waits for the engine's outputs before it treats such speech as
    #: the user's turn. Declared by the profile file (``judges_speech_over_agent``, default
    #: its base's; False for ``livekit``, whose gate holds only with a detector)
    judges_speech_over_agent: bool = False

    def options(self, changes: Mapping[str, Any] | None = None) -> EngineOptions:
        """The profile's options, with ``changes`` (a mapping, see
        :func:`turnfsm.options.options_with`) applied over them."""
        base = options_with(EngineOptions(), self.option_defaults, f"profile {self.name}")
        return base if not changes else options_with(base, changes)


def _merge_options(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """A base profile's option defaults with a profile's over them (``endpointing`` and
    ``user_turn_limit`` merged field by field)."""
    out = dict(base)
    for k, v in over.items():
        if k in ("endpointing", "user_turn_limit") and isinstance(v, Mapping) and \
                isinstance(out.get(k), Mapping):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _under(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def read_profile(path: str | os.PathLike[str], *, within: str | os.PathLike[str] | None = None,
                 _depth: int = 0) -> Profile:
    """Read a profile file (ChartError naming the file and line of each problem). Its
    ``base`` files must lie in ``within`` (default: the profile file's folder) or below."""
    p = Path(path)
    source = str(p)
    root = Path(within).resolve() if within is not None else p.resolve().parent
    text = loader.read_text_file(p, "profile")
    doc = loader.parse_yaml(text, source)
    line = int(getattr(doc, "line", 1) or 1)
    if not isinstance(doc, dict) or "profile" not in doc:
        raise ChartError([f"{source}:1: not a profile file (a mapping with 'profile', "
                          f"'base', 'options' and 'chart')"], source)
    problems = [f"{source}:{line}: unknown key {_short(k)} (expected one of {sorted(_KEYS)})"
                for k in doc if k not in _KEYS]
    name = doc.get("profile")
    if not isinstance(name, str) or not name:
        problems.append(f"{source}:{line}: 'profile' must name the profile")
    base = doc.get("base", "livekit")
    opts = doc.get("options") or {}
    if not isinstance(opts, dict):
        problems.append(f"{source}:{line}: 'options' must be a mapping of option defaults")
    if not isinstance(base, str) or not base:
        problems.append(f"{source}:{line}: 'base' must name a built-in profile "
                        f"({', '.join(PROFILES)}) or a file")
    if problems:
        raise ChartError(problems, source)
    base_opts: Mapping[str, Any] = {}
    base_judges = False
    if base in PROFILES:
        bp = _packaged(base)
        base_doc, base_opts = bp.chart_doc, bp.option_defaults
        base_judges = bp.judges_speech_over_agent
        base_name = Path(bp.source).name if base == "livekit" else f"profile {base}"
    else:
        base_path = (p.parent / base).resolve()
        if not _under(base_path, root):
            raise ChartError([f"{source}:{line}: 'base' must be a built-in profile "
                              f"({', '.join(PROFILES)}) or a file in {root} or below, not "
                              f"{_short(base)}"], source)
        if _depth >= MAX_BASE_DEPTH:
            raise ChartError([f"{source}:{line}: the chain of base profiles is deeper than "
                              f"{MAX_BASE_DEPTH} (a profile based on itself?)"], source)
        base_text = loader.read_text_file(base_path, "base chart", source)
        parsed = loader.parse_yaml(base_text, str(base_path))
        if isinstance(parsed, dict) and "profile" in parsed:  # a profile file: its result
            bp = read_profile(base_path, within=root, _depth=_depth + 1)
            base_doc, base_opts = bp.chart_doc, bp.option_defaults
            base_judges = bp.judges_speech_over_agent
        else:
            base_doc = parsed
        base_name = base_path.name
    judges = doc.get("judges_speech_over_agent", base_judges)
    if not isinstance(judges, bool):
        raise ChartError([f"{source}:{line}: 'judges_speech_over_agent' must be true or false, "
                          f"not {_short(judges)}"], source)
    composed = compose(base_doc, doc.get("chart"), source)
    chart = loader.build_chart(composed, f"{source} (profile {name}, on {base_name})",
                               registry=RULES)
    prof = Profile(str(name), chart, _merge_options(base_opts, opts),
                   str(doc.get("doc") or ""), source, chart_doc=composed,
                   judges_speech_over_agent=judges)
    try:
        prof.options()
    except ConfigError as e:
        raise ChartError([f"{source}:{line}: {e}"], source) from None
    return prof


def _short(v: Any) -> str:
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


@functools.cache
def _packaged(name: str) -> Profile:
    if name == "livekit":
        path = loader.packaged_chart_path()
        return Profile("livekit", default_chart(), {},
                       "the livekit-agents 1.5.12 recogniser minus its defects", str(path),
                       chart_doc=loader.parse_yaml(loader.read_text_file(path, "chart"),
                                                   str(path)))
    return read_profile(loader.packaged_dir() / "profiles" / f"{name}.yaml")


def get_profile(profile: str | Profile | os.PathLike[str] | None = None, *,
                within: str | os.PathLike[str] | None = None) -> Profile:
    """A profile by name (``default``, ``livekit``), a profile file's path, or a
    :class:`Profile` as given; None is :data:`DEFAULT_PROFILE`. With ``within`` (a folder:
    a trace's), a path is taken relative to it and must lie in it or below."""
    if profile is None:
        profile = DEFAULT_PROFILE
    if isinstance(profile, Profile):
        return profile
    if isinstance(profile, str) and profile in PROFILES:
        return _packaged(profile)
    if isinstance(profile, (str, os.PathLike)) and str(profile).endswith((".yaml", ".yml")):
        if within is None:
            return read_profile(profile)
        root = Path(within).resolve()
        path = (root / profile).resolve()
        if not _under(path, root):
            raise ConfigError(f"profile {_short(str(profile))} is outside {root} (a trace names "
                              f"a built-in profile, {', '.join(PROFILES)}, or a profile file "
                              f"in its folder or below)")
        try:
            return read_profile(path, within=root)
        except ChartError as e:
            raise ConfigError(f"profile {_short(str(profile))}: {e.problems[0]}"
                              + (f" (and {len(e.problems) - 1} more problems)"
                                 if len(e.problems) > 1 else "")) from None
    raise ConfigError(f"unknown profile {_short(profile)} (the profiles are "
                      f"{', '.join(PROFILES)}, or a profile file's path)")
