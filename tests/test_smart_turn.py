"""Smart Turn v3.2 as an end-of-turn model fused with the text rules (extra smart-turn)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from turnfsm.audio import smart_turn as st
from turnfsm.runtime.protocols import TurnContext

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "examples" / "corpus"

pytest.importorskip("onnxruntime")
try:
    st.bundled_model_path()
    HAVE_MODEL = True
except st.SmartTurnError:
    HAVE_MODEL = False
needs_model = pytest.mark.skipif(not HAVE_MODEL, reason="pipecat-ai's model file absent")


def test_features_match_pipecats_own() -> None:
    """The numpy log-mel features equal pipecat's vendored Whisper features exactly."""
    mod = pytest.importorskip("pipecat.audio.turn.smart_turn._whisper_features")
    rng = np.random.default_rng(7)
    for n in (16000 * 8, 16000 * 3, 16000 * 9):
        x = (rng.standard_normal(n) * 0.1).astype(np.float32)
        ours = st.log_mel(x)
        assert ours.shape == (80, 800) and ours.dtype == np.float32
        assert np.array_equal(ours, mod.compute_whisper_log_mel_features(x))


def test_the_window_keeps_the_last_8_seconds_with_zeros_in_front() -> None:
    """Shorter audio is padded at its start, longer audio keeps its end (as pipecat does)."""
    short = st.last_window(np.ones(16000, dtype=np.float32))
    assert short.size == 128000 and short[:-16000].max() == 0 and short[-16000:].min() == 1
    long_ = st.last_window(np.arange(16000 * 9, dtype=np.float32))
    assert long_.size == 128000 and long_[-1] == 16000 * 9 - 1 and long_[0] == 16000


def test_the_fusion_rule() -> None:
    """Either the words (below the rules' threshold) or the sound (below 0.5) makes the
    turn unlikely over; the rules' threshold falls on 0.5 of the fused scale."""
    assert st.rules_on_model_scale(0.3) == pytest.approx(0.5)
    assert st.rules_on_model_scale(0.0) == 0.0 and st.rules_on_model_scale(1.0) == 1.0
    assert st.fuse(0.05, 0.99) < st.THRESHOLD  # "... a table for": the words say wait
    assert st.fuse(0.9, 0.2) == pytest.approx(0.2)  # finished words, unfinished prosody
    assert st.fuse(0.9, 0.95) >= st.THRESHOLD  # both say done
    assert st.fuse(0.6, 0.7) == pytest.approx(0.7)


@needs_model
def test_the_model_hears_a_turn_and_answers_a_probability() -> None:
    """On a corpus turn, Smart Turn gives a probability in [0, 1]; the fused model answers
    through the EouModel protocol, and without audio the text rules answer alone."""
    from turnfsm.audio.wav import read_wav
    audio = read_wav(CORPUS / "en02_list_fruit.wav").samples[0]
    truth = json.loads((CORPUS / "en02_list_fruit.truth.json").read_text())
    turn = truth["turns"][0]
    a, b = int((turn["start"] - 0.5) * 16000), int((turn["end"] + 0.2) * 16000)
    model = st.SmartTurn()
    p = model.probability(audio[a:b])
    assert 0.0 <= p <= 1.0
    fused = st.FusedModel(lambda ctx: audio[a:b], smart_turn=model)
    ctx = TurnContext(transcript="I would like apples", language="en", request_id=1)
    got = asyncio.run(fused.predict_end_of_turn(ctx))
    assert got == pytest.approx(st.fuse(fused.rules.probability("I would like apples"), p))
    assert asyncio.run(fused.unlikely_threshold("en")) == st.THRESHOLD
    silent = st.FusedModel(lambda ctx: None, smart_turn=model)
    unfinished = TurnContext(transcript="I want a table for", language="en", request_id=2)
    assert silent.probability(unfinished) < st.THRESHOLD and silent.last is not None
    assert silent.last[1] is None


