"""The grid of a sweep: which options take which values (``turnfsm tune --grid GRID.yaml``).

A grid is a YAML mapping. ``profile`` names the behaviour profile (or a list of them);
``samples`` and ``seed`` choose a seeded random search; every other key is a tunable option
(:data:`OPTIONS`) with one value, a list of values, or a range ``{from, to, step}``::

    profile: livekit
    min_delay: {from: 0.2, to: 1.0, step: 0.1}
    max_delay: [1.5, 3.0]
    turn_detection: [vad, model]

Without ``samples`` the settings are the cartesian product of the values (a range without
``step`` is refused). With ``samples: N`` (and ``seed``, default 0) N distinct settings are
drawn: a list or a stepped range by picking one of its values, a range without ``step``
uniformly (rounded to 0.001). Options that cannot matter in a setting are dropped from it
(``alpha`` with ``endpointing_mode: fixed``, ``unlikely_threshold`` with ``turn_detection:
vad``, ``interruption_after`` with ``interruption_detection: false``), settings that become
the same are kept once, and settings with ``min_delay`` above ``max_delay`` are skipped; each
such change is noted (:attr:`Grid.notes`). A mistake (an unknown option, a bad value, a
malformed range) raises :class:`GridError` naming the grid's file and line.

Options are of two sides. **Engine** options only change the trace's header: a session's
trace is built once and replayed under each. **Audio** options change how ``listen`` turns a
WAV file into a trace (the VAD's segmentation, the overlap rule): a trace is built per
distinct audio-side setting (the VAD model's probabilities are computed once per session
and reused). Audio options do not apply to sessions given as traces.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import yaml

from ..errors import TurnFsmError
from ..options import profile_options

# The behaviour profiles the engine ships (turnfsm.core.profiles), with what they are; a grid
# may sweep ``profile: [default, livekit]``.
PROFILES: dict[str, str] = {
    "default": "the better default: no orphans, built-in end-of-turn rules, backchannels "
               "neither interrupt nor become turns, one onset per turn",
    "livekit": "livekit-agents 1.5.12's recogniser minus its defects (states.yaml as written)",
}
DEFAULT_PROFILE = "default"

RESERVED = ("profile", "samples", "seed")
MAX_SETTINGS = 1_000_000
#: The most settings a random search draws, and the largest grid file read (bytes).
MAX_SAMPLES = 100_000
MAX_GRID_BYTES = 1024 * 1024


class GridError(TurnFsmError):
    """A grid file is malformed: names the file, the line and the option."""


@attrs.frozen
class Option:
    """A tunable option: its side, its check, and what it means."""

    name: str
    side: str  # "engine" | "audio"
    numeric: bool
    check: Callable[[Any], Any]  # the value normalised, or ValueError with the reason
    default: str  # the value a WAV session gets when the grid does not name the option
    help: str


def _finite(v: float) -> bool:
    """Whether ``v`` is finite as a float (a whole number too large for one is not)."""
    try:
        return math.isfinite(v)
    except OverflowError:
        return False


def _number(lo: float, hi: float = math.inf, *, lo_open: bool = False
            ) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not _finite(v):
            raise ValueError(f"must be a finite number, not {_short(v)}")
        if v < lo or (lo_open and v == lo) or v > hi:
            lo_s = f"{'>' if lo_open else '>='} {lo:g}"
            raise ValueError(f"must be {lo_s}" + (f" and <= {hi:g}" if hi < math.inf else "")
                             + f" (got {v!r})")
        return float(v)
    return check


def _choice(*names: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if v not in names:
            raise ValueError(f"must be one of {', '.join(names)} (got {v!r})")
        return str(v)
    return check


def _flag(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"must be true or false (got {v!r})")
    return v


def _count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or int(v) != v:
        raise ValueError(f"must be a whole number >= 0 (got {v!r})")
    return int(v)


def _boundary(v: Any) -> tuple[float, float] | None:
    """A backchannel boundary: null (none), a number (both ends) or a pair [start, end]."""
    if v is None:
        return None
    if isinstance(v, (list, tuple)):
        if len(v) != 2:
            raise ValueError(f"a pair must have two numbers (got {v!r})")
        a, b = (_number(0.0)(x) for x in v)
        return (a, b)
    x = _number(0.0)(v)
    return (x, x)


#: a profile option's bounds (turnfsm.options.OptionInfo) as a grid check
_BOUNDS: dict[str, Callable[[Any], Any]] = {
    "positive": _number(0.0, lo_open=True), "non_negative": _number(0.0), "count": _count}

OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("min_delay", "engine", True, _number(0.0), "0.5",
           "endpointing: the wait after the user's speech when the turn is likely over (s)"),
    Option("max_delay", "engine", True, _number(0.0), "3.0",
           "endpointing: the wait when the end-of-turn model finds the turn unlikely over "
           "(and the bound of dynamic endpointing) (s)"),
    Option("endpointing_mode", "engine", False, _choice("fixed", "dynamic"), "fixed",
           "endpointing: fixed delays, or delays that follow the pauses heard (dynamic)"),
    Option("alpha", "engine", True, _number(0.0, 1.0, lo_open=True), "0.9",
           "dynamic endpointing: the weight of the past in its moving averages"),
    Option("turn_detection", "engine", False, _choice("vad", "model"), "vad",
           "vad: the VAD's silence ends the turn; model: the built-in rule-based end-of-turn "
           "model judges the transcript (as `listen --turn-detection model`)"),
    Option("eou_model", "engine", False, _choice("rules", "smart-turn"), "rules",
           "the end-of-turn model: the text rules alone, or Smart Turn v3.2 fused with them "
           "(as `score --eou-model smart-turn`: WAV sessions only; extra smart-turn)"),
    Option("unlikely_threshold", "engine", True, _number(0.0, 1.0), "0.3",
           "turn_detection model: below this probability the turn is unlikely over "
           "(max_delay applies)"),
    *(Option(k, "engine", True, _BOUNDS[info.bounds], info.grid_default, info.grid_help)
      for k, info in profile_options().items()),  # declared on EngineOptions' fields
    Option("backchannel_boundary", "engine", True, _boundary, "1.0",
           "seconds after the agent starts (and stops) speaking in which short user speech is "
           "a backchannel: a number, a pair [start, end], or null"),
    Option("min_silence", "audio", True, _number(0.0), "0.55",
           "VAD: the silence that ends speech (s)"),
    Option("vad_threshold", "audio", True, _number(0.01, 1.0), "0.5",
           "VAD: activation threshold (deactivation 0.15 lower, as `listen --vad-threshold`)"),
    Option("interruption_after", "audio", True, _number(0.0, lo_open=True), "0.6",
           "the overlap rule: user speech over the agent is an interruption after this long "
           "(s; stereo sessions)"),
    Option("interruption_detection", "audio", False, _flag, "true for stereo",
           "stereo sessions: judge overlaps (the overlap rule) or not"),
)}
ENGINE_OPTIONS = tuple(n for n, o in OPTIONS.items() if o.side == "engine")
AUDIO_OPTIONS = tuple(n for n, o in OPTIONS.items() if o.side == "audio")
# an option that matters only when another one has one of these values
REQUIRES: dict[str, tuple[str, Any]] = {
    "alpha": ("endpointing_mode", "dynamic"),
    **{k: ("profile", info.profile) for k, info in profile_options().items()},
    "unlikely_threshold": ("turn_detection", "model"),
    "interruption_after": ("interruption_detection", True),
}


@attrs.frozen
class Setting:
    """One point of the grid: a profile and values of the options the grid names."""

    index: int
    profile: str
    values: tuple[tuple[str, Any], ...]  # in the grid's order

    def get(self, name: str, default: Any = None) -> Any:
        """An option's value in this setting (``default`` when the setting leaves it)."""
        for k, v in self.values:
            if k == name:
                return v
        return default

    def as_dict(self) -> dict[str, Any]:
        """The option values as a mapping."""
        return dict(self.values)

    def audio_key(self) -> tuple[tuple[str, Any], ...]:
        """The audio-side values: settings with the same key share a built trace."""
        return tuple((k, v) for k, v in self.values if OPTIONS[k].side == "audio")

    def label(self, names: tuple[str, ...] | None = None) -> str:
        """``min_delay=0.3 turn_detection=model`` (only ``names`` when given)."""
        parts = [f"{k}={fmt_value(v)}" for k, v in (("profile", self.profile), *self.values)
                 if (names is None and k != "profile") or (names is not None and k in names)]
        return " ".join(parts) or "(defaults)"


