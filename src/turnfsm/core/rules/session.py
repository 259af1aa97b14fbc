"""Lifecycle and mode: closing, option changes, leaving stt mode."""

from __future__ import annotations

from typing import Any

import attrs

from ... import events as ev
from ...errors import ConfigError
from ...options import EngineOptions, UserTurnLimit, turn_detection
from ..context import Context
from ..registry import RULES
from .commit import abandon_decision

MODE_EVENTS = {"stt": "to_stt", "manual": "to_manual", "realtime_llm": "to_realtime"}


def mode_event(td: str | None) -> str:
    """The chart event that switches the mode region to turn detection ``td``."""
    return MODE_EVENTS.get(td or "", "to_vad")


@RULES.action("close_session")
def close_session(cx: Context, e: Any) -> None:
    """Whatever is still undelivered once the closing decision settled is dropped (D28)."""
    cx.raise_("close_settled")


@RULES.action("drop_leftovers")
def drop_leftovers(cx: Context, e: Any) -> None:
    """No pending decision will deliver the turn (the turn region is idle or open when the
    close has settled): its finals are dropped with reason ``closed``."""
    abandon_decision(cx)
    cx.drop_turn("closed")


@RULES.action("drop_pending_decision")
def drop_pending_decision(cx: Context, e: Any) -> None:
    """A change to or from manual drops the pending decision and its authority (R9)."""
    cx.raise_("decision_dropped")


@RULES.action("leave_stt")
def leave_stt(cx: Context, e: Any) -> None:
    """The STT's end-of-speech authority belongs to stt mode."""
    cx.raise_("left_stt")


def staged_options(base: EngineOptions, e: ev.UpdateOptions) -> EngineOptions:
    """The options after change ``e`` over ``base``; every part is checked before anything
    applies (:class:`ConfigError`, nothing changed, when any part is invalid)."""
    try:
        new = base
        if e.endpointing is not None:
            new = attrs.evolve(new, endpointing=base.endpointing.merged(e.endpointing))
        if e.user_turn_limit is not None:
            new = attrs.evolve(new, user_turn_limit=UserTurnLimit.from_mapping(e.user_turn_limit))
        if e.set_turn_detection:
            new = attrs.evolve(new, turn_detection=turn_detection(e.turn_detection))
    except (ConfigError, TypeError, ValueError) as exc:
        raise ConfigError(f"UpdateOptions at t={e.t}: {exc}") from None
    return new


def apply_options(cx: Context, e: ev.UpdateOptions, new: EngineOptions) -> None:
    """Put options staged from ``e`` in force; a mode change is a chart event."""
    cx.apply_options(new)
    if e.set_turn_detection:
        cx.raise_(mode_event(new.turn_detection))
