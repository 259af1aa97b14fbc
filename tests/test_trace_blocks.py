"""The trace reader reads whole blocks of lines: the same inputs and the same errors, at the
same lines, as reading the file one line at a time, wherever the blocks end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from turnfsm.errors import TraceError
from turnfsm.replay import trace as tr


@pytest.fixture(autouse=True)
def _msgspec(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every trace here, short as it is, is read with msgspec's decoders (as a long one is)."""
    from turnfsm.replay import trace
    monkeypatch.setattr(trace, "MSGSPEC_MIN_BYTES", 0)


HEADER = b'{"kind": "config"}\n'
W = b'{"t": %s, "kind": "vad.inference_done", "raw_accumulated_speech": 0.1}'


def _one_at_a_time(path: Path) -> list[Any]:
    """What the reader gave before blocks: each line read as text in turn, a window line
    through the typed decoder, any other decoded and checked."""
    tr._load_msgspec()
    out: list[Any] = []
    inputs = tr._Inputs(str(path))
    with open(path, "rb") as f:
        lines = tr._lines(f, str(path))
        next(lines)  # the header
        for n, line in lines:
            try:
                w = tr._window_decode(line)
            except tr._NOT_A_WINDOW:
                pass
            else:
                if inputs.last_t <= w.t:
                    inputs.last_t = w.t
                    fields = tr._window_fields(w)
                    del fields["kind"]
                    out.append(tr.TraceInput(fields.pop("t"), "vad.inference_done", n, fields))
                    continue
            if line and not line.isspace():
                out.append(inputs.check(n, tr._decode(line, str(path), n)))
    return out


def _outcome(fn: Any, path: Path) -> tuple[str, Any]:
    try:
        return "ok", fn(path)
    except TraceError as e:
        return "error", str(e)


BODIES = {
    "windows and others": W % b"0.032" + b"\n" + W % b"0.064" + b'\n{"t": 0.1, "kind": '
    b'"vad.start_of_speech", "speech_duration": 0.05}\n' + W % b"0.096" + b"\n",
    "CR LF": (W % b"0.032" + b"\r\n" + b'{"t": 0.05, "kind": "audio"}\r\n'),
    "no final newline": W % b"0.032" + b"\n" + W % b"0.064",
    "blank and space lines": b"\n   \n" + W % b"0.032" + b"\n\t\n" + W % b"0.064" + b"\n\n",
    "final line of spaces": W % b"0.032" + b"\n   ",
    "time going back": W % b"0.064" + b"\n" + W % b"0.032" + b"\n",
    "negative window": W % b"-1.0" + b"\n",
    "unknown window field": b'{"t": 0.032, "kind": "vad.inference_done", "x": 1}\n',
    "not UTF-8": W % b"0.032" + b"\n" + b'{"t": 0.05, "kind": "vad.inference_done\xff"}\n',
    "bad JSON then long line": b"{\n" + b'{"t": 1, "note": "' + b"x" * 300 + b'"}\n',
    "long line": W % b"0.032" + b"\n" + b'{"t": 1, "note": "' + b"x" * 300 + b'"}\n',
    "long final line": W % b"0.032" + b"\n" + b'{"t": 1, "note": "' + b"x" * 300,
    "long window line": W % (b"0." + b"0" * 300 + b"1") + b"\n",
    "long multi-byte line": b'{"t": 1, "kind": "audio", "n": "' + "é".encode() * 60 + b'"}\n',
}


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 20])
@pytest.mark.parametrize("name", sorted(BODIES))
def test_blocks_read_as_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
                              block: int) -> None:
    """Inputs and errors are those of the line-at-a-time reader, for blocks that cut lines
    anywhere (a 100-character line limit, so long lines span blocks)."""
    monkeypatch.setattr(tr, "MAX_LINE_CHARS", 100)
    monkeypatch.setattr(tr, "_LINE_BYTES", 100 * 4 + 3)
    monkeypatch.setattr(tr, "_BLOCK", block)
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + BODIES[name])

    def blocks(p: Path) -> list[Any]:
        with tr.TraceStream(p) as s:
            return list(s)
    got, want = _outcome(blocks, path), _outcome(_one_at_a_time, path)
    assert got == want
    if name.startswith(("long", "bad JSON then")):
        assert got[0] == "error" and (":2:" in got[1] or ":3:" in got[1])