@needs_model
def test_bad_audio_and_a_bad_model_file_are_refused(tmp_path: Path) -> None:
    """Empty or non-finite audio, a missing or non-model file: a SmartTurnError naming it."""
    model = st.SmartTurn()
    with pytest.raises(st.SmartTurnError, match="empty or not finite"):
        model.probability(np.zeros(0, dtype=np.float32))
    with pytest.raises(st.SmartTurnError, match="empty or not finite"):
        model.probability(np.array([0.0, np.nan], dtype=np.float32))
    with pytest.raises(st.SmartTurnError, match="no such model file"):
        st.SmartTurn(tmp_path / "absent.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(st.SmartTurnError, match=r"junk\.onnx: not a model"):
        st.SmartTurn(junk)


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    from turnfsm.cli import main
    code = main(list(args))
    got = capsys.readouterr()
    return code, got.out, got.err


@needs_model
def test_score_with_smart_turn_runs_the_fused_model_on_wav_sessions(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`score --eou-model smart-turn` asks the fused model at each decision (a list whose
    pause the words rules miss is still scored), and refuses a trace, which has no audio."""
    code, out, err = _cli(capsys, "score", str(CORPUS / "en02_list_fruit.wav"),
                          "--eou-model", "smart-turn", "--json")
    assert code == 0, err
    total = json.loads(out)["total"]["default"]
    assert total["turns"] == 1 and total["orphans"] == 0
    src = next((ROOT / "tests" / "conformance" / "public" / "traces").glob("*.jsonl"))
    trace = tmp_path / "t.jsonl"
    trace.write_text(src.read_text())
    (tmp_path / "t.truth.json").write_text('{"turns": []}')
    code, _, err = _cli(capsys, "score", str(trace), "--eou-model", "smart-turn")
    assert code == 2 and "hears audio: it scores WAV sessions, not traces" in err


@needs_model
def test_listen_with_smart_turn_asks_the_host_model(
        capsys: pytest.CaptureFixture[str]) -> None:
    """`listen --eou-model smart-turn` runs turn detection 'model' with the fused model (the
    decision records name the model's threshold 0.5); another turn detection is refused."""
    wav, words = CORPUS / "en02_list_fruit.wav", CORPUS / "en02_list_fruit.words.json"
    code, out, err = _cli(capsys, "listen", str(wav), "--words", str(words),
                          "--eou-model", "smart-turn", "--diagnostics")
    assert code == 0, err
    assert "host model answers" in out and "threshold 0.5" in out
    code, _, err = _cli(capsys, "listen", str(wav), "--words", str(words), "--eou-model",
                        "smart-turn", "--turn-detection", "vad")
    assert code != 0 and "needs turn detection 'model'" in err


@needs_model
def test_view_with_smart_turn_draws_the_fused_models_decisions(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`view --eou-model smart-turn` runs the session with the fused model: the page's
    decisions name its threshold 0.5."""
    wav, words = CORPUS / "en02_list_fruit.wav", CORPUS / "en02_list_fruit.words.json"
    page = tmp_path / "v.html"
    code, _, err = _cli(capsys, "view", str(wav), "--words", str(words), "--eou-model",
                        "smart-turn", "-o", str(page))
    assert code == 0, err
    assert "threshold 0.5 (en)" in page.read_text(encoding="utf-8")


def test_live_turn_audio_keeps_what_a_recordings_turn_audio_gives() -> None:
    """Fed a stream block by block (of any size, some longer than its ring), the live turn
    audio gives at every time what the whole recording's gives (the turn from 0.5 s before
    its first speech, the last 8 s) from a ring of 9 s."""
    from types import SimpleNamespace

    from turnfsm import outputs as out
    rng = np.random.default_rng(3)
    samples = rng.standard_normal(16000 * 30).astype(np.float32)
    whole, live = st.TurnAudio(samples), st.LiveTurnAudio()
    onset = SimpleNamespace(outputs=(out.StartOfSpeech(t=2.1, ref=None, speech_start_time=1.9),))
    for rec in (whole, live):
        rec(onset)
    pos = 0
    assert live.samples.size == 9 * 16000
    for size in [*rng.integers(100, 9000, size=300), 200_000, *rng.integers(1, 600, size=50)]:
        live.hear(samples[pos:pos + size])
        pos += int(size)
        now = pos / 16000
        got, want = live.until(now), whole.until(now)
        assert got is not None and want is not None
        assert np.array_equal(got, want), now
        if pos >= samples.size:
            break
    for rec in (whole, live):
        rec(SimpleNamespace(outputs=(out.EndOfTurn(
            t=now, new_transcript="", transcript_confidence=0.0, skip_reply=False,
            started_speaking_at=None, stopped_speaking_at=None, transcription_delay=None,
            end_of_turn_delay=None),)))
    assert live.until(now) is None


@needs_model
@pytest.mark.slow  # Whisper's model and Smart Turn's, loaded in this process: a few seconds
def test_listen_live_with_smart_turn_hears_what_the_file_run_hears(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    """`listen - --eou-model smart-turn` (a stream on standard input, Whisper's words) asks
    the fused model, which hears the turn's audio as the recording gives it at the request's
    time, and writes a trace whose replay is byte for byte its outputs (the model's answers
    and its threshold 0.5 in the trace's header)."""
    pytest.importorskip("faster_whisper")
    import io
    import sys

    from turnfsm.audio.wav import read_wav
    from turnfsm.cli import main
    wav = ROOT / "examples" / "audio" / "hesitation.wav"
    samples = read_wav(wav).samples[0]
    heard: list[np.ndarray] = []
    real = st.SmartTurn.probability

    def spy(self: st.SmartTurn, audio: np.ndarray) -> float:
        heard.append(audio.copy())
        return real(self, audio)
    monkeypatch.setattr(st.SmartTurn, "probability", spy)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(wav.read_bytes())))
    out, trace = tmp_path / "o.jsonl", tmp_path / "t.jsonl"
    assert main(["listen", "-", "--asr", "whisper", "--eou-model", "smart-turn",
                 "--diagnostics", "-o", str(out), "--out-trace", str(trace)]) == 0
    text = capsys.readouterr().out
    assert text.count("host model answers") == 2 and "threshold=0.5" in text
    asked = [json.loads(x)["t"] for x in out.read_text().splitlines()
             if '"method": "predict_end_of_turn"' in x]
    assert len(heard) == len(asked) == 2
    starts = [0.272, 3.056]  # the turns' first speech (the timeline's "spoke" spans)
    for audio, t, s in zip(heard, asked, starts, strict=True):
        a, b = round((s - st.PRE_SPEECH) * 16000), round(t * 16000)
        assert np.array_equal(audio, samples[max(0, a, b - 8 * 16000):b])
    header = json.loads(trace.read_text().splitlines()[0])
    assert header["turn_detector"]["unlikely_threshold"] == 0.5
    replayed = tmp_path / "r.jsonl"
    assert main(["replay", str(trace), "-o", str(replayed)]) == 0
    assert replayed.read_bytes() == out.read_bytes()
