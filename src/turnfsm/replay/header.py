"""The trace header (the ``config`` line): its fields, their defaults and their checks.

:func:`parse_config` checks a header and fills its defaults; a problem calls ``err(message,
field)``, which raises (the reader's :class:`~turnfsm.errors.TraceError` names the file and
line 1). The value checks (:func:`_check_value` and the helpers below it) are shared with
the input lines' checks of :mod:`turnfsm.replay.trace`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from ..events import MAX_NUMBER, MAX_WAIT
from ..options import TURN_DETECTION, profile_options

#: The latest time a trace input may carry, and the longest ``time_limit`` (seconds; Unix
#: epoch times fit), so that the last input plus the limit stays within what an engine takes.
MAX_TRACE_TIME = MAX_NUMBER / 2

_NUM, _BOOL, _STR, _OPTNUM, _ANY = "number", "bool", "string", "number-or-null", "any"
_OPTSTR = "string-or-null"
_NUMLIST = "numbers-or-null"  # a list of numbers from 0 to 1 (word confidences), or null
#: The most entries a list of word confidences holds.
MAX_LIST = 100_000

#: Header fields only turnfsm reads (the reference's replayer refuses them).
TURNFSM_FIELDS = ("profile", *profile_options())
#: Input fields only turnfsm reads (the reference's replayer refuses them too).
TURNFSM_INPUT_FIELDS = ("word_confidences",)
#: Fields of one kind of input only turnfsm reads (the same name elsewhere is the
#: reference's: a transcript's ``text``).
TURNFSM_KIND_FIELDS = {"agent.speech_started": ("text",)}
CONFIG_FIELDS = {"comment", "turn_detection", "vad", "stt", "interruption_detection",
                 "endpointing", "turn_detector", "backchannel_boundary", "user_turn_limit",
                 "end_of_turn_returns", "glue", "time_limit", *TURNFSM_FIELDS}
#: The profile of a trace whose header names none.
TRACE_PROFILE = "livekit"
ENDPOINTING_DEFAULTS = {"mode": "fixed", "min_delay": 0.5, "max_delay": 3.0, "alpha": 0.9}
TURN_DETECTOR_DEFAULTS: dict[str, Any] = {"probability": 1.0, "probabilities": None,
                                          "unlikely_threshold": 0.1, "languages": None,
                                          "latency": 0.0, "fail_calls": []}
USER_TURN_LIMIT_DEFAULTS = {"max_words": None, "max_duration": None}
GLUE_DEFAULTS = {"speech_feedback": True, "interruption_feedback": True,
                 "detector_error_fallback": True, "boundary_callback": True}
TURN_DETECTION_VALUES = TURN_DETECTION


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _show(v: Any) -> str:
    """``v`` as JSON for a message, cut to 60 characters (a 400-digit number, a long text,
    a lone surrogate are shown, not re-raised)."""
    if isinstance(v, int) and not isinstance(v, bool) and v.bit_length() > 200:
        return f"a number of about {int(v.bit_length() * 0.30103)} digits"
    try:
        r = json.dumps(v)
    except (ValueError, TypeError, RecursionError):
        r = repr(v)
    return r if len(r) <= 60 else r[:57] + "..."


def _unicode(v: str) -> bool:
    """Whether text ``v`` can be written as UTF-8 (no lone surrogate from a ``\\ud800``)."""
    if v.isascii():
        return True
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_value(v: Any, typ: str, err: Any, name: str) -> None:
    if typ == _NUM or (typ == _OPTNUM and v is not None):
        if not _is_num(v):
            err(f"must be a number, not {_show(v)}", name)
        if isinstance(v, float) and not math.isfinite(v):
            err(f"must be finite, not {v}", name)
        if not -MAX_NUMBER <= v <= MAX_NUMBER:
            err(f"must be at most {MAX_NUMBER:g} in size, not {_show(v)}", name)
    elif typ == _NUMLIST and v is not None:
        if not isinstance(v, list):
            err(f"must be a list of numbers from 0 to 1, or null, not {_show(v)}", name)
        if len(v) > MAX_LIST:
            err(f"holds {len(v)} numbers; at most {MAX_LIST}", name)
        for i, x in enumerate(v):
            if not _is_num(x) or not 0.0 <= x <= 1.0:
                err(f"[{i}] must be a number from 0 to 1, not {_show(x)}", name)
    elif typ == _BOOL and not isinstance(v, bool):
        err(f"must be true or false, not {_show(v)}", name)
    elif typ == _STR or (typ == _OPTSTR and v is not None):
        if not isinstance(v, str):
            err(f"must be a string{' or null' if typ == _OPTSTR else ''}, not {_show(v)}",
                name)
        if not _unicode(v):
            err("must be Unicode text (it holds a lone surrogate such as \\ud800)", name)


def _merge(defaults: dict[str, Any], given: Any, err: Any, name: str) -> dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        err("must be an object", name)
    for k in given:
        if k not in defaults:
            err(f"unknown field (expected one of {sorted(defaults)})", f"{name}.{k}")
    outd = dict(defaults)
    outd.update(given)
    return outd


def _finite_tree(v: Any, err: Any, name: str) -> None:
    if isinstance(v, float) and not math.isfinite(v):
        err(f"must be finite, not {v}", name)
    elif _is_num(v) and not -MAX_NUMBER <= v <= MAX_NUMBER:
        err(f"must be at most {MAX_NUMBER:g} in size, not {_show(v)}", name)
    elif isinstance(v, str) and not _unicode(v):
        err("must be Unicode text (it holds a lone surrogate such as \\ud800)", name)
    elif isinstance(v, dict):
        for k, x in v.items():
            _finite_tree(x, err, f"{name}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            _finite_tree(x, err, f"{name}[{i}]")


def _check_endpointing(ep: Any, err: Any, name: str) -> None:
    if not isinstance(ep, dict):
        err("must be an object", name)
    for k, v in ep.items():
        if k not in ENDPOINTING_DEFAULTS:
            err(f"unknown field (expected one of {sorted(ENDPOINTING_DEFAULTS)})", f"{name}.{k}")
        if k == "mode":
            if v not in ("fixed", "dynamic"):
                err("must be 'fixed' or 'dynamic'", f"{name}.mode")
            continue
        _check_value(v, _NUM, err, f"{name}.{k}")
        if v < 0:
            err(f"must not be negative ({v})", f"{name}.{k}")
        if k == "alpha" and not 0 < v <= 1:
            err(f"must be in (0, 1] ({v})", f"{name}.alpha")


def _check_limits(utl: Any, err: Any, name: str) -> None:
    if utl is not None and not isinstance(utl, dict):
        err("must be an object", name)
    for k, v in (utl or {}).items():
        if k not in USER_TURN_LIMIT_DEFAULTS:
            err(f"unknown field (expected one of {sorted(USER_TURN_LIMIT_DEFAULTS)})",
                f"{name}.{k}")
        if v is not None:
            _check_value(v, _NUM, err, f"{name}.{k}")


def _check_probability(v: Any, err: Any, name: str, *, null: bool = False) -> None:
    if v is None and null:
        return
    _check_value(v, _NUM, err, name)
    if not 0 <= v <= 1:
        err(f"must be a probability in [0, 1], not {_show(v)}", name)


def _check_time_limit(v: Any, err: Any) -> None:
    if v > MAX_TRACE_TIME:
        err(f"must be at most {MAX_TRACE_TIME:g} seconds, not {_show(v)}", "time_limit")


def _check_turn_detector(td: dict[str, Any], err: Any) -> None:
    """The scripted model's fields, checked when the header is read (so every replay mode
    refuses a bad one the same way, before anything runs)."""
    name = "turn_detector"
    _check_value(td["latency"], _NUM, err, f"{name}.latency")
    if not 0 <= td["latency"] <= MAX_WAIT:
        err(f"must be between 0 and {MAX_WAIT:g} seconds, not {_show(td['latency'])}",
            f"{name}.latency")
    _check_probability(td["probability"], err, f"{name}.probability")
    probs = td["probabilities"]
    if probs is not None:
        if not isinstance(probs, list) or not probs:
            err("must be null or a non-empty list of probabilities", f"{name}.probabilities")
        for i, x in enumerate(probs):
            _check_probability(x, err, f"{name}.probabilities[{i}]")
    thr = td["unlikely_threshold"]
    if isinstance(thr, dict):
        for lang, x in thr.items():
            _check_probability(x, err, f"{name}.unlikely_threshold.{lang}", null=True)
    else:
        _check_probability(thr, err, f"{name}.unlikely_threshold", null=True)
    langs = td["languages"]
    if langs is not None and (not isinstance(langs, list) or
                              not all(x is None or isinstance(x, str) for x in langs)):
        err("must be null or a list of language codes (strings or null)", f"{name}.languages")
    calls = td["fail_calls"]
    if calls is None:
        calls = td["fail_calls"] = []
    if not isinstance(calls, list) or not all(
            isinstance(x, int) and not isinstance(x, bool) and x >= 1 for x in calls):
        err("must be a list of call numbers (whole numbers >= 1)", f"{name}.fail_calls")


class Config(dict[str, Any]):
    """A trace header with its defaults filled in; ``given``: the fields the header itself
    set (``endpointing.min_delay`` for a field of a group), so that a profile the header
    names keeps its own option defaults where the header is silent."""

    given: frozenset[str] = frozenset()


def parse_config(header: dict[str, Any], err: Any) -> Config:
    """Check the header and fill its defaults (``err(message, field)`` raises)."""
    for k in header:
        if k != "kind" and k not in CONFIG_FIELDS:
            err(f"unknown header field (expected one of {sorted(CONFIG_FIELDS)})", k)
    _finite_tree(header, err, "config")
    cfg: dict[str, Any] = {"comment": "", "turn_detection": None, "vad": True, "stt": True,
                           "interruption_detection": False, "backchannel_boundary": [1.0, 3.5],
                           "end_of_turn_returns": True, "time_limit": 600.0,
                           "profile": TRACE_PROFILE}
    cfg.update({k: v for k, v in header.items() if k != "kind"})
    if cfg["turn_detection"] not in TURN_DETECTION_VALUES:
        err(f"must be one of {TURN_DETECTION_VALUES}", "turn_detection")
    for k in ("vad", "stt", "interruption_detection"):
        _check_value(cfg[k], _BOOL, err, k)
    _check_value(cfg["time_limit"], _NUM, err, "time_limit")
    _check_value(cfg["profile"], _STR, err, "profile")
    for k, info in profile_options().items():  # turnfsm's own header keys, by their bounds
        if k not in header:
            continue
        v = cfg[k]
        if info.bounds == "count":
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                err("must be a whole number >= 0", k)
            continue
        _check_value(v, _NUM, err, k)
        if info.bounds == "positive" and v <= 0:
            err("must be positive", k)
        if info.bounds == "non_negative" and v < 0:
            err("must not be negative", k)
    if cfg["time_limit"] < 0:
        err("must not be negative", "time_limit")
    _check_endpointing(header.get("endpointing") or {}, err, "endpointing")
    _check_limits(header.get("user_turn_limit"), err, "user_turn_limit")
    cfg["endpointing"] = _merge(ENDPOINTING_DEFAULTS, header.get("endpointing"), err, "endpointing")
    cfg["turn_detector"] = _merge(TURN_DETECTOR_DEFAULTS, header.get("turn_detector"), err,
                                  "turn_detector")
    cfg["user_turn_limit"] = _merge(USER_TURN_LIMIT_DEFAULTS, header.get("user_turn_limit"), err,
                                    "user_turn_limit")
    cfg["glue"] = _merge(GLUE_DEFAULTS, header.get("glue"), err, "glue")
    for k, v in cfg["glue"].items():
        _check_value(v, _BOOL, err, f"glue.{k}")
    _check_time_limit(cfg["time_limit"], err)
    _check_turn_detector(cfg["turn_detector"], err)
    ret = cfg["end_of_turn_returns"]
    if not isinstance(ret, bool) and not (
            isinstance(ret, list) and ret and all(isinstance(x, bool) for x in ret)):
        err("must be a boolean or a non-empty list of booleans", "end_of_turn_returns")
    config = Config(cfg)
    config.given = frozenset(
        [k for k in header if k != "kind"]
        + [f"{g}.{k}" for g in ("endpointing", "user_turn_limit", "glue")
           if isinstance(header.get(g), dict) for k in header[g]])
    return config
