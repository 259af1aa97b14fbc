"""Options of a session: public, frozen values checked when they are made.

Defaults follow the reference recogniser except where a defect was fixed: the end
backchannel cooldown is 1.0 s, not 3.5 s (D8).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, get_args

import attrs

from ._methods import attrs_eq, attrs_hash, attrs_repr
from .errors import ConfigError

TurnDetection = Literal["vad", "stt", "manual", "realtime_llm", "model"]
TURN_DETECTION: tuple[TurnDetection | None, ...] = (*get_args(TurnDetection), None)
EndpointingMode = Literal["fixed", "dynamic"]

#: The longest duration an option or a session bound accepts, in seconds (a day): no wait of a
#: conversation is longer, and a bound keeps every deadline a finite, exact number.
MAX_DURATION = 86_400.0
#: The largest word count a limit accepts.
MAX_WORDS = 1_000_000


def _finite(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, float)) and math.isfinite(v)


def _duration(v: Any) -> bool:
    """A finite number of seconds in [0, MAX_DURATION]."""
    return _finite(v) and 0 <= v <= MAX_DURATION


@attrs.define(frozen=True, kw_only=True, repr=False, eq=False)
class EndpointingOptions:
    """Endpointing settings. ``min_delay``/``max_delay`` are initial values and bounds."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    mode: EndpointingMode = "fixed"
    min_delay: float = 0.5
    max_delay: float = 3.0
    alpha: float = 0.9

    def __attrs_post_init__(self) -> None:
        if self.mode not in get_args(EndpointingMode):
            raise ConfigError(f"endpointing.mode must be 'fixed' or 'dynamic', not {self.mode!r}")
        for name in ("min_delay", "max_delay", "alpha"):
            v = getattr(self, name)
            if not _finite(v):
                raise ConfigError(f"endpointing.{name} must be a finite number, not {v!r}")
        if self.min_delay < 0 or self.max_delay < 0:
            raise ConfigError("endpointing delays must not be negative")
        for name in ("min_delay", "max_delay"):
            v = getattr(self, name)
            if not _duration(v):
                raise ConfigError(f"endpointing.{name} must be at most {MAX_DURATION:g} "
                                  f"seconds, not {v!r}")
        if self.mode == "dynamic" and not 0 < self.alpha <= 1:
            raise ConfigError(f"endpointing.alpha must be in (0, 1], not {self.alpha!r}")

    def merged(self, changes: dict[str, Any]) -> EndpointingOptions:
        """These settings with ``changes`` (a partial mapping) applied."""
        unknown = set(changes) - {"mode", "min_delay", "max_delay", "alpha"}
        if unknown:
            raise ConfigError(f"unknown endpointing field(s): {sorted(map(str, unknown))}")
        return attrs.evolve(self, **changes)


def _boundary(value: Any) -> tuple[float, float] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        value = float(value)
    if isinstance(value, (int, float)):
        value = (value, value)
    if not isinstance(value, (list, tuple)):
        raise ConfigError("backchannel_boundary must be a number, two numbers, or null")
    if len(value) == 0:
        return None
    if len(value) != 2 or not all(_duration(x) for x in value):
        raise ConfigError(f"backchannel_boundary must be two numbers of seconds between 0 and "
                          f"{MAX_DURATION:g}, not {value!r}")
    return (float(value[0]), float(value[1]))


def _limit(value: Any, name: str) -> float | None:
    if value is None:
        return None
    top = MAX_WORDS if name == "max_words" else MAX_DURATION
    if not _finite(value) or not 0 <= value <= top:
        raise ConfigError(f"user_turn_limit.{name} must be a number between 0 and {top:g}, or "
                          f"null, not {value!r}")
    return float(value)


def _max_words(value: Any) -> float | None:
    return _limit(value, "max_words")


def _max_duration(value: Any) -> float | None:
    return _limit(value, "max_duration")


