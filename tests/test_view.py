"""`turnfsm view`: the session page's content (fast, no browser) and its bad inputs."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest

from turnfsm import outputs as out
from turnfsm.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "audio"


def view_args(*argv: str) -> argparse.Namespace:
    """The parsed ``turnfsm view`` arguments."""
    return build_parser("view").parse_args(["view", *argv])


def page_json(html: str) -> dict[str, Any]:
    """The data the page embeds."""
    m = re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S)
    assert m is not None
    data: dict[str, Any] = json.loads(m.group(1).replace("<\\/", "</"))
    return data


@pytest.fixture(scope="module")
def hesitation() -> tuple[str, Any]:
    """The hesitation example's page and its run."""
    from turnfsm.view.command import build_page
    from turnfsm.view.run import run_session
    args = view_args(str(AUDIO / "hesitation.wav"), "--words",
                     str(AUDIO / "hesitation.words.json"))
    return build_page(args), run_session(args)


def states_at(data: dict[str, Any], step: int) -> set[str]:
    """Every region's state after kept step ``step``, decoded from the page's changes."""
    cur = {k: r["states"].index(r["initial"]) for k, r in enumerate(data["regions"])}
    for s in data["steps"][: step + 1]:
        for r, st in s["ch"]:
            cur[r] = st
    return {f"{data['regions'][r]['name']}/{data['regions'][r]['states'][st]}"
            for r, st in cur.items()}


def test_page_is_self_contained(hesitation: tuple[str, Any]) -> None:
    """One file: no external script, style, image or font, the audio and diagram inlined."""
    html, _ = hesitation
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html)
    assert "<link" not in html and "@import" not in html and "url(http" not in html
    data = page_json(html)
    assert data["audio"].startswith("data:audio/wav;base64,")
    assert data["channels"] == ["user"] and len(data["env"]) == 1
    assert "<svg" in html and "<title>turn/delivering</title>" in html


def test_every_decision_with_its_why(hesitation: tuple[str, Any]) -> None:
    """Each end of turn is in the page with its decision record's words and trigger."""
    html, run = hesitation
    data = page_json(html)
    eots = [o for r in run.records for o in r.outputs if isinstance(o, out.EndOfTurn)]
    assert eots and len(data["turns"]) == len(eots)
    for turn, o in zip(data["turns"], eots, strict=True):
        assert o.decision is not None and turn["why"].startswith(o.decision.why())
        assert turn["trigger"] == o.decision.trigger and turn["text"] == o.new_transcript


def test_step_states_decode_to_the_records(hesitation: tuple[str, Any]) -> None:
    """The change-encoded states give back, at every decision, the step record's states."""
    html, run = hesitation
    data = page_json(html)
    by_index = {r.index: r for r in run.records}
    for turn in data["turns"]:
        rec = by_index[data["steps"][turn["step"]]["i"]]
        assert states_at(data, turn["step"]) == {f"{a}/{b}" for a, b in rec.state}
    assert len(data["steps"]) + data["stepsOmitted"] == len(run.records)


def test_stereo_drops_and_interruptions(tmp_path: Path) -> None:
    """A backchannel's drop and a barge-in's interruption are in the page with their why."""
    for name, kind in (("backchannel", "drops"), ("barge_in", "interruptions")):
        page = tmp_path / f"{name}.html"
        # the backchannel's words given by name, the barge-in's found beside it (auto)
        words = str(AUDIO / f"{name}.words.json") if name == "backchannel" else "auto"
        assert main(["view", str(AUDIO / f"{name}.wav"), "--words", words,
                     "-o", str(page)]) == 0
        data = page_json(page.read_text(encoding="utf-8"))
        assert data["channels"] == ["user", "agent"] and data["agent"]
        assert data[kind] and all(x["why"] for x in data[kind]), name


def test_trace_and_output_sessions(tmp_path: Path) -> None:
    """A trace is replayed; an output with its trace is checked against the replay."""
    trace, outl = tmp_path / "t.jsonl", tmp_path / "o.jsonl"
    wav, words = str(AUDIO / "two_turns.wav"), str(AUDIO / "two_turns.words.json")
    assert main(["listen", wav, "--words", words, "-q", "--out-trace", str(trace),
                 "-o", str(outl)]) == 0
    a, b = tmp_path / "a.html", tmp_path / "b.html"
    assert main(["view", str(trace), "-o", str(a)]) == 0
    assert main(["view", str(outl), "--trace", str(trace), "-o", str(b)]) == 0
    da, db = page_json(a.read_text()), page_json(b.read_text())
    assert len(da["turns"]) == len(db["turns"]) == 2 and da["turns"] == db["turns"]
    assert da["env"]  # the WAV the trace names is still there: its waveform


