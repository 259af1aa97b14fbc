"""The streaming replay's typed window decoder: every window line it takes is one the
general reader takes the same way, and everything else gets the general reader's answer."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from turnfsm.errors import TraceError
from turnfsm.replay.replay import replay_file, replay_stream


@pytest.fixture(autouse=True)
def _msgspec(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trace here, short as it is, is read with msgspec's decoders (as a long one is)."""
    from turnfsm.replay import trace
    monkeypatch.setattr(trace, "MSGSPEC_MIN_BYTES", 0)


HEAD = '{"kind": "config", "turn_detection": "vad"}\n'
START = '{"t": 0.5, "kind": "vad.start_of_speech", "speech_duration": 0.2}\n'
END = '{"t": 1.5, "kind": "vad.end_of_speech", "silence_duration": 0.3}\n'

WINDOWS = {
    "int-time": '{"t": 1, "kind": "vad.inference_done", "raw_accumulated_speech": 0.5}',
    "all-fields": ('{"t": 1.0, "kind": "vad.inference_done", "raw_accumulated_speech": 0.5, '
                   '"raw_accumulated_silence": 0.0, "probability": 0.9, "speaking": true, '
                   '"inference_duration": 0.01, "speech_duration": 0.4, '
                   '"silence_duration": 0.0}'),
    "duplicate-key": '{"t": 0.7, "t": 1.0, "kind": "vad.inference_done"}',
    "note": '{"t": 1.0, "kind": "vad.inference_done", "note": "a comment"}',
    "huge": '{"t": 1e400, "kind": "vad.inference_done"}',
    "negative": '{"t": 1.0, "kind": "vad.inference_done", "probability": -0.1}',
    "bool-number": '{"t": 1.0, "kind": "vad.inference_done", "probability": true}',
    "int-flag": '{"t": 1.0, "kind": "vad.inference_done", "speaking": 1}',
    "unknown": '{"t": 1.0, "kind": "vad.inference_done", "speech": 0.2}',
    "backwards": '{"t": 0.1, "kind": "vad.inference_done"}',
    "nan": '{"t": 1.0, "kind": "vad.inference_done", "probability": NaN}',
    "string-time": '{"t": "1.0", "kind": "vad.inference_done"}',
    "big-int": '{"t": 1.0, "kind": "vad.inference_done", "probability": ' + "9" * 400 + "}",
}


@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_stream_and_file_replays_agree_on_window_lines(name: str, tmp_path: Path) -> None:
    """A window line, well-formed or not, gives the streaming replay (typed decoder) the
    output or the error the whole-file replay (general reader) gives."""
    p = tmp_path / "t.jsonl"
    p.write_text(HEAD + START + WINDOWS[name] + "\n" + END)

    def run(f: object) -> str:
        try:
            return f() if callable(f) else ""  # type: ignore[no-any-return]
        except TraceError as e:
            return f"error: {e}"
    whole = run(lambda: replay_file(p))
    buf = io.StringIO()
    streamed = run(lambda: replay_stream(p, buf) or buf.getvalue())
    if whole.startswith("error"):
        assert streamed == whole
    else:
        assert streamed == whole and '"on_vad_inference_done"' in whole