@attrs.define(frozen=True, kw_only=True, repr=False, eq=False)
class UserTurnLimit:
    """Report when the user's words or speaking time since the agent last spoke reach this."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    max_words: float | None = attrs.field(default=None, converter=_max_words)
    max_duration: float | None = attrs.field(default=None, converter=_max_duration)

    @classmethod
    def from_mapping(cls, m: dict[str, Any] | None) -> UserTurnLimit:
        """Limits from a mapping with the keys ``max_words``/``max_duration`` (missing = none)."""
        m = dict(m or {})
        unknown = set(m) - {"max_words", "max_duration"}
        if unknown:
            raise ConfigError(f"unknown user_turn_limit field(s): {sorted(map(str, unknown))}")
        return cls(max_words=m.get("max_words"), max_duration=m.get("max_duration"))


def _timeout(v: Any) -> float:
    if not _duration(v) or v <= 0:
        raise ConfigError(f"transcript_timeout must be a positive number of seconds up to "
                          f"{MAX_DURATION:g}, not {v!r}")
    return float(v)


def _max_words_bc(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_WORDS:
        raise ConfigError(f"backchannel_max_words must be a whole number from 0 to {MAX_WORDS}, "
                          f"not {v!r}")
    return v


def _max_duration_bc(v: Any) -> float:
    if not _finite(v) or v < 0:
        raise ConfigError("backchannel_max_duration must be a number of seconds >= 0, not "
                          f"{v!r}")
    return float(v)


#: The most mid-turn pauses a session may remember (``pause_memory``).
MAX_PAUSE_MEMORY = 1000


def _pause_memory(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_PAUSE_MEMORY:
        raise ConfigError(f"pause_memory must be a whole number from 0 to {MAX_PAUSE_MEMORY}, "
                          f"not {v!r}")
    return v


def _pause_margin(v: Any) -> float:
    if not _duration(v):
        raise ConfigError(f"pause_margin must be a number of seconds from 0 to "
                          f"{MAX_DURATION:g}, not {v!r}")
    return float(v)


Bounds = Literal["positive", "non_negative", "count"]


@attrs.frozen(repr=False, eq=False)
class OptionInfo:
    """What the rest of turnfsm derives from a profile option of :class:`EngineOptions`
    (declared once, as the field's ``metadata["turnfsm"]``): the trace header key of the
    same name (turnfsm's own: the reference's replayer refuses it), checked by ``bounds``;
    the ``listen`` flag; the tuning grid's entry. Read with :func:`profile_options`."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    flag: str  # the ``listen`` flag (its dest is the option's name)
    metavar: str
    cli_type: Literal["positive_seconds", "seconds", "count"]  # the flag's argument type
    cli_help: str
    bounds: Bounds  # in a trace header and a tuning grid
    grid_default: str  # the value a WAV session gets when a grid does not name it
    grid_help: str
    profile: str = "default"  # the profile whose chart reads it (a grid requires it)


def _info(default: Any, converter: Any, info: OptionInfo) -> Any:
    return attrs.field(default=default, converter=converter, metadata={"turnfsm": info})


def turn_detection(v: Any) -> TurnDetection | None:
    """``v`` checked as a turn-detection mode (None = automatic, as ``vad``)."""
    if v not in TURN_DETECTION:
        raise ConfigError(f"turn_detection must be one of {TURN_DETECTION}, not {v!r}")
    return v  # type: ignore[no-any-return]


