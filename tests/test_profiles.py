"""Behaviour profiles: ``livekit`` (states.yaml) and ``default`` (profiles/default.yaml), and
an example of each of the default profile's rules, side by side with the livekit profile
where they differ: no orphans (the final wait), hesitations (the built-in end-of-turn
rules), backchannels (the judging gate), one speech onset per turn."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from turnfsm import Engine, EngineOptions, default_chart
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.core.profiles import DEFAULT_PROFILE, PROFILES, get_profile, read_profile
from turnfsm.errors import ChartError, ConfigError

ROOT = Path(__file__).resolve().parents[1]


class Run:
    """An engine fed inputs at their times; every end of turn is accepted at once."""

    def __init__(self, profile: str = "default", options: Any = None) -> None:
        self.e = Engine(options, profile=profile)
        self.outs: list[out.Output] = []

    def at(self, t: float, e: ev.Input) -> Run:
        self.advance(t)
        self._take(self.e.handle(e))
        return self

    def advance(self, t: float) -> Run:
        while (d := self.e.next_deadline()) is not None and d <= t:
            self._take(self.e.fire_next_timer())
        self._take(self.e.advance(t))
        return self

    def _take(self, outs: list[out.Output]) -> None:
        for o in outs:
            self.outs.append(o)
            if isinstance(o, out.EndOfTurn):
                self._take(self.e.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True)))

    def of(self, cls: type) -> list[Any]:
        return [o for o in self.outs if isinstance(o, cls)]

    def turns(self) -> list[tuple[float, str]]:
        return [(round(o.t, 6), o.new_transcript) for o in self.of(out.EndOfTurn)]


def speech(r: Run, start: float, end: float, text: str | None = None,
           final_at: float | None = None, **final: Any) -> Run:
    """A VAD segment from ``start`` to ``end`` (its end reported 0.2 s of silence later) and
    its final at ``final_at`` (default: 0.3 s after the speech)."""
    r.at(start + 0.1, ev.VadStartOfSpeech(t=start + 0.1, speech_duration=0.1))
    events: list[tuple[float, ev.Input]] = [
        (end + 0.2, ev.VadEndOfSpeech(t=end + 0.2, silence_duration=0.2))]
    if text is not None:
        fa = end + 0.3 if final_at is None else final_at
        events.append((fa, ev.SttFinal(t=fa, text=text, **final)))
    for t, e in sorted(events, key=lambda x: x[0]):
        r.at(t, e)
    return r


# -- profiles ----------------------------------------------------------------------------------


def test_the_default_profile_is_the_default_of_the_engine() -> None:
    """Engine() runs the default profile's chart (the livekit chart with its seams replaced:
    the final wait, the judge, ...); profile="livekit" runs states.yaml as written."""
    assert DEFAULT_PROFILE == "default" and set(PROFILES) == {"default", "livekit"}
    e = Engine()
    assert e.profile.name == "default" and e.chart is get_profile("default").chart
    regions = [r.name for r in e.chart.regions]
    # the seams turn reads on the same event stand before it
    assert regions.index("final_wait") < regions.index("turn")
    assert regions.index("model_source") == regions.index("turn") - 1
    gate = next(r for r in e.chart.regions if r.name == "gate")
    assert gate.states == ("passthrough", "holding")  # the base gate, not restated
    judge = next(r for r in e.chart.regions if r.name == "judge")
    assert judge.states == ("idle", "judging")
    assert regions.index("judge") == regions.index("gate") + 1
    assert Engine(profile="livekit").chart is default_chart()


def test_options_are_the_profiles_with_a_mapping_of_changes() -> None:
    """A mapping is applied over the profile's options (nested endpointing merged); an
    EngineOptions is used as given; unknown names and bad values are refused by name."""
    e = Engine({"transcript_timeout": 0.8, "endpointing": {"min_delay": 0.3}})
    assert e.options.transcript_timeout == 0.8 and e.options.endpointing.min_delay == 0.3
    assert e.options.endpointing.max_delay == 3.0
    assert Engine(EngineOptions(backchannel_max_words=0)).options.backchannel_max_words == 0
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['transcript_timout'\]"):
        Engine({"transcript_timout": 1.0})
    with pytest.raises(ConfigError, match="transcript_timeout must be a positive number"):
        Engine({"transcript_timeout": float("nan")})
    with pytest.raises(ConfigError, match="backchannel_max_words must be a whole number"):
        EngineOptions(backchannel_max_words=-1)
    with pytest.raises(ConfigError, match="unknown profile 'fast'"):
        Engine(profile="fast")


def test_a_profile_file_is_an_overlay_checked_like_a_chart(tmp_path: Path) -> None:
    """A user's profile file composes with its base and runs; every mistake is reported
    with the profile file and the line."""
    good = tmp_path / "mine.yaml"
    good.write_text("profile: mine\nbase: livekit\noptions: {endpointing: {min_delay: 0.7}}\n"
                    "chart:\n  patch:\n    turn: {doc: my turn}\n")
    prof = read_profile(good)
    assert prof.name == "mine" and prof.options().endpointing.min_delay == 0.7
    e = Engine(profile=str(good))
    assert next(r for r in e.chart.regions if r.name == "turn").doc == "my turn"
    bad = tmp_path / "bad.yaml"
    bad.write_text("profile: bad\nchart:\n  regions:\n    - {name: x, before: nowhere, "
                   "initial: a, states: {a: {}}}\n  patch:\n    nowhere:\n      add:\n"
                   "        - {event: vad_end, source: idle}\n")
    with pytest.raises(ChartError) as info:
        read_profile(bad)
    text = "\n".join(info.value.problems)
    assert f"{bad}:4: chart.regions[0] (x): before names unknown region 'nowhere'" in text
    assert "chart.patch.nowhere: no region 'nowhere' to patch" in text
    (tmp_path / "opts.yaml").write_text("profile: o\noptions: {min_delay: 1}\n")
    with pytest.raises(ChartError, match=r"opts.yaml:1: .*unknown option\(s\) \['min_delay'\]"):
        read_profile(tmp_path / "opts.yaml")


def test_the_removed_overlay_keys_are_refused_naming_the_key_and_the_file(
        tmp_path: Path) -> None:
    """`substitute` and `patch.REGION.replace` are not part of the overlay format: a profile
    using them is refused with its file, the line and what to write instead."""
    old = tmp_path / "old.yaml"
    old.write_text("profile: old\nchart:\n  patch:\n    turn:\n      replace:\n"
                   "        - match: {event: vad_end}\n          with: []\n"
                   "  substitute: {report_vad_end: report_vad_end_after_backchannels}\n")
    with pytest.raises(ChartError) as info:
        read_profile(old)
    problems = info.value.problems
    assert any(p.startswith(f"{old}:5: chart.patch.turn.replace ") and "seam region" in p
               for p in problems), problems
    assert any(p.startswith(f"{old}:3: chart.substitute ") and "replaces: REGION" in p
               for p in problems), problems
    assert len(problems) == 2, problems


def test_the_default_profile_restates_no_row_of_the_base_chart() -> None:
    """The default profile replaces seam regions only (small regions the base chart marks
    `seam: true`; the judge, not a second gate, decides about backchannels), and what it
    adds to the base's other regions is not a row the base chart writes."""
    import yaml

    base = yaml.safe_load((ROOT / "states.yaml").read_text())
    prof = yaml.safe_load((ROOT / "profiles" / "default.yaml").read_text())
    seams = {r["name"] for r in base["regions"] if r.get("seam")}
    replaced = {r["replaces"] for r in prof["chart"]["regions"] if "replaces" in r}
    assert replaced and replaced <= seams
    assert all("replaces" in r for r in prof["chart"]["regions"])  # no second gate
    assert "gate" not in replaced and "turn" not in replaced
    rows = {yaml.safe_dump(t, sort_keys=True) for r in base["regions"]
            for t in r.get("transitions") or []}
    added = [t for p in (prof["chart"].get("patch") or {}).values() for t in p.get("add") or []]
    assert added and not [t for t in added if yaml.safe_dump(t, sort_keys=True) in rows]


