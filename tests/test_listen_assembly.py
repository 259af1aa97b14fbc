"""`listen`'s trace assembly: the lines put in time order and made trace inputs without a
Python call per line, and the three ways of building a file's trace (16-bit samples without
numpy, the float path in blocks, the whole file in memory) agree input for input."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from turnfsm.audio.listen import (
    ORDER,
    ListenOptions,
    _inputs,
    build_trace,
    stream_trace,
    trace_lines,
)
from turnfsm.audio.wav import WavStream, read_wav
from turnfsm.options import EngineOptions
from turnfsm.replay import TraceInput

ROOT = Path(__file__).resolve().parents[1]


def _plain(lines: list[dict[str, Any]]) -> tuple[TraceInput, ...]:
    """The assembly as a sort and a TraceInput per line."""
    lines.sort(key=lambda x: (x["t"], ORDER.get(x["kind"], 5)))
    return tuple(TraceInput(float(x.pop("t")), x.pop("kind"), k + 2, x)
                 for k, x in enumerate(lines))


def test_inputs_are_the_sorted_lines_as_trace_inputs() -> None:
    """Random lines (equal times, kinds of equal and unknown order, integer times, extra
    fields) become the inputs a stable sort by (t, ORDER) and one TraceInput per line give,
    fields in their order, t and kind taken out."""
    r = random.Random(5)
    kinds = [*ORDER, "stt.other", "custom"]
    for _ in range(200):
        lines = []
        for k in range(r.randint(0, 60)):
            t: float = r.choice([0, 1, 2, 0.5, 1.0, r.random() * 3, 2.000001])
            line: dict[str, Any] = {"t": t, "kind": r.choice(kinds), "n": k}
            if r.random() < 0.3:
                line = {"x": k, **line, "z": [k]}
            lines.append(line)
        copy = [dict(x) for x in lines]
        got = _inputs(lines)
        want = _plain(copy)
        assert got == want
        assert all(type(i) is TraceInput and type(i.t) is float for i in got)
        assert [list(i.fields) for i in got] == [list(i.fields) for i in want]


@pytest.mark.parametrize("wav", [ROOT / "examples" / "dialogues" / "06_backchannel_early.wav",
                                 ROOT / "examples" / "dialogues" / "15_noisy_barge_in_middle.wav"],
                         ids=lambda p: p.stem)
def test_the_three_ways_of_building_a_trace_agree(wav: Path) -> None:
    """A stereo dialogue with interruption detection: its trace from the file's 16-bit
    samples (no numpy, the agent's channel without window lines), from the float path in
    blocks, and from the whole file in memory is the same, line for line."""
    opts = ListenOptions(engine=EngineOptions(stt=False, interruption_detection=True))
    pcm16, _ = stream_trace(WavStream(wav), opts)
    floats, audio = stream_trace(WavStream(wav), opts, keep_audio=True)
    whole = build_trace(read_wav(wav), opts)
    assert audio is not None
    assert trace_lines(pcm16) == trace_lines(floats) == trace_lines(whole)
    kinds = {i.kind for i in pcm16.inputs}
    assert {"agent.speech_started", "overlap", "vad.inference_done"} <= kinds


def test_a_long_16_bit_file_goes_through_numpy_with_the_same_trace(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A 16 kHz 16-bit file longer than NUMPY_AFTER channel-seconds takes the float path
    (numpy's conversion is cheaper per window once its import is paid) and gives the trace
    of the file's own samples."""
    import turnfsm.audio.listen as listen
    from turnfsm.audio.vad import VadStream
    wav = ROOT / "examples" / "dialogues" / "09_barge_in_middle.wav"
    opts = ListenOptions(engine=EngineOptions(stt=False, interruption_detection=True))
    calls: list[str] = []
    push, push16 = VadStream.push, VadStream.push_pcm16

    def spy(name: str, real: Any) -> Any:
        def method(self: VadStream, pcm: Any) -> Any:
            calls.append(name)
            return real(self, pcm)
        return method
    monkeypatch.setattr(VadStream, "push", spy("push", push))
    monkeypatch.setattr(VadStream, "push_pcm16", spy("push_pcm16", push16))
    short, _ = stream_trace(WavStream(wav), opts)
    assert set(calls) == {"push_pcm16"}
    duration = WavStream(wav).duration
    assert duration is not None and duration * 2 < listen.NUMPY_AFTER
    monkeypatch.setattr(listen, "NUMPY_AFTER", duration * 2 - 0.5)
    calls.clear()
    long, _ = stream_trace(WavStream(wav), opts)
    assert set(calls) == {"push"}
    assert trace_lines(long) == trace_lines(short)


def test_models_are_reused_across_files_with_the_same_traces(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Files read one after another in a process reuse the VAD models the earlier ones
    loaded (no model loaded after the first file), and each trace is the one fresh models
    give, whatever was heard before."""
    import turnfsm.audio.listen as listen
    a = ROOT / "examples" / "dialogues" / "07_backchannel_late.wav"
    b = ROOT / "examples" / "dialogues" / "14_noisy_hesitation_1000ms.wav"
    opts = ListenOptions(engine=EngineOptions(stt=False, interruption_detection=True))
    monkeypatch.setattr(listen, "_IDLE", [])
    fresh = {}
    for wav in (a, b):
        listen._IDLE.clear()
        fresh[wav] = trace_lines(stream_trace(WavStream(wav), opts)[0])
    loaded: list[object] = []
    real = listen.SileroVad

    def counting() -> object:
        loaded.append(1)
        return real()
    monkeypatch.setattr(listen, "SileroVad", counting)
    for wav in (b, a, b):
        assert trace_lines(stream_trace(WavStream(wav), opts)[0]) == fresh[wav]
        assert trace_lines(build_trace(read_wav(wav), opts)) == fresh[wav]
    assert loaded == [] and len(listen._IDLE) == 2