@pytest.mark.parametrize(("argv", "message"), [
    (["missing.wav"], "missing.wav: no such file"),
    (["{bad}"], "neither a WAV file nor JSON Lines"),
    (["{trace}", "-o", "{tmp}/page.txt"], "give a file ending in .html"),
    (["{output}"], "give its trace with --trace"),
    (["{badwav}"], "badwav.wav"),
    (["{badtrace}"], "badtrace.jsonl:2"),
])
def test_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               argv: list[str], message: str) -> None:
    """Bad sessions and options: one line naming what and where, exit 2."""
    (tmp_path / "bad.jsonl").write_text("not json\n")
    (tmp_path / "badwav.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (tmp_path / "trace.jsonl").write_text('{"kind": "config"}\n')
    (tmp_path / "output.jsonl").write_text('{"t": 0.0, "kind": "close"}\n')
    (tmp_path / "badtrace.jsonl").write_text('{"kind": "config"}\n{"t": "x", "kind": "vad"}\n')
    names = {"bad": "bad.jsonl", "badwav": "badwav.wav", "trace": "trace.jsonl",
             "output": "output.jsonl", "badtrace": "badtrace.jsonl"}
    argv = [a.format(tmp=tmp_path, **{k: str(tmp_path / v) for k, v in names.items()})
            for a in argv]
    assert main(["view", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("turnfsm view: ") and message in err, err


def test_embedded_audio_is_g711_mulaw(tmp_path: Path) -> None:
    """The page's audio decodes with the standard G.711 mu-law decoder to the samples, and
    its envelope is each 10 ms's peak level."""
    import wave

    import numpy as np

    from turnfsm.audio.envelope import AUDIO_RATE, ENV_RATE, PageAudio
    t = np.arange(16000 * 3) / 16000
    x = 0.5 * np.sin(2 * np.pi * 220 * t) * np.linspace(0.01, 1, t.size)
    path = tmp_path / "tone.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes((x * 32767).astype("<i2").tobytes())
    page = PageAudio(str(path), audio=True)
    assert page.wav is not None and page.duration == 3.0 and page.channels == 1
    wav = page.wav
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and int.from_bytes(wav[20:22], "little") == 7
    codes = np.frombuffer(wav[wav.index(b"data") + 8:], np.uint8).astype(np.int32)
    assert codes.size == 3 * AUDIO_RATE
    u = ~codes & 0xFF
    mag = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
    decoded = np.where(u & 0x80, 0x84 - mag, mag - 0x84) / 32768.0
    want = x[::2]
    assert np.max(np.abs(decoded - want)[100:-100]) < 0.02 + 0.06 * np.abs(want).max()
    assert np.corrcoef(decoded, want)[0, 1] > 0.999
    import base64
    env = np.frombuffer(base64.b64decode(page.env[0]), np.uint8)
    assert env.size == 3 * ENV_RATE
    peak_db = 20 * np.log10(np.abs(x).reshape(-1, 160).max(axis=1))
    assert np.all(np.abs(env / 255 * 80 - 80 - peak_db) < 0.5)
    assert PageAudio(str(path), audio=False).wav is None


def test_serve_serves_the_page_on_localhost(tmp_path: Path) -> None:
    """--serve prints a 127.0.0.1 URL that serves the same page, and writes no file."""
    import subprocess
    import sys
    import urllib.request
    trace = tmp_path / "t.jsonl"
    assert main(["listen", str(AUDIO / "two_turns.wav"), "--words",
                 str(AUDIO / "two_turns.words.json"), "-q", "--out-trace", str(trace)]) == 0
    proc = subprocess.Popen([sys.executable, "-m", "turnfsm.cli", "view", str(trace),
                             "--serve", "--port", "0"], cwd=tmp_path,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        m = re.match(r"serving (http://127\.0\.0\.1:\d+/) ", line)
        assert m, line
        with urllib.request.urlopen(m.group(1), timeout=30) as r:
            body = r.read().decode("utf-8")
            assert r.headers["Content-Type"].startswith("text/html")
        assert len(page_json(body)["turns"]) == 2
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout is not None:
            proc.stdout.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.jsonl"]


def test_without_graphviz_the_page_has_its_own_state_view(
        monkeypatch: pytest.MonkeyPatch, hesitation: tuple[str, Any]) -> None:
    """Without Graphviz's dot the command still works: no SVG, the region table and a
    note instead (the table's rows are drawn from the chart's regions by the page)."""
    from turnfsm.view.command import build_page
    monkeypatch.setenv("TURNFSM_DOT", "no-such-dot-here")
    html = build_page(view_args(str(AUDIO / "hesitation.wav"), "--words",
                                str(AUDIO / "hesitation.words.json")))
    assert "<svg" not in html and "Graphviz is not installed" in html
    assert '<table id="states">' in html
    assert page_json(html)["regions"] == page_json(hesitation[0])["regions"]


def test_wav_options_are_refused_for_a_trace(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """--words or --min-delay with a trace is an error, not silently ignored."""
    trace = tmp_path / "t.jsonl"
    assert main(["listen", str(AUDIO / "two_turns.wav"), "--words",
                 str(AUDIO / "two_turns.words.json"), "-q", "--out-trace", str(trace)]) == 0
    capsys.readouterr()
    for flag in (["--min-delay", "0.2"], ["--words", "w.json"], ["--no-interims"]):
        assert main(["view", str(trace), "-o", str(tmp_path / "p.html"), *flag]) == 2
        err = capsys.readouterr().err
        assert f"{flag[0]} shapes how a WAV file is run" in err and err.count("\n") == 1
    assert not (tmp_path / "p.html").exists()
