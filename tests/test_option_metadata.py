"""The option plumbing derived from EngineOptions' field metadata (trace header keys and
their checks, listen's flags, the tuning grid's entries) equals what was written by hand."""

from __future__ import annotations

import argparse
import math
from typing import NoReturn

import pytest

from turnfsm.audio.command import FLAGS, engine_changes
from turnfsm.cli import PROFILE_OPTIONS, build_parser
from turnfsm.core.profiles import get_profile
from turnfsm.errors import TraceError
from turnfsm.options import profile_options
from turnfsm.replay.trace import TURNFSM_FIELDS, parse_config
from turnfsm.tuning.grid import OPTIONS, REQUIRES

NAMES = ("transcript_timeout", "backchannel_max_words", "backchannel_max_duration", "pause_memory",
         "pause_margin")


def test_the_profile_options_and_their_header_keys() -> None:
    """The options the default profile's chart reads are turnfsm's own header keys."""
    assert tuple(profile_options()) == NAMES
    assert ("profile", *NAMES) == TURNFSM_FIELDS


def test_listen_flags_and_profile_defaults_are_derived() -> None:
    """Each option has its listen flag (errors name it) and takes the profile's default."""
    assert {k: FLAGS[k] for k in NAMES} == {
        "transcript_timeout": "--transcript-timeout",
        "backchannel_max_words": "--backchannel-max-words",
        "backchannel_max_duration": "--backchannel-max-duration",
        "pause_memory": "--pause-memory", "pause_margin": "--pause-margin"}
    assert {k: PROFILE_OPTIONS[k] for k in NAMES} == {k: (k,) for k in NAMES}
    args = build_parser().parse_args(["listen", "x.wav", "--transcript-timeout", "0.8",
                                      "--backchannel-max-words", "3"])
    changes = engine_changes(args, get_profile("default"), stereo=False, transcripts=True)
    assert changes["transcript_timeout"] == 0.8 and changes["backchannel_max_words"] == 3
    assert "backchannel_max_duration" not in changes  # not given: the profile's
    # the flag takes what the option takes: 0 (no speech is a backchannel by its length)
    zero = build_parser().parse_args(["listen", "x.wav", "--backchannel-max-duration", "0"])
    assert engine_changes(zero, get_profile("default"), stereo=True,
                          transcripts=False)["backchannel_max_duration"] == 0.0
    with pytest.raises(SystemExit):  # a negative duration is refused by the flag
        build_parser().parse_args(["listen", "x.wav", "--backchannel-max-duration", "-1"])


@pytest.mark.parametrize(("name", "good", "bad", "message"), [
    ("transcript_timeout", 0.5, 0.0, "must be positive"),
    ("backchannel_max_words", 0, 1.5, "must be a whole number >= 0"),
    ("backchannel_max_duration", 0.0, -0.1, "must not be negative"),
])
def test_header_checks_follow_the_bounds(name: str, good: float, bad: float,
                                         message: str) -> None:
    """A header key is checked by its option's bounds, with the message it had."""
    def err(msg: str, field: str | None = None) -> NoReturn:
        raise TraceError(msg, path="t.jsonl", line=1, field=field)
    assert parse_config({"kind": "config", name: good}, err)[name] == good
    with pytest.raises(TraceError, match=message):
        parse_config({"kind": "config", name: bad}, err)


def test_grid_entries_are_derived() -> None:
    """The grid's entries check as before (bounds), default as before, and need the default
    profile."""
    for k in NAMES:
        assert OPTIONS[k].side == "engine" and OPTIONS[k].numeric
        assert REQUIRES[k] == ("profile", "default")
    assert [OPTIONS[k].default for k in NAMES] == ["1.5", "2", "1.0", "3", "0.2"]
    assert OPTIONS["transcript_timeout"].check(0.2) == 0.2
    assert OPTIONS["backchannel_max_words"].check(3.0) == 3
    assert OPTIONS["backchannel_max_duration"].check(0.0) == 0.0
    for k, v in (("transcript_timeout", 0.0), ("backchannel_max_words", 1.5),
                 ("backchannel_max_duration", -1.0), ("transcript_timeout", math.inf)):
        with pytest.raises(ValueError):
            OPTIONS[k].check(v)
    assert isinstance(build_parser(), argparse.ArgumentParser)
