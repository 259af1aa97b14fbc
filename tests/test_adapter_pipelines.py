"""The adapters in each framework's real pipeline, on the project's labelled WAVs, with the
framework's own Silero VAD (``tests/adapter_pipelines.py``): Pipecat 1.14's
``LLMUserAggregator`` with ``SileroVADAnalyzer``, LiveKit Agents 1.8's ``AgentSession`` with
``livekit-plugins-silero``; stand-ins only for the STT (the words sidecar), the LLM (it
records) and the TTS (the agent channel). Virtual clock, inference inline: deterministic.

A representative subset per framework: a backchannel, a barge-in, a hesitation, and every
labelled barge-in and backchannel for the pause of the agent's audio (slow-marked;
``benchmarks/adapters.py`` runs every file). One short file runs in the default suite."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pipecat")
pytest.importorskip("livekit.agents")
pytest.importorskip("livekit.plugins.silero")

from tests.adapter_pipelines import (
    Labelled,
    Result,
    Score,
    run_livekit,
    run_pipecat,
    score,
)

ROOT = Path(__file__).resolve().parents[1]
# Pipecat's audio utilities import audioop (deprecated in Python 3.11)
pytestmark = pytest.mark.filterwarnings("ignore:'audioop' is deprecated:DeprecationWarning")
# the time from a barge-in's onset to the agent falling silent (turnfsm pauses its audio 0.15 s
# of voiced speech into the overlap), at most
SILENT_WITHIN = 0.4
# ... and to the interruption that cancels its reply, at most: the detector's 0.5 s of overlap,
# the VAD's onset lag (0.1-0.2 s) and a pause inside the barge-in ("wait, stop": the detector
# fires when "stop" begins, 0.56 s in)
STOP_WITHIN = 0.75
# the longest pause of the agent's audio a backchannel may cause (it then plays on)
BACKCHANNEL_PAUSE = 0.75


def load(name: str) -> Labelled:
    return Labelled.load(next(ROOT.glob(f"examples/*/{name}.wav")))


def clean(lab: Labelled, r: Result) -> Score:
    """Every turn answered once with all its words, no cut-in, no backchannel interrupting
    or answered (a pause of at most BACKCHANNEL_PAUSE each), every barge-in silenced within
    SILENT_WITHIN and stopped within STOP_WITHIN, no microphone frame lost, every agent turn
    played in order, all of it unless cut off."""
    s = score(lab, r)
    assert s.problems == []
    assert s.answered == s.turns and s.cut_ins == 0
    assert s.bc_interrupting == 0 and s.bc_answered == 0
    assert all(0.0 < t <= BACKCHANNEL_PAUSE for t in s.bc_pauses), s.bc_pauses
    assert s.barge_ins_stopped == s.barge_ins
    assert all(0.0 < t <= SILENT_WITHIN for t in s.silent_times), s.silent_times
    assert all(0.0 < t <= STOP_WITHIN for t in s.stop_times), s.stop_times
    assert s.frames_lost == 0 and r.frames_in > 0 and r.frames_in_order
    assert s.audio_lost == 0 and len(r.played) == len(lab.agent)
    return s


FRAMEWORKS = {"pipecat": run_pipecat, "livekit": run_livekit}


def test_pipecat_backchannel_short_file() -> None:
    """Pipecat, examples/audio/backchannel.wav (7 s): "uh huh" (2.9-3.335 s) over the agent
    pauses its audio once, briefly, then it plays on from where it paused (every chunk, in
    order) to the end of its sentence; nothing reaches the LLM."""
    lab = load("backchannel")
    r = run_pipecat(lab)
    s = clean(lab, r)
    assert [cut for _, _, cut in r.agent] == [False]
    assert r.llm_runs == [] and r.commits == []
    (pause,) = r.pauses
    assert 2.9 < pause[0] < 3.335 < pause[1] and len(s.bc_pauses) == 1
    assert r.agent[0][1] == pytest.approx(0.3 + lab.agent[0].length + s.bc_pauses[0], abs=0.05)


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
@pytest.mark.parametrize(("name", "said", "turn"), [
    ("06_backchannel_early", "uh huh", "that sounds great"),
    ("07_backchannel_late", "okay", "thank you")])
def test_backchannel_then_the_users_turn(framework: str, name: str, said: str,
                                         turn: str) -> None:
    """06: "uh huh" (0.435 s) 0.7 s into the agent's sentence; 07: "okay" (0.452 s) 0.9 s
    before its end. Each pauses the agent's audio once, briefly; neither stops it (it plays
    on, all of it, to 4.17 s plus the pause) nor is a turn; the user's turn after it is
    answered once, with its words; turnfsm dropped the backchannel with its record."""
    lab = load(name)
    r = FRAMEWORKS[framework](lab)
    s = clean(lab, r)
    assert [cut for _, _, cut in r.agent] == [False]
    assert len(r.pauses) == 1 and len(s.bc_pauses) == 1
    assert r.agent[0][1] == pytest.approx(4.17 + s.bc_pauses[0], abs=0.05)
    assert [text for _, text in r.commits] == [turn]
    dropped = [o for o in r.outputs if type(o).__name__ == "TranscriptDropped"]
    assert [(o.text, o.reason) for o in dropped] == [(said, "backchannel")]


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
def test_barge_in_stops_the_agent_and_is_the_turn(framework: str) -> None:
    """09: "wait, stop, that's wrong" over the agent from 2.5 s: turnfsm pauses the agent's
    audio within SILENT_WITHIN (it never plays again: no resume in the 0.17 s pause after
    "wait"), its overlap detector then stops it within STOP_WITHIN (the framework clears its
    audio), and the whole utterance, pauses and all, is one turn answered once. In LiveKit
    this is inside its AEC warm-up (3 s from the agent's start at 0.3 s), when the STT hears
    silence: turnfsm listens to LiveKit's VAD stream on the microphone, so it stops the agent
    before 3.3 s."""
    lab = load("09_barge_in_middle")
    r = FRAMEWORKS[framework](lab)
    s = clean(lab, r)
    assert [cut for _, _, cut in r.agent] == [True]
    (pause,) = r.pauses
    assert pause[0] == pytest.approx(2.5 + s.silent_times[0])
    assert pause[1] == pytest.approx(r.agent[0][1], abs=0.03)  # silent until the stop
    assert [text for _, text in r.commits] == ["wait stop that's wrong"]
    (interruption,) = [o for o in r.outputs if type(o).__name__ == "Interruption"]
    assert interruption.record is not None and interruption.record.source == "detector"
    assert s.stop_times[0] == pytest.approx(r.agent[0][1] - 2.5)
    assert r.agent[0][1] < 3.3


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
def test_hesitation_is_one_turn_where_the_defaults_cut_in(framework: str) -> None:
    """02: "we will be a group of" ... 1.0 s ... "seven": one turn with turnfsm; the
    framework's defaults on the same pipeline answer "we will be a group of" first."""
    lab = load("02_hesitation_1000ms")
    run = FRAMEWORKS[framework]
    clean(lab, run(lab))
    defaults = score(lab, run(lab, "defaults"))
    assert defaults.cut_ins >= 1


BARGE_INS = ["barge_in", "08_barge_in_start", "09_barge_in_middle", "10_barge_in_end",
             "15_noisy_barge_in_middle"]


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
def test_every_barge_in_is_silenced_within_0_4_s_and_every_backchannel_resumed(
        framework: str) -> None:
    """Every labelled barge-in (5) falls silent within 0.4 s of its onset (paused), then is
    stopped by the interruption (its reply cancelled); every labelled backchannel (3)
    pauses the agent once for at most BACKCHANNEL_PAUSE and is resumed: no cancelled reply,
    no turn, every agent frame played in order."""
    silent: list[float] = []
    for name in [*BARGE_INS, "backchannel", "06_backchannel_early", "07_backchannel_late"]:
        lab = load(name)
        s = clean(lab, FRAMEWORKS[framework](lab))
        silent += s.silent_times
    assert len(silent) == 5 and max(silent) <= SILENT_WITHIN


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
def test_pause_after_none_turns_the_pause_off(framework: str) -> None:
    """pause_after=None: the agent's audio is never paused; the barge-in of 09 stops it at
    the interruption verdict (0.6-0.75 s after its onset), as before the pause existed."""
    lab = load("09_barge_in_middle")
    kw = {"pause_after": None}
    r = run_pipecat(lab, strategies_kw=kw) if framework == "pipecat" else \
        run_livekit(lab, taking_kw=kw)
    s = score(lab, r)
    assert r.pauses == [] and s.barge_ins_stopped == 1
    assert s.silent_times == s.stop_times and 0.6 <= s.stop_times[0] <= STOP_WITHIN