def test_a_trace_without_a_profile_runs_on_livekit_and_a_header_may_name_one() -> None:
    """Conformance traces name no profile: they replay on livekit; a header's profile (or
    the replay's override) chooses the chart."""
    from turnfsm.replay import parse_trace, replay_trace
    lines = ['{"kind": "config"}', '{"t": 0.1, "kind": "vad.start_of_speech"}',
             '{"t": 1.0, "kind": "stt.final", "text": "I want to book a table for"}',
             '{"t": 1.2, "kind": "vad.end_of_speech"}']
    text = "\n".join(lines) + "\n"
    lk = replay_trace(parse_trace(text))
    named = replay_trace(parse_trace(text.replace('"config"}', '"config", "profile": "default"}')))
    override = replay_trace(parse_trace(text), profile="default")

    def eot(rs: list[dict[str, Any]]) -> list[float]:
        return [x["t"] for x in rs if x["kind"] == "on_end_of_turn"]
    # no VAD windows: the final is the last speech heard (the anchor)
    assert eot(lk) == [1.5]  # min_delay after it
    assert eot(named) == eot(override) == [4.0]  # "for": the built-in rules wait max_delay
    bad = text.replace('"config"}', '"config", "profile": 3}')
    from turnfsm.errors import TraceError
    with pytest.raises(TraceError, match="profile"):
        parse_trace(bad)


