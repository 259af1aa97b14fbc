"""Hostile input files through the CLI: each gets one line on stderr naming the file (and
the line or field), a non-zero exit, and bounded time and memory; the direct and the asyncio
replays say the same. The slow variant reruns each in a child process under a memory limit
and a timeout."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from turnfsm.cli import main

ROOT = Path(__file__).resolve().parents[1]
WAV = str(ROOT / "examples" / "audio" / "hesitation.wav")
HEADER = '{"kind": "config"}\n'


def _trace(body: str, header: str = HEADER) -> bytes:
    return (header + body).encode("utf-8", "surrogatepass")


# name -> (file name, contents, what the message must name)
TRACES: dict[str, tuple[bytes, str]] = {
    "400-digit number": (_trace('{"t": 1.0, "kind": "audio", "duration": 1' + "0" * 400
                                + "}\n"), ":2: field 'duration'"),
    "5000-digit number": (_trace('{"t": 1.0, "kind": "audio", "count": 1' + "0" * 5000
                                 + "}\n"), ":2:"),
    "lone surrogate": (_trace('{"t": 1.0, "kind": "stt.final", "text": "\\ud800"}\n'),
                       ":2: field 'text'"),
    "invalid UTF-8": (HEADER.encode() + b'{"t": 1.0, "kind": "stt.final", "text": "\xff"}\n',
                      ":2:"),
    "line too long": (_trace('{"t": 1.0, "kind": "clear_user_turn", "note": "' + "x" * 1_000_001
                             + '"}\n'), ":2:"),
    "nested JSON": (_trace("[" * 100_000 + "]" * 100_000 + "\n"), ":2:"),
    "huge time": (_trace('{"t": 1e300, "kind": "clear_user_turn"}\n'), ":2: field 't'"),
    "huge time_limit": (_trace("", '{"kind": "config", "time_limit": 1e300}\n'), "time_limit"),
    "surrogate in header": (_trace("", '{"kind": "config", "comment": "\\udfff"}\n'),
                            "comment"),
    "unknown profile": (_trace("", '{"kind": "config", "profile": "nope"}\n'), "nope"),
    "profile outside": (_trace("", '{"kind": "config", "profile": "/etc/x.yaml"}\n'),
                        "outside"),
    "probability 2": (_trace("", '{"kind": "config", "turn_detection": "model", '
                                 '"turn_detector": {"probability": 2.0}}\n'),
                      "turn_detector.probability"),
    "probabilities text": (_trace("", '{"kind": "config", "turn_detector": '
                                      '{"probabilities": ["x"]}}\n'),
                           "turn_detector.probabilities[0]"),
    "threshold text": (_trace("", '{"kind": "config", "turn_detector": '
                                  '{"unlikely_threshold": {"en": "x"}}}\n'),
                       "turn_detector.unlikely_threshold.en"),
    "fail_calls text": (_trace("", '{"kind": "config", "turn_detector": '
                                   '{"fail_calls": "x"}}\n'), "turn_detector.fail_calls"),
    "latency huge": (_trace("", '{"kind": "config", "turn_detector": {"latency": 1e12}}\n'),
                     "turn_detector.latency"),
    "commit 1e308": (_trace('{"t": 1.0, "kind": "commit_user_turn", '
                            '"transcript_timeout": 1e308}\n'), ":2:"),
}


def _one_line(err: str, name: str, what: str) -> None:
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err[:2000]
    assert name in lines[0] and what in lines[0], lines[0][:500]
    assert "Traceback" not in err and len(lines[0]) < 600


@pytest.mark.parametrize("case", sorted(TRACES))
def test_a_hostile_trace_is_one_line_in_every_replay_mode(case: str, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """replay and replay --runtime asyncio: exit 2, the same one line naming the file and
    the line or field."""
    data, what = TRACES[case]
    p = tmp_path / "hostile.jsonl"
    p.write_bytes(data)
    errs = []
    for runtime in ("direct", "asyncio"):
        assert main(["replay", "--runtime", runtime, str(p), "-o",
                     str(tmp_path / f"{runtime}.jsonl")]) == 2
        errs.append(capsys.readouterr().err)
        _one_line(errs[-1], "hostile.jsonl", what)
    assert errs[0] == errs[1]


CHARTS: dict[str, tuple[bytes | None, str]] = {
    "invalid UTF-8": (b"events: {}\n# \xff\xfe\n", "chart.yaml:2:"),
    "too large": (b"# " + b"x" * (4 * 1024 * 1024) + b"\n", "larger than 4 MB"),
    "nested": (b"a: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "chart.yaml:1:"),
    "device": (None, "not a regular file"),
}


@pytest.mark.parametrize("case", sorted(CHARTS))
def test_a_hostile_chart_is_one_line(case: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    """turnfsm check on a chart that is not UTF-8, too large, nested too deeply, or a
    device: exit non-zero, one line."""
    data, what = CHARTS[case]
    if data is None:
        path = "/dev/zero"
    else:
        p = tmp_path / "chart.yaml"
        p.write_bytes(data)
        path = str(p)
    assert main(["check", path]) != 0
    _one_line(capsys.readouterr().err, Path(path).name, what)


WORDS = {
    "word at 1e17": ('{"words": [{"channel": "user", "word": "a", "start": 0, "end": 1e17}]}',
                     "words[0]"),
    "word of an hour": ('{"words": [{"word": "a", "start": 0, "end": 3600}]}', "words[0]"),
    "unknown channel": ('{"words": [{"channel": "usr", "word": "a", "start": 0, "end": 1}]}',
                        "words[0]: unknown channel 'usr' (the channels are user, agent)"),
    "nested": ('{"words": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested too deeply"),
    "NaN": ('{"words": [{"word": "a", "start": NaN, "end": 1}]}', "NaN"),
}


@pytest.mark.parametrize("case", sorted(WORDS))
def test_a_hostile_words_sidecar_is_one_line(case: str, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    """listen --words with a word at 1e17 s, an hour-long word, an unknown channel, deep
    nesting, NaN: exit 2, one line naming the file and the entry."""
    text, what = WORDS[case]
    p = tmp_path / "w.json"
    p.write_text(text)
    assert main(["listen", WAV, "--words", str(p), "-q"]) == 2
    _one_line(capsys.readouterr().err, "w.json", what)


PROFILES = {
    "base /dev/zero": ("profile: z\nbase: /dev/zero\n", "'base' must be a built-in profile"),
    "base outside": ("profile: z\nbase: ../../etc/passwd\n", "or below"),
    "base itself": ("profile: z\nbase: p.yaml\n", "deeper than 8"),
    "not a profile": ("a: 1\nsecret_key: 2\n", "not a profile file"),
}


@pytest.mark.parametrize("case", sorted(PROFILES))
def test_a_hostile_profile_is_one_line(case: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    """listen --profile FILE whose base is a device, outside its folder, itself, or a file
    that is no profile (its keys are not echoed): exit 2, one line."""
    text, what = PROFILES[case]
    p = tmp_path / "p.yaml"
    p.write_text(text)
    assert main(["listen", WAV, "--profile", str(p), "-q"]) == 2
    err = capsys.readouterr().err
    _one_line(err, "p.yaml", what)
    assert "secret_key" not in err


GRIDS = {
    "samples 1e9": (b"min_delay: [0.5]\nsamples: 1000000000\n", "samples"),
    "nested": (b"min_delay: " + b"[" * 100_000 + b"]" * 100_000 + b"\n", "nested too deeply"),
    "invalid UTF-8": (b"min_delay: [0.5]\n# \xff\n", "not UTF-8"),
}


@pytest.mark.parametrize("case", sorted(GRIDS))
def test_a_hostile_grid_is_one_line(case: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    """tune --grid with samples: 1e9, deep nesting or bytes that are not UTF-8: exit 2, one
    line naming the file, before any replay."""
    data, what = GRIDS[case]
    p = tmp_path / "g.yaml"
    p.write_bytes(data)
    assert main(["tune", WAV, "--grid", str(p), "-q"]) == 2
    _one_line(capsys.readouterr().err, "g.yaml", what)


def _child(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """``turnfsm ARGV`` in a child limited to 1 GB of address space and 60 s."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    return subprocess.run([sys.executable, "-m", "turnfsm.cli", *argv], capture_output=True,
                          text=True, timeout=60, preexec_fn=limit, env=env)