def fmt_value(v: Any) -> str:
    """A value as the table and the CSV show it."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, tuple):
        return f"[{', '.join(fmt_value(x) for x in v)}]"
    return str(v)


@attrs.frozen
class Grid:
    """A parsed grid: the settings to run, in order."""

    path: str
    options: tuple[str, ...]  # the options the grid names, in its order
    settings: tuple[Setting, ...]
    notes: tuple[str, ...] = ()
    samples: int | None = None
    seed: int = 0

    def varying(self) -> tuple[str, ...]:
        """``profile`` and the options with more than one value across the settings."""
        names = [*(["profile"] if len({s.profile for s in self.settings}) > 1 else []),
                 *(n for n in self.options
                   if len({fmt_value(s.get(n)) for s in self.settings}) > 1)]
        return tuple(names)


# -- parsing ----------------------------------------------------------------------------------


def _short(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 200:
        return f"a number of about {int(v.bit_length() * 0.30103)} digits"
    r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def read_grid(path: str | Path) -> Grid:
    """Read and check a grid file."""
    p = str(path)
    try:
        with open(p, "rb") as f:
            data = f.read(MAX_GRID_BYTES + 1)
    except OSError as e:
        raise GridError(f"{p}: cannot read the grid: {e.strerror or e}") from None
    if len(data) > MAX_GRID_BYTES:
        raise GridError(f"{p}: the grid is larger than {MAX_GRID_BYTES >> 20} MB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise GridError(f"{p}:{line}: the grid is not UTF-8 text (byte {e.start + 1})") \
            from None
    return parse_grid(text, p)


def _construct(node: yaml.Node) -> Any:
    return yaml.constructor.SafeConstructor().construct_document(node)


def parse_grid(text: str, path: str = "<grid>") -> Grid:
    """Parse and check grid ``text`` (``path`` names it in errors)."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else path
        raise GridError(f"{where}: not valid YAML: {getattr(e, 'problem', None) or e}") \
            from None
    except RecursionError:
        raise GridError(f"{path}: not valid YAML: nested too deeply") from None
    if root is None:
        raise GridError(f"{path}: the grid is empty (name at least one option)")
    if not isinstance(root, yaml.MappingNode):
        raise GridError(f"{path}:{root.start_mark.line + 1}: the grid must be a mapping of "
                        "option names to values")
    lines: dict[str, int] = {}
    raw: dict[str, Any] = {}
    for key_node, value_node in root.value:
        line = key_node.start_mark.line + 1
        name = _construct(key_node)
        if not isinstance(name, str):
            raise GridError(f"{path}:{line}: option names are strings, not {name!r}")
        if name in raw:
            raise GridError(f"{path}:{line}: {name}: given twice (first on line {lines[name]})")
        if name not in OPTIONS and name not in RESERVED:
            raise GridError(f"{path}:{line}: unknown option {name!r} (tunable: "
                            f"{', '.join(OPTIONS)}; also {', '.join(RESERVED)})")
        try:
            raw[name] = _construct(value_node)
        except yaml.YAMLError as e:  # pragma: no cover - compose already checked it
            raise GridError(f"{path}:{line}: {name}: {e}") from None
        except RecursionError:
            raise GridError(f"{path}:{line}: {name}: nested too deeply") from None
        lines[name] = line

    def fail(name: str, msg: str) -> GridError:
        return GridError(f"{path}:{lines[name]}: {name}: {msg}")

    samples = raw.get("samples")
    if samples is not None and (isinstance(samples, bool) or not isinstance(samples, int)
                                or not 1 <= samples <= MAX_SAMPLES):
        raise fail("samples", f"must be a whole number from 1 to {MAX_SAMPLES:,} (got "
                              f"{_short(samples)})")
    seed = raw.get("seed", 0)
    if "seed" in raw:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise fail("seed", f"must be a whole number (got {seed!r})")
        if samples is None:
            raise fail("seed", "only a random search (samples: N) uses a seed")
    profiles = raw.get("profile", DEFAULT_PROFILE)
    plist = profiles if isinstance(profiles, list) else [profiles]
    if not plist:
        raise fail("profile", "an empty list")
    for p in plist:
        if not isinstance(p, str) or p not in PROFILES:
            raise fail("profile", f"unknown profile {p!r} (this version declares: "
                                  f"{', '.join(PROFILES)})")
    profile_values: list[str] = list(dict.fromkeys(plist))

    domains: dict[str, _Domain] = {}
    for name in raw:  # in the grid's order: the settings are numbered in that order
        if name in OPTIONS:
            try:
                domains[name] = _domain(OPTIONS[name], raw[name], random_search=samples
                                        is not None)
            except ValueError as e:
                raise fail(name, str(e)) from None
    if not domains and len(profile_values) == 1:
        raise GridError(f"{path}: the grid names no option to tune (tunable: "
                        f"{', '.join(OPTIONS)})")
    for name, (other, needed) in REQUIRES.items():
        if name in domains and other == "profile":
            if needed not in profile_values:
                raise fail(name, f"only matters with profile: {needed}; put {needed} among "
                                 f"the grid's profiles")
            continue
        if name in domains and other not in domains and name == "interruption_after":
            continue  # detection is on by default (stereo sessions)
        if name in domains and (other not in domains
                                or needed not in domains[other].values):
            raise fail(name, f"only matters with {other}: {fmt_value(needed)}; put "
                             f"{fmt_value(needed)} among the grid's {other} values")
    names = tuple(domains)
    notes: list[str] = []
    if samples is None:
        size = len(profile_values) * math.prod(len(d.values) for d in domains.values())
        if size > MAX_SETTINGS:
            raise GridError(f"{path}: the grid has {size:,} settings (at most "
                            f"{MAX_SETTINGS:,}); use a random search (samples: N)")
        points: Iterator[tuple[Any, ...]] = itertools.product(
            profile_values, *(domains[n].values for n in names))
        drawn = list(points)
    else:
        rng = random.Random(seed)
        drawn = []
        seen: set[tuple[Any, ...]] = set()
        tries = 0
        while len(drawn) < samples and tries < samples * 100:
            tries += 1
            point = (rng.choice(profile_values), *(domains[n].draw(rng) for n in names))
            if point not in seen:
                seen.add(point)
                drawn.append(point)
        if len(drawn) < samples:
            notes.append(f"{len(drawn)} distinct settings drawn (the grid has no more): "
                         f"fewer than samples: {samples}")
    settings: list[Setting] = []
    keys: set[tuple[Any, ...]] = set()
    merged = inverted = 0
    for point in drawn:
        values = dict(zip(names, point[1:], strict=True))
        for name, (other, needed) in REQUIRES.items():
            there = point[0] if other == "profile" else values.get(other, needed)
            if name in values and (other == "profile" or other in values) and there != needed:
                del values[name]
        if values.get("eou_model") == "smart-turn":  # the fused model is the host's model
            for name in ("turn_detection", "unlikely_threshold"):
                values.pop(name, None)
        if "min_delay" in values and "max_delay" in values and \
                values["min_delay"] > values["max_delay"]:
            inverted += 1
            continue
        key = (point[0], *sorted(values.items(), key=lambda kv: kv[0]))
        if key in keys:
            merged += 1
            continue
        keys.add(key)
        settings.append(Setting(len(settings), point[0], tuple(values.items())))
    if merged:
        notes.append(f"{merged} setting(s) differed only in options that do not matter there "
                     "(alpha with fixed endpointing, unlikely_threshold with vad, "
                     "interruption_after without detection, turn_detection and "
                     "unlikely_threshold with eou_model: smart-turn): run once")
    if inverted:
        notes.append(f"{inverted} setting(s) with min_delay > max_delay skipped")
    if not settings:
        raise GridError(f"{path}: no setting left to run ({'; '.join(notes)})")
    return Grid(path, names, tuple(settings), tuple(notes), samples, int(seed))