# -- 1. no orphans: the final wait ------------------------------------------------------------


def two_segments(profile: str, final_b_at: float | None = 2.7) -> Run:
    """"I want to go" (0.0-1.0, final at 1.2), a 0.4 s pause, "to Paris" (1.4-2.0) whose
    final comes 0.5 s after its VAD end (a slow STT)."""
    r = Run(profile)
    speech(r, 0.0, 1.0, "I want to go", final_at=1.2)
    speech(r, 1.4, 1.8)
    if final_b_at is not None:
        r.at(final_b_at, ev.SttFinal(t=final_b_at, text="to Paris"))
    return r.advance(8.0)


def test_the_turn_waits_for_the_final_of_speech_already_heard() -> None:
    """livekit ends the turn on the first segment's final and orphans "to Paris" as a turn of
    its own; the default profile waits for that final and delivers one turn."""
    # (no VAD windows here: a final is the last speech heard, the wait's anchor)
    assert two_segments("livekit").turns() == [(2.0, "I want to go"), (3.2, "to Paris")]
    r = two_segments("default")
    assert r.turns() == [(2.7, "I want to go to Paris")]
    [eot] = r.of(out.EndOfTurn)
    assert eot.decision is not None and eot.decision.trigger == "final_transcript"


def test_a_final_that_never_comes_ends_the_wait_after_transcript_timeout() -> None:
    """Nothing transcribes the second segment: the decision is asked for transcript_timeout
    after its end of speech (trigger final_overdue) and the turn ends on what it has."""
    r = two_segments("default", final_b_at=None)
    [eot] = r.of(out.EndOfTurn)
    assert eot.new_transcript == "I want to go"
    assert eot.decision is not None and eot.decision.trigger == "final_overdue"
    assert eot.decision.wait_started_at == pytest.approx(2.0 + 1.5)
    assert eot.decision.why().startswith(
        "the wait for the last speech's final transcript (it did not come in "
        "transcript_timeout) asked at 3.5 s")


def test_a_late_final_of_earlier_speech_does_not_settle_the_wait() -> None:
    """With timestamps, a final whose speech ended before the latest segment began is not
    that segment's: the wait goes on until the segment's own final."""
    r = Run("default")
    r.at(0.0, ev.AudioPushed(t=0.0))
    r.at(0.1, ev.VadStartOfSpeech(t=0.1, speech_duration=0.1))
    r.at(1.2, ev.VadEndOfSpeech(t=1.2, silence_duration=0.2))
    r.at(1.5, ev.VadStartOfSpeech(t=1.5, speech_duration=0.1))
    r.at(2.0, ev.VadEndOfSpeech(t=2.0, silence_duration=0.2))
    r.at(2.1, ev.SttFinal(t=2.1, text="I want to go", start_time=0.0, end_time=1.0))
    assert r.e.in_state("final_wait", "pending") and not r.of(out.EndOfTurn)
    r.at(2.6, ev.SttFinal(t=2.6, text="to Paris", start_time=1.4, end_time=1.8))
    r.advance(6.0)
    assert r.turns() == [(2.6, "I want to go to Paris")]


def test_a_commit_does_not_wait_for_the_final() -> None:
    """The final wait holds automatic decisions only: a commit decides at once."""
    r = Run("default", {"turn_detection": "manual"})
    speech(r, 0.0, 1.0, "book it", final_at=0.9)
    r.at(1.5, ev.VadStartOfSpeech(t=1.5, speech_duration=0.1))
    r.at(2.0, ev.CommitUserTurn(t=2.0, transcript_timeout=0.2))
    r.advance(4.0)
    assert [text for _, text in r.turns()] == ["book it"]