@pytest.mark.slow
def test_every_hostile_input_is_bounded_in_a_child_process(tmp_path: Path) -> None:
    """Each hostile trace, words sidecar and grid, in a child process limited to 1 GB and
    60 s: exit 2 with one line (no MemoryError, no timeout)."""
    runs: list[tuple[list[str], str]] = []
    for i, (data, _what) in enumerate(TRACES.values()):
        p = tmp_path / f"t{i}.jsonl"
        p.write_bytes(data)
        runs += [(["replay", str(p)], p.name), (["replay", "--runtime", "asyncio", str(p)],
                                                 p.name)]
    for i, (text, _what) in enumerate(WORDS.values()):
        p = tmp_path / f"w{i}.json"
        p.write_text(text)
        runs.append((["listen", WAV, "--words", str(p), "-q"], p.name))
    for i, (data, _what) in enumerate(GRIDS.values()):
        p = tmp_path / f"g{i}.yaml"
        p.write_bytes(data)
        runs.append((["tune", WAV, "--grid", str(p), "-q"], p.name))
    big = tmp_path / "big.jsonl"  # a 200 MB line: refused unread
    with open(big, "w") as f:
        f.write(HEADER + '{"t": 1.0, "kind": "clear_user_turn", "note": "')
        chunk = "x" * (1 << 20)
        for _ in range(200):
            f.write(chunk)
        f.write('"}\n')
    runs.append((["replay", str(big)], big.name))
    for argv, name in runs:
        r = _child(argv)
        assert r.returncode == 2, (argv, r.stderr[-2000:])
        assert r.stderr.count("\n") == 1 and name in r.stderr, (argv, r.stderr[-2000:])
    assert json.loads(HEADER)  # the header the traces share is valid


def test_a_huge_transcript_latency_is_refused_not_looped(capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """listen --words --asr-latency 1e308 puts finals at 1e308 s: one line naming the
    input, exit 2 (the virtual clock no longer walks there a day at a time)."""
    words = str(ROOT / "examples" / "audio" / "two_turns.words.json")
    wav = str(ROOT / "examples" / "audio" / "two_turns.wav")
    assert main(["listen", wav, "--words", words, "-q", "--asr-latency", "1e308"]) == 2
    _one_line(capsys.readouterr().err, "two_turns.wav", "1e+308")