@attrs.frozen
class _Domain:
    """The values an option takes: listed, or a continuous range (random search only)."""

    values: tuple[Any, ...]
    low: float | None = None
    high: float | None = None

    def draw(self, rng: random.Random) -> Any:
        if self.values:
            return rng.choice(self.values)
        assert self.low is not None and self.high is not None
        return round(rng.uniform(self.low, self.high), 3)


def _domain(opt: Option, v: Any, *, random_search: bool) -> _Domain:
    """The values a grid line gives (ValueError with the reason)."""
    if isinstance(v, dict):
        if not opt.numeric:
            raise ValueError("takes a value or a list of values, not a range")
        unknown = set(v) - {"from", "to", "step"}
        if unknown:
            raise ValueError(f"a range has from, to and step; not {', '.join(sorted(unknown))}")
        if "from" not in v or "to" not in v:
            raise ValueError("a range needs from and to (and step)")
        num = _number(-math.inf)
        try:
            lo, hi = num(v["from"]), num(v["to"])
        except ValueError as e:
            raise ValueError(f"range bounds: {e}") from None
        if hi < lo:
            raise ValueError(f"range: to ({hi:g}) is below from ({lo:g})")
        for x in (lo, hi):
            opt.check(x)
        if "step" not in v:
            if not random_search:
                raise ValueError("a range needs a step (or use samples: N for a random search)")
            return _Domain((), lo, hi)
        try:
            step = _number(0.0, lo_open=True)(v["step"])
        except ValueError as e:
            raise ValueError(f"range step: {e}") from None
        n = math.floor((hi - lo) / step + 1e-9) + 1
        if n > MAX_SETTINGS:
            raise ValueError(f"the range has {n:,} values")
        return _Domain(tuple(opt.check(round(lo + i * step, 10)) for i in range(n)))
    items = v if isinstance(v, list) else [v]
    if not items:
        raise ValueError("an empty list")
    out: list[Any] = []
    for x in items:
        y = opt.check(x)
        if y not in out:
            out.append(y)
    return _Domain(tuple(out))