# -- 2. hesitations: the built-in end-of-turn rules ---------------------------------------------


def hesitation(profile: str, **options: Any) -> Run:
    r = Run(profile, options or None)
    speech(r, 0.0, 1.5, "I want to book a table for")
    speech(r, 2.7, 3.5, "four people.")
    return r.advance(10.0)


def test_an_unfinished_utterance_waits_max_delay_without_a_model() -> None:
    """'... a table for' and a 1.2 s pause: livekit ends the turn after min_delay and "four
    people." becomes a second turn; the default profile's built-in rules wait max_delay, and
    its decision record says why."""
    assert [t for _, t in hesitation("livekit").turns()] == ["I want to book a table for",
                                                            "four people."]
    r = hesitation("default")
    [eot] = r.of(out.EndOfTurn)
    assert eot.new_transcript == "I want to book a table for four people."
    d = eot.decision
    assert d is not None and d.delay_reason == "min_delay" and d.model is not None
    assert d.model.model == "builtin" and d.model.probability == 0.9  # terminal "."
    assert "built-in rules p=0.9 >= threshold 0.3" in d.why()


def test_the_built_in_rules_record_an_unfinished_verdict() -> None:
    """Alone, the unfinished utterance is delivered after max_delay, with the verdict."""
    r = Run("default")
    speech(r, 0.0, 1.5, "I want to book a table for")
    r.advance(10.0)
    [eot] = r.of(out.EndOfTurn)
    d = eot.decision
    assert d is not None and d.delay_reason == "max_delay" and d.delay == 3.0
    assert d.model is not None and (d.model.model, d.model.probability, d.model.threshold) == (
        "builtin", 0.05, 0.3)
    assert eot.t == pytest.approx(1.8 + 3.0)  # max_delay after the final (the anchor)


def test_a_model_the_host_plugs_in_wins() -> None:
    """turn_detection="model": the engine asks the host's model instead of its rules."""
    r = Run("default", {"turn_detection": "model"})
    speech(r, 0.0, 1.5, "I want to book a table for")
    [req] = r.of(out.EouModelRequest)
    assert req.transcript == "I want to book a table for"


# -- 3. backchannels -------------------------------------------------------------------------


def over_agent(profile: str, *utterances: tuple[float, float, str | None],
               agent_end: float = 6.0,
               options: Any = None) -> Run:
    r = Run(profile, options)
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    for start, end, text in utterances:
        speech(r, start, end, text)
    r.at(agent_end, ev.AgentSpeechEnded(t=agent_end))
    return r.advance(agent_end + 5.0)


def test_a_backchannel_without_a_detector_is_dropped_not_a_turn() -> None:
    """"uh huh" over the agent: livekit makes it a turn; the default profile drops it with the
    reason `backchannel` and a record, emits no interruption, and the turn goes back to
    idle without its onset."""
    assert [t for _, t in over_agent("livekit", (2.0, 2.4, "uh huh")).turns()] == ["uh huh"]
    r = over_agent("default", (2.0, 2.4, "uh huh"))
    assert r.turns() == [] and not r.of(out.Interruption)
    [drop] = r.of(out.TranscriptDropped)
    assert (drop.text, drop.reason) == ("uh huh", "backchannel")
    assert drop.record is not None and drop.record.rule == "P3"
    assert drop.record.detail == "2 word(s) over agent speech (backchannel_max_words 2)"
    assert r.e.in_state("turn", "idle") and r.e.cx.speech_start_time is None
    assert not r.of(out.Transcript)  # held, then dropped: never reported as the user's


def test_a_backchannel_phrase_longer_than_the_limit_is_dropped_too() -> None:
    """A phrase of the backchannel list is one at any length; with the limit at 0 only the
    list counts, and two words that are not in it interrupt."""
    r = over_agent("default", (2.0, 2.8, "yeah, that makes sense"))
    assert [d.record.detail for d in r.of(out.TranscriptDropped)] == [
        "a backchannel phrase over agent speech"]
    r = over_agent("default", (2.0, 2.4, "uh huh"), (3.0, 3.4, "yes please"),
                   options={"backchannel_max_words": 0})
    assert [d.text for d in r.of(out.TranscriptDropped)] == ["uh huh"]
    assert len(r.of(out.Interruption)) == 1 and [t for _, t in r.turns()] == ["yes please"]


