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