def test_window_lines_take_the_typed_path(tmp_path: Path) -> None:
    """Window lines (CR LF ends too) come out of ``items`` as the typed decoder's structs;
    other lines as checked inputs."""
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + W % b"0.032" + b"\r\n" + b'{"t": 0.05, "kind": "audio"}\n'
                     + W % b"0.064")
    with tr.TraceStream(path) as s:
        items = list(s.items())
    assert [type(x) is tuple for x in items] == [True, False, True]
    assert items[0][0] == 2 and items[0][1].t == 0.032  # type: ignore[index,union-attr]
    assert items[2][0] == 4  # type: ignore[index]


def test_window_line_times_as_repr(tmp_path: Path) -> None:
    """A window's output time is written as ``repr(round(t, 3))`` (the streamed replay
    writes whole milliseconds from integers): on milliseconds from 1 ms to the largest trace
    time, and on times between them."""
    import io
    import json
    import random

    from turnfsm.replay.header import MAX_TRACE_TIME
    from turnfsm.replay.replay import replay_stream

    rng = random.Random(7)
    ts = {0.0, 1e-7, 0.0004, 0.0005, 0.0015, 0.001, 0.032, 0.1 + 0.2, 1.0, 2.5, 123.456,
          999_999.999, MAX_TRACE_TIME - 0.001, MAX_TRACE_TIME}
    for digits in range(1, 13):
        ts.update(rng.randrange(1, 10**digits) / 1000.0 for _ in range(40))
        ts.update(rng.random() * 10**(digits - 3) for _ in range(20))
    times = sorted(t for t in ts if t <= MAX_TRACE_TIME)
    path = tmp_path / "t.jsonl"
    path.write_bytes(HEADER + b"".join(W % repr(t).encode() + b"\n" for t in times))
    out = io.StringIO()
    replay_stream(path, out)
    got = [line for line in out.getvalue().splitlines() if "on_vad_inference_done" in line]
    want = [json.dumps(round(t, 3) or 0.0) for t in times]
    assert [g.split(",")[0].removeprefix('{"t": ') for g in got] == want


class _Text(str):
    """A str subclass (as an enum's value may be)."""


_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True) | st.text()
    | st.text().map(_Text) | st.just(object.__new__(type("Odd", (), {"__str__": lambda s: "o"}))),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner), max_leaves=8)


@settings(deadline=None)  # the profile's examples: 60 by default, 300 in CI
@given(t=st.floats(allow_nan=True, allow_infinity=True), kind=st.text(),
       fields=st.dictionaries(st.sampled_from(["input", "call", "frames", "text", "x", "é",
                                               "accumulated_word_count", "\n"]) | st.text(),
                              _values, max_size=6))
def test_output_text_as_encoded(t: float, kind: str, fields: dict[str, Any]) -> None:
    """An output line written directly is the JSON encoder's text of the output record,
    whatever the values (text with quotes, controls and surrogates, NaN, infinities, huge
    integers, booleans and floats in integer fields, lists, other objects)."""
    fields = {k: v for k, v in fields.items() if k not in ("t", "kind")}

    def outcome(fn: Any) -> Any:
        try:
            return fn()
        except (ValueError, OverflowError) as e:  # int() of NaN or an infinity: both raise
            return type(e)
    assert outcome(lambda: tr.output_text(t, kind, **fields)) == outcome(
        lambda: tr.encode_line(tr.output_line(t, kind, **fields)) + "\n")