def test_more_than_a_backchannel_interrupts_on_its_words_without_a_detector() -> None:
    """Speech over the agent that grows past a backchannel is an interruption (its record
    says "words") and becomes the turn; the onset of the earlier backchannel does not."""
    r = over_agent("default", (1.0, 1.3, "mm hmm"), (2.0, 3.0, "no, I said Tuesday"))
    [intr] = r.of(out.Interruption)
    assert intr.record is not None and (intr.record.source, intr.record.words) == ("words", 4)
    assert intr.overlap_started_at == pytest.approx(2.0)
    [eot] = r.of(out.EndOfTurn)
    assert eot.new_transcript == "no, I said Tuesday"
    assert eot.started_speaking_at == pytest.approx(2.0)  # not the backchannel's 1.0


def test_an_utterance_the_agent_end_interrupts_is_judged_when_it_ends() -> None:
    """The agent stops while a short utterance begun over it goes on (state `judging`): it is
    dropped when it ends if it stays a backchannel, released as the turn if it grows."""
    r = Run("default")
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    r.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    r.at(2.4, ev.SttFinal(t=2.4, text="okay"))
    r.at(2.5, ev.AgentSpeechEnded(t=2.5))
    assert r.e.in_state("judge", "judging")
    r.at(2.8, ev.VadEndOfSpeech(t=2.8, silence_duration=0.2)).advance(6.0)
    assert [(d.text, d.reason) for d in r.of(out.TranscriptDropped)] == [("okay", "backchannel")]
    assert r.turns() == [] and r.e.in_state("gate", "passthrough")

    r = Run("default")
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    r.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    r.at(2.4, ev.SttFinal(t=2.4, text="okay"))
    r.at(2.5, ev.AgentSpeechEnded(t=2.5))
    r.at(3.0, ev.SttFinal(t=3.0, text="but what about Friday?"))
    assert r.e.in_state("gate", "passthrough")
    r.at(3.3, ev.VadEndOfSpeech(t=3.3, silence_duration=0.2)).advance(8.0)
    assert [t for _, t in r.turns()] == ["okay but what about Friday?"]
    assert not r.of(out.TranscriptDropped) and not r.of(out.Interruption)


def with_detector(verdict: bool, *, continues: bool, text: str = "okay") -> Run:
    """"okay" (``text``) over the agent judged by a detector; the user may go on after it."""
    r = Run("default", {"interruption_detection": True, "backchannel_boundary": None})
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    r.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    r.at(2.5, ev.SttFinal(t=2.5, text=text))
    r.at(2.6, ev.OverlapVerdict(t=2.6, is_interruption=verdict, overlap_started_at=2.0))
    until = 2.0 if verdict else None  # a host stops the agent at an interruption's overlap
    if continues:
        r.at(3.0, ev.AgentSpeechEnded(t=3.0, ignore_user_transcript_until=until))
        r.at(3.5, ev.SttFinal(t=3.5, text="no no, that's not what I said"))
        r.at(4.0, ev.VadEndOfSpeech(t=4.0, silence_duration=0.2))
    else:
        r.at(2.8, ev.VadEndOfSpeech(t=2.8, silence_duration=0.2))
        r.at(5.0, ev.AgentSpeechEnded(t=5.0, ignore_user_transcript_until=until))
    return r.advance(9.0)


def test_a_not_an_interruption_verdict_drops_the_backchannel_instead_of_releasing_it() -> None:
    """With a detector, "okay" judged not an interruption is dropped (it does not open the
    next turn: "no no, that's not what I said" is the turn, not "okay no no ...")."""
    r = with_detector(False, continues=False)
    [drop] = r.of(out.TranscriptDropped)
    assert drop.reason == "backchannel" and drop.record is not None
    assert drop.record.detail == "the interruption detector judged it not an interruption"
    assert r.turns() == []
    r = with_detector(False, continues=True)
    [eot] = r.of(out.EndOfTurn)
    assert eot.new_transcript == "no no, that's not what I said"
    # not the backchannel's 2.0: the words after it, in its VAD segment, start the turn
    assert eot.started_speaking_at == pytest.approx(3.5)
    assert [(d.text, d.reason) for d in r.of(out.TranscriptDropped)] == [("okay", "backchannel")]
    # the backchannel's final comes after the agent stopped: livekit lets it open the turn
    for profile, want in (("livekit", "okay no no, that's not what I said"),
                          ("default", "no no, that's not what I said")):
        run = Run(profile, {"interruption_detection": True, "backchannel_boundary": None})
        run.at(0.0, ev.AgentSpeechStarted(t=0.0))
        run.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
        run.at(2.6, ev.OverlapVerdict(t=2.6, is_interruption=False, overlap_started_at=2.0))
        run.at(2.7, ev.AgentSpeechEnded(t=2.7))
        run.at(2.9, ev.SttFinal(t=2.9, text="okay"))
        run.at(3.5, ev.SttFinal(t=3.5, text="no no, that's not what I said"))
        run.at(4.0, ev.VadEndOfSpeech(t=4.0, silence_duration=0.2)).advance(9.0)
        assert [t for _, t in run.turns()] == [want], profile


