"""The options, the interruption detector and the pause an adapter's arguments make, the same
way in both adapters."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from ...core.profiles import Profile, get_profile
from ...options import EngineOptions
from .overlap import OverlapDetector
from .pause import OutputPause, attach_pause


@attrs.define
class TurnTaking:
    """What :func:`turn_taking` made: the ``profile``, the session's ``options``, its
    ``detector`` (the app's, the built-in one, or None), the ``builtin`` overlap detector
    (None with ``barge_in=None`` or the app's detector) and the ``pause`` it drives."""

    profile: Profile
    options: EngineOptions
    detector: Any
    builtin: OverlapDetector | None
    pause: OutputPause | None


def turn_taking(profile: str | Profile | None,
                options: EngineOptions | Mapping[str, Any] | None, *,
                detector: Any, barge_in: float | None, pause_after: float | None,
                resume_after: float | None, pause: Callable[[], bool],
                resume: Callable[[], None], defaults: Mapping[str, Any]) -> TurnTaking:
    """``options`` over the profile's (an :class:`EngineOptions` as given; a mapping of changes
    over ``defaults`` over the profile's), the built-in :class:`OverlapDetector` of
    ``barge_in`` seconds unless the app gave a ``detector``, and its :class:`OutputPause`
    acting through ``pause`` and ``resume``."""
    prof = get_profile(profile)
    builtin = OverlapDetector(barge_in) if detector is None and barge_in is not None else None
    if not isinstance(options, EngineOptions):
        options = prof.options({**defaults, **(options or {})})
    return TurnTaking(prof, options, detector if detector is not None else builtin, builtin,
                      attach_pause(builtin, pause_after, resume_after, pause, resume))