@attrs.define(frozen=True, kw_only=True, repr=False, eq=False)
class EngineOptions:
    """Options of one session (see the README for each)."""

    __repr__ = attrs_repr
    __eq__ = attrs_eq
    __hash__ = attrs_hash

    turn_detection: TurnDetection | None = attrs.field(default=None, converter=turn_detection)
    endpointing: EndpointingOptions = attrs.field(factory=EndpointingOptions)
    backchannel_boundary: tuple[float, float] | None = attrs.field(
        default=(1.0, 1.0), converter=_boundary)
    user_turn_limit: UserTurnLimit = attrs.field(factory=UserTurnLimit)
    vad: bool = True
    stt: bool = True
    interruption_detection: bool = False
    speech_feedback: bool = True
    # report each VAD window forwarded (``VadInference``); off, a window returns no output
    # (most inputs are windows: a host that does not forward them saves an object each)
    vad_window_outputs: bool = True
    # default profile: how long after a VAD end of speech the final transcript of that
    # speech is awaited before the turn may end without it (the STT's latency, seconds)
    transcript_timeout: float = _info(1.5, _timeout, OptionInfo(
        flag="--transcript-timeout", metavar="SECONDS", cli_type="positive_seconds",
        cli_help="default profile: how long after an end of speech its final transcript is "
                 "awaited",
        bounds="positive", grid_default="1.5",
        grid_help="default profile: how long after an end of speech its final transcript is "
                  "awaited before the turn may end without it (s)"))
    # default profile: an utterance over agent speech of at most this many words (or a
    # phrase of the backchannel list) is a backchannel (0: only the list)
    backchannel_max_words: int = _info(2, _max_words_bc, OptionInfo(
        flag="--backchannel-max-words", metavar="N", cli_type="count",
        cli_help="default profile: utterances over agent speech of at most this many words "
                 "are backchannels",
        bounds="count", grid_default="2",
        grid_help="default profile: user speech over the agent of at most this many words (or "
                  "a phrase of the backchannel list) is a backchannel: dropped, no "
                  "interruption"))
    # default profile, without transcripts (no STT attached) and without a detector's
    # verdict: a VAD segment over agent speech at most this long (seconds, from its onset to
    # the end of its speech) is a backchannel (0: none is)
    backchannel_max_duration: float = _info(1.0, _max_duration_bc, OptionInfo(
        flag="--backchannel-max-duration", metavar="SECONDS", cli_type="seconds",
        cli_help="default profile, without transcripts: speech over agent speech no detector "
                 "judged, at most this long, is a backchannel (0: none is)",
        bounds="non_negative", grid_default="1.0",
        grid_help="default profile, sessions without transcripts: user speech over the agent "
                  "no detector judged, at most this long, is a backchannel (s)"))
    # default profile: the session's own pauses. A mid-turn pause is one after which the same
    # turn went on (speech resumed during an end-of-turn wait and cancelled it); the latest
    # pause_memory of them are remembered, and a later automatic wait lasts at least the
    # longest of them plus pause_margin, never more than max_delay (0: none remembered)
    pause_memory: int = _info(3, _pause_memory, OptionInfo(
        flag="--pause-memory", metavar="N", cli_type="count",
        cli_help="default profile: how many of the session's latest mid-turn pauses are "
                 "remembered; a later wait lasts at least the longest plus --pause-margin "
                 "(at most max_delay; 0: off)",
        bounds="count", grid_default="3",
        grid_help="default profile: how many of the session's latest mid-turn pauses (speech "
                  "that resumed during an end-of-turn wait) lengthen later waits (0: off)"))
    pause_margin: float = _info(0.2, _pause_margin, OptionInfo(
        flag="--pause-margin", metavar="SECONDS", cli_type="seconds",
        cli_help="default profile: how much longer than the longest remembered mid-turn "
                 "pause a later wait lasts",
        bounds="non_negative", grid_default="0.2",
        grid_help="default profile: how much longer than the longest remembered mid-turn "
                  "pause a later end-of-turn wait lasts (s)"))


def profile_options() -> dict[str, OptionInfo]:
    """The options a profile's chart reads that carry :class:`OptionInfo` (trace header
    keys, ``listen`` flags, tuning grid entries), in field order."""
    return {a.name: a.metadata["turnfsm"] for a in attrs.fields(EngineOptions)
            if "turnfsm" in a.metadata}


def options_with(base: EngineOptions, changes: Mapping[str, Any], where: str = "options"
                 ) -> EngineOptions:
    """``base`` with ``changes`` applied: a mapping of :class:`EngineOptions` fields, where
    ``endpointing`` and ``user_turn_limit`` are partial mappings merged into the base's
    (ConfigError naming ``where`` and the field when one is unknown or bad)."""
    if not isinstance(changes, Mapping):
        raise ConfigError(f"{where}: must be a mapping of option names, not {changes!r}")
    names = {a.name for a in attrs.fields(EngineOptions)}
    unknown = sorted(str(k) for k in set(changes) - names)  # keys may be of any type
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown} (expected some of "
                          f"{sorted(names)})")
    kw = dict(changes)
    try:
        if "endpointing" in kw:
            ep = kw["endpointing"]
            kw["endpointing"] = ep if isinstance(ep, EndpointingOptions) else \
                base.endpointing.merged(dict(ep or {}))
        if "user_turn_limit" in kw:
            lim = kw["user_turn_limit"]
            kw["user_turn_limit"] = lim if isinstance(lim, UserTurnLimit) else \
                UserTurnLimit.from_mapping({**attrs.asdict(base.user_turn_limit),
                                            **dict(lim or {})})
        return attrs.evolve(base, **kw)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}: {e}") from None