def test_an_interruption_verdict_keeps_the_words() -> None:
    """Judged an interruption, two words that are no backchannel phrase ("hold on") are the
    user's, although backchannel_max_words would take them for one: never dropped."""
    r = with_detector(True, continues=False, text="hold on")
    assert not r.of(out.TranscriptDropped) and [t for _, t in r.turns()] == ["hold on"]
    [i] = r.of(out.Interruption)
    assert i.t == pytest.approx(2.6) and i.record is not None and i.record.source == "detector"


def test_a_backchannel_phrase_overrules_an_interruption_verdict_while_the_agent_speaks() -> None:
    """Judged an interruption (on its duration) while the agent still speaks, "okay" is a
    backchannel phrase: its words overrule the verdict, it is dropped and nothing
    interrupts; the livekit profile reports the verdict at once."""
    r = with_detector(True, continues=False)
    assert not r.of(out.Interruption) and r.turns() == []
    [drop] = r.of(out.TranscriptDropped)
    assert drop.reason == "backchannel" and drop.record is not None
    assert "overrules the interruption detector" in drop.record.detail
    lk = Run("livekit", {"interruption_detection": True, "backchannel_boundary": None})
    lk.at(0.0, ev.AgentSpeechStarted(t=0.0))
    lk.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    lk.at(2.6, ev.OverlapVerdict(t=2.6, is_interruption=True, overlap_started_at=2.0))
    assert [i.t for i in lk.advance(3.0).of(out.Interruption)] == [2.6]


def test_a_dropped_backchannel_ends_its_user_turn_span_bare() -> None:
    """The span the backchannel's speech opened ends, marked as dropped; the next turn's span
    starts at its own onset."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from turnfsm.telemetry import SpanObserver
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    r = Run("default")
    r.e.add_observer(SpanObserver(provider, time_origin_ns=0))
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    speech(r, 1.0, 1.4, "uh huh")
    r.at(3.0, ev.AgentSpeechEnded(t=3.0))
    speech(r, 4.0, 5.0, "Thank you.")
    r.advance(8.0)
    turns = sorted((s for s in exporter.get_finished_spans() if s.name == "user_turn"),
                   key=lambda s: s.start_time or 0)
    assert [s.attributes.get("turnfsm.dropped") for s in turns] == ["backchannel", None]
    assert turns[0].start_time == round(1.0 * 1e9) and turns[1].start_time == round(4.0 * 1e9)


# -- 4. one onset per turn ------------------------------------------------------------------


def test_preemptive_generation_reports_the_turns_onset() -> None:
    """A turn of two segments: the default profile's preemptive generation reports the
    turn's onset, as its end of turn does; livekit reports the latest segment's."""
    for profile, want in (("default", [0.0, 0.0]), ("livekit", [0.0, 1.2])):
        r = Run(profile)
        speech(r, 0.0, 1.0, "I want to go", final_at=0.9)
        speech(r, 1.2, 2.0, "to Paris.", final_at=2.1)
        r.advance(6.0)
        pre = [round(o.started_speaking_at, 6) for o in r.of(out.PreemptiveGeneration)]
        assert pre == want, profile
        [eot] = r.of(out.EndOfTurn)
        assert eot.started_speaking_at == pytest.approx(0.0)


def test_in_manual_mode_nothing_is_a_backchannel() -> None:
    """Push-to-talk: the host's commit decides, so a one-word answer over the agent is the
    user's turn (the gate does not hold it without a detector)."""
    r = Run("default", {"turn_detection": "manual"})
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    speech(r, 1.0, 1.5, "yes")
    r.at(2.1, ev.CommitUserTurn(t=2.1, transcript_timeout=0.5)).advance(4.0)
    assert [t for _, t in r.turns()] == ["yes"] and not r.of(out.TranscriptDropped)


