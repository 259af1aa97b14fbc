"""The trace reader and the replay command refuse malformed traces with file, line and field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from turnfsm.cli import main
from turnfsm.errors import TraceError
from turnfsm.replay import parse_trace

HEADER = '{"kind": "config", "turn_detection": "vad"}\n'


def err(text: str) -> TraceError:
    with pytest.raises(TraceError) as info:
        parse_trace(text, "t.jsonl")
    return info.value


@pytest.mark.parametrize(
    ("body", "line", "field", "words"),
    [
        ('{"t": 1.0, "kind": "vad.start_of_speech"\n', 2, None, "invalid JSON"),
        ('{"t": 1.0, "kind": "vad.jump"}\n', 2, "kind", "unknown kind"),
        ('{"t": 1.0, "kind": "stt.final", "text": "a", "colour": 1}\n', 2, "colour",
         "unknown field"),
        ('{"t": 1.0, "kind": "stt.final"}\n', 2, "text", "missing required"),
        ('{"t": 2.0, "kind": "stt.final", "text": "a"}\n{"t": 1.0, "kind": "clear_user_turn"}\n',
         3, "t", "backwards"),
        ('{"t": NaN, "kind": "clear_user_turn"}\n', 2, "t", "finite"),
        ('{"t": 1.0, "kind": "stt.final", "text": "a", "confidence": Infinity}\n', 2,
         "confidence", "finite"),
        ('{"t": 1.0, "kind": "vad.end_of_speech", "silence_duration": -0.5}\n', 2,
         "silence_duration", "negative"),
        ('{"t": -1.0, "kind": "clear_user_turn"}\n', 2, "t", "negative"),
        ('{"kind": "clear_user_turn"}\n', 2, "t", "missing"),
        ('{"t": 1.0, "kind": "set_vad", "enabled": "yes"}\n', 2, "enabled", "true or false"),
        ('{"t": 1.0, "kind": "update_options", "endpointing": {"min": 1}}\n', 2,
         "endpointing.min", "unknown field"),
        ('[1, 2]\n', 2, None, "JSON object"),
    ],
)
def test_malformed_input_line(body: str, line: int, field: str | None, words: str) -> None:
    """Each malformed input line is refused naming the file, its line and the field."""
    e = err(HEADER + body)
    assert e.path == "t.jsonl" and e.line == line and e.field == field
    assert words in str(e) and str(e).startswith(f"t.jsonl:{line}")


def test_header_errors() -> None:
    """A missing or malformed header is refused at line 1."""
    assert err('{"t": 0, "kind": "audio"}\n').line == 1
    e = err('{"kind": "config", "turn_detection": "sometimes"}\n')
    assert e.line == 1 and e.field == "turn_detection"
    e = err('{"kind": "config", "endpointing": {"min_delay": 0.5, "typo": 1}}\n')
    assert e.field == "endpointing.typo"
    e = err('{"kind": "config", "shiny": true}\n')
    assert e.field == "shiny"


def test_blank_lines_and_notes_accepted() -> None:
    """Blank lines are skipped but counted; notes are allowed on any input."""
    tr = parse_trace(HEADER + "\n" + '{"t": 1, "kind": "clear_user_turn", "note": "x"}\n')
    assert tr.inputs[0].line == 3 and tr.inputs[0].t == 1.0


def test_replay_cli_exit_status_2_on_bad_trace(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    """`turnfsm replay` on a malformed trace exits 2 with file, line and field on stderr."""
    p = tmp_path / "bad.jsonl"
    p.write_text(HEADER + '{"t": 1.0, "kind": "stt.final", "text": "hi", "confidence": NaN}\n')
    assert main(["replay", str(p)]) == 2
    msg = capsys.readouterr().err
    assert f"{p}:2: field 'confidence'" in msg and "finite" in msg


def test_replay_cli_writes_output(tmp_path: Path) -> None:
    """`turnfsm replay TRACE -o OUT` writes the output format."""
    p = tmp_path / "ok.jsonl"
    p.write_text(HEADER + '{"t": 1.0, "kind": "vad.start_of_speech", "speech_duration": 0.2}\n')
    o = tmp_path / "out.jsonl"
    assert main(["replay", str(p), "-o", str(o)]) == 0
    assert o.read_text().splitlines()[0] == (
        '{"t": 1.0, "kind": "on_start_of_speech", "input": 2, "speech_start_time": 0.8}')


def test_replay_example_runs_as_a_program() -> None:
    """`turnfsm replay --example` prints the built-in session as a timeline."""
    r = subprocess.run([sys.executable, "-m", "turnfsm.cli", "replay", "--example"],
                       capture_output=True, text=True, check=True)
    assert "END OF TURN 'Can you book a table for two tonight?'" in r.stdout
    assert "INTERRUPTION of the agent" in r.stdout


def test_invalid_backchannel_boundary_is_a_setup_error(tmp_path: Path) -> None:
    """A negative backchannel boundary is refused at setup (one error line)."""
    from turnfsm.replay import replay_file
    p = tmp_path / "b.jsonl"
    p.write_text('{"kind": "config", "backchannel_boundary": [-1.0, 2.0]}\n'
                 '{"t": 1.0, "kind": "clear_user_turn"}\n')
    out = replay_file(p)
    assert out.count("\n") == 1 and '"source": "setup"' in out and "between 0 and 86400" in out


def test_streaming_replay_equals_the_whole_file_replay() -> None:
    """replay_stream writes, one line at a time, exactly what replay_file returns."""
    import io

    from turnfsm.replay import replay_file
    from turnfsm.replay.replay import replay_stream
    root = Path(__file__).resolve().parents[1] / "tests" / "conformance"
    for p in sorted(root.glob("*/traces/*.jsonl")):
        buf = io.StringIO()
        replay_stream(p, buf, diagnostics=True)
        assert buf.getvalue() == replay_file(p, diagnostics=True), p


def test_parallel_replay_of_a_folder_equals_the_serial_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`replay --dir --jobs 2` writes the same files as `--jobs 1`. One public trace has a
    header the engine refuses: its file holds the format's error line, stderr says so, and
    the folder's replay still succeeds (that line is the trace's expected output), while the
    same trace alone exits 2."""
    root = Path(__file__).resolve().parents[1] / "tests" / "conformance" / "public" / "traces"
    a, b = tmp_path / "serial", tmp_path / "parallel"
    assert main(["replay", "--dir", str(root), "-o", str(a), "--jobs", "1"]) == 0
    assert main(["replay", "--dir", str(root), "-o", str(b), "--jobs", "2"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and all("71_adv_invalid_backchannel_boundary" in x and
                                 "its output is the error line" in x for x in err)
    assert main(["replay", str(root / "71_adv_invalid_backchannel_boundary.jsonl"), "-o",
                 str(tmp_path / "one.jsonl")]) == 2
    refused = (a / "71_adv_invalid_backchannel_boundary.jsonl").read_text()
    assert refused.count("\n") == 1 and '"source": "setup"' in refused
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir()) and len(names) == 50
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


def test_a_bad_line_mid_trace_leaves_no_partial_output(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed line stops the streaming replay: exit 2 naming the line; no -o file."""
    p = tmp_path / "t.jsonl"
    p.write_text('{"kind": "config"}\n{"t": 1.0, "kind": "vad.start_of_speech"}\n'
                 '{"t": 2.0, "kind": "vad.end_of_speech", "silence_duration": "x"}\n')
    o = tmp_path / "out.jsonl"
    assert main(["replay", str(p), "-o", str(o)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:3" in err and "silence_duration" in err
    assert not o.exists() and not list(tmp_path.glob("*.partial"))
