"""The adapters in each framework's real pipeline, on the project's labelled WAVs, with the
framework's own Silero VAD (``tests/adapter_pipelines.py``): Pipecat 1.14's
``LLMUserAggregator`` with ``SileroVADAnalyzer``, LiveKit Agents 1.8's ``AgentSession`` with
``livekit-plugins-silero``; stand-ins only for the STT (the words sidecar), the LLM (it
records) and the TTS (the agent channel). Virtual clock, inference inline: deterministic.

A representative subset per framework: a backchannel, a barge-in, a hesitation (slow-marked;
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
# the time from a barge-in's onset to the agent's audio stopping, at most: the detector's
# 0.5 s of overlap, the VAD's onset lag (0.1-0.2 s) and a pause inside the barge-in ("wait,
# stop": the detector fires when "stop" begins, 0.56 s in). 0.4 s is out of reach for any
# duration rule here: the labelled backchannels last 0.435 and 0.452 s
STOP_WITHIN = 0.75


def load(name: str) -> Labelled:
    return Labelled.load(next(ROOT.glob(f"examples/*/{name}.wav")))


def clean(lab: Labelled, r: Result) -> Score:
    """Every turn answered once with all its words, no cut-in, no backchannel interrupting
    or answered, every barge-in stopped within STOP_WITHIN, no microphone frame lost."""
    s = score(lab, r)
    assert s.problems == []
    assert s.answered == s.turns and s.cut_ins == 0
    assert s.bc_interrupting == 0 and s.bc_answered == 0
    assert s.barge_ins_stopped == s.barge_ins
    assert all(0.0 < t <= STOP_WITHIN for t in s.stop_times), s.stop_times
    assert s.frames_lost == 0 and r.frames_in > 0 and r.frames_in_order
    return s


FRAMEWORKS = {"pipecat": run_pipecat, "livekit": run_livekit}


def test_pipecat_backchannel_short_file() -> None:
    """Pipecat, examples/audio/backchannel.wav (7 s): "uh huh" over the agent neither stops
    it nor reaches the LLM; the agent's sentence plays to its end."""
    lab = load("backchannel")
    r = run_pipecat(lab)
    clean(lab, r)
    assert [cut for _, _, cut in r.agent] == [False]
    assert r.llm_runs == [] and r.commits == []


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
@pytest.mark.parametrize(("name", "said", "turn"), [
    ("06_backchannel_early", "uh huh", "that sounds great"),
    ("07_backchannel_late", "okay", "thank you")])
def test_backchannel_then_the_users_turn(framework: str, name: str, said: str,
                                         turn: str) -> None:
    """06: "uh huh" (0.435 s) 0.7 s into the agent's sentence; 07: "okay" (0.452 s) 0.9 s
    before its end. Neither stops the agent (its audio plays to 4.17 s) nor is a turn; the
    user's turn after it is answered once, with its words; turnfsm dropped the backchannel
    with its record."""
    lab = load(name)
    r = FRAMEWORKS[framework](lab)
    clean(lab, r)
    assert [cut for _, _, cut in r.agent] == [False]
    assert r.agent[0][1] == pytest.approx(4.17, abs=0.05)
    assert [text for _, text in r.commits] == [turn]
    dropped = [o for o in r.outputs if type(o).__name__ == "TranscriptDropped"]
    assert [(o.text, o.reason) for o in dropped] == [(said, "backchannel")]


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["pipecat", "livekit"])
def test_barge_in_stops_the_agent_and_is_the_turn(framework: str) -> None:
    """09: "wait, stop, that's wrong" over the agent from 2.5 s: turnfsm's overlap detector
    stops the agent within STOP_WITHIN (the framework's audio output stops), and the whole
    utterance, pauses and all, is one turn answered once. In LiveKit this is inside its AEC
    warm-up (3 s from the agent's start at 0.3 s), when the STT hears silence: turnfsm
    listens to LiveKit's VAD stream on the microphone, so it stops the agent before 3.3 s."""
    lab = load("09_barge_in_middle")
    r = FRAMEWORKS[framework](lab)
    s = clean(lab, r)
    assert [cut for _, _, cut in r.agent] == [True]
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