# -- backchannels without transcripts (no STT: a speech-to-speech stack) ----------------------

WORDLESS = {"stt": False}


def test_wordless_backchannel_the_detector_judged_is_dropped_not_a_turn() -> None:
    """No STT: a segment over the agent the detector judged not an interruption is dropped
    when it ends (an empty `TranscriptDropped`, reason `backchannel`), opens no turn and
    leaves no onset; livekit makes it a turn with an empty transcript."""
    def run(profile: str) -> Run:
        r = Run(profile, {**WORDLESS, "interruption_detection": True})
        r.at(0.0, ev.AgentSpeechStarted(t=0.0))
        r.at(3.0, ev.VadStartOfSpeech(t=3.0, speech_duration=0.1))
        r.at(3.3, ev.OverlapVerdict(t=3.3, is_interruption=False))
        r.at(3.6, ev.VadEndOfSpeech(t=3.6, silence_duration=0.2))
        r.at(6.0, ev.AgentSpeechEnded(t=6.0))
        return r.advance(9.0)
    assert run("livekit").turns() == [(4.1, "")]
    r = run("default")
    assert r.turns() == [] and not r.of(out.Interruption)
    [drop] = r.of(out.TranscriptDropped)
    assert (drop.t, drop.text, drop.reason) == (3.6, "", "backchannel")
    assert drop.record is not None and drop.record.rule == "P3"
    assert drop.record.detail == "the interruption detector judged it not an interruption"
    assert r.e.in_state("turn", "idle") and r.e.cx.speech_start_time is None
    assert r.e.cx.turn.user_turn_start is None


def test_wordless_backchannel_without_a_detector_is_judged_by_its_duration() -> None:
    """No STT, no detector: speech over the agent up to backchannel_max_duration (1.0 s) is
    dropped; longer speech is the user's turn."""
    r = over_agent("default", (2.0, 2.45, None), (3.0, 4.5, None), options=WORDLESS)
    [drop] = r.of(out.TranscriptDropped)
    assert drop.record is not None
    assert drop.record.detail == ("0.45 s of speech over agent speech, no words to judge "
                                  "(backchannel_max_duration 1)")
    [eot] = r.of(out.EndOfTurn)  # min_delay after its end (no windows: no anchor)
    assert (eot.t, eot.new_transcript) == (5.2, "")
    r = over_agent("default", (2.0, 2.45, None),
                   options={**WORDLESS, "backchannel_max_duration": 0.0})
    assert not r.of(out.TranscriptDropped) and len(r.of(out.EndOfTurn)) == 1


def test_wordless_backchannel_still_going_when_the_agent_stops_is_dropped_at_its_end() -> None:
    """No STT: a short segment begun over the agent that ends after the agent stopped is
    judged at its end (the gate judging) and dropped."""
    r = Run("default", WORDLESS)
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    r.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    r.at(2.3, ev.AgentSpeechEnded(t=2.3))
    assert r.e.in_state("judge", "judging")
    r.at(2.7, ev.VadEndOfSpeech(t=2.7, silence_duration=0.2))
    r.advance(6.0)
    assert r.turns() == [] and [d.text for d in r.of(out.TranscriptDropped)] == [""]
    assert r.e.in_state("gate", "passthrough")


def test_wordless_rule_leaves_transcribed_speech_and_joined_turns_alone() -> None:
    """With an STT attached the words judge (no wordless drop of a segment without a final:
    no turn either, nothing to decide); a segment over the agent that joins a turn with
    earlier speech is no backchannel."""
    r = over_agent("default", (2.0, 2.45, None))
    assert not r.of(out.TranscriptDropped) and not r.of(out.EndOfTurn)
    r = Run("default", {**WORDLESS, "endpointing": {"min_delay": 3.0, "max_delay": 3.0}})
    r.at(0.1, ev.VadStartOfSpeech(t=0.1, speech_duration=0.1))
    r.at(1.2, ev.VadEndOfSpeech(t=1.2, silence_duration=0.2))  # its wait runs until 4.2
    r.at(1.5, ev.AgentSpeechStarted(t=1.5))
    r.at(2.1, ev.VadStartOfSpeech(t=2.1, speech_duration=0.1))
    r.at(2.6, ev.VadEndOfSpeech(t=2.6, silence_duration=0.2))
    r.advance(8.0)
    assert not r.of(out.TranscriptDropped)
    assert r.turns() == [(5.6, "")]  # one turn: the speech over the agent joined it


def test_backchannel_max_duration_is_checked() -> None:
    """backchannel_max_duration must be a finite number of seconds >= 0."""
    assert EngineOptions(backchannel_max_duration=0).backchannel_max_duration == 0.0
    for bad in (-0.1, float("nan"), True, "1"):
        with pytest.raises(ConfigError, match="backchannel_max_duration must be a number of "
                                              "seconds >= 0"):
            EngineOptions(backchannel_max_duration=bad)


@pytest.mark.parametrize("name", ["audio/backchannel", "dialogues/06_backchannel_early",
                                  "dialogues/07_backchannel_late"])
@pytest.mark.parametrize("detector", [True, False])
def test_listen_without_transcripts_drops_the_labelled_backchannels(name: str,
                                                                    detector: bool) -> None:
    """`turnfsm listen` on a stereo labelled dialogue with neither --words nor --asr (the real
    VAD, the overlap rule as the detector or none): every labelled backchannel over the agent
    is dropped as one and no turn ends while the agent speaks; the labelled turns still end."""
    import json

    from turnfsm.audio.listen import ListenOptions, build_trace
    from turnfsm.audio.wav import read_wav
    from turnfsm.replay.replay import Replay

    path = ROOT / "examples" / f"{name}.wav"
    truth = json.loads(path.with_suffix(".truth.json").read_text(encoding="utf-8"))
    engine = get_profile("default").options({"stt": False,
                                             "interruption_detection": detector})
    trace = build_trace(read_wav(path), ListenOptions(engine=engine))
    outs: list[out.Output] = []
    Replay(trace, diagnostics=True,
           observer=lambda rec: outs.extend(rec.outputs)).run()
    drops = [o for o in outs if isinstance(o, out.TranscriptDropped)]
    assert [(o.text, o.reason) for o in drops] == [("", "backchannel")] * len(
        truth["backchannels"])
    if detector:
        assert all(o.record is not None and "detector" in o.record.detail for o in drops)
    agent = truth["speech"]["agent"]
    eots = [o.t for o in outs if isinstance(o, out.EndOfTurn)]
    assert not any(a <= t <= b for t in eots for a, b in agent)
    assert len(eots) == len(truth["turns"])


def test_every_drop_or_release_of_the_default_judge_is_its_own_guarded_transition() -> None:
    """The default judge region answers "when is a held final dropped?": each transition
    that drops names the judgement guard that found the backchannel and releases nothing;
    each release is guarded by that guard negated (no action chooses between them)."""
    chart = get_profile("default").chart
    judge = [t for t in chart.transitions if t.region == "judge"]
    finders = {"backchannel_final", "held_backchannel", "wordless_backchannel",
               "judged_backchannel", "trimmed_backchannel", "still_judging"}
    drops = [t for t in judge if any(a.startswith("drop_") for a in t.actions)]
    releases = [t for t in judge if any(a.startswith("release_") for a in t.actions)]
    assert len(drops) >= 6 and len(releases) >= 4
    for t in drops:
        positive = {g.name for g in t.guards if not g.negated}
        assert positive & finders, t
        assert not any(a.startswith("release_") for a in t.actions), t
    for t in releases:
        assert {g.name for g in t.guards if g.negated} & (finders | {"words_interrupt"}) \
            or {g.name for g in t.guards} & {"words_interrupt", "words_exceed"}, t


def test_a_judge_guard_s_finding_is_taken_by_its_drop_and_not_kept() -> None:
    """The drop record's reason is the guard's finding, taken once: nothing of it is left
    on the context after the step."""
    r = Run("default")
    r.at(0.0, ev.AgentSpeechStarted(t=0.0))
    r.at(0.5, ev.VadStartOfSpeech(t=0.5, speech_duration=0.1))
    r.at(0.9, ev.SttFinal(t=0.9, text="uh huh"))
    r.at(1.0, ev.VadEndOfSpeech(t=1.0, silence_duration=0.1))
    drops = r.of(out.TranscriptDropped)
    assert [d.reason for d in drops] == ["backchannel"]
    assert drops[0].record is not None and "backchannel_max_words" in drops[0].record.detail
    assert r.e.cx.judged is None
