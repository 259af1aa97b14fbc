"""The command line as a user meets it: profile defaults, output files, help, errors, the
score table, the reference replayer and the timeline (run in-process with this src)."""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from turnfsm.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
AUDIO = ROOT / "examples" / "audio"
HESITATION = AUDIO / "hesitation.wav"
HESITATION_WORDS = AUDIO / "hesitation.words.json"
BACKCHANNEL = AUDIO / "backchannel.wav"


def _profile(tmp_path: Path, options: str) -> Path:
    p = tmp_path / "slow.yaml"
    p.write_text(f"profile: slow\nbase: livekit\noptions:\n{options}", encoding="utf-8")
    return p


def _delays(path: Path) -> list[float]:
    return [json.loads(x)["end_of_turn_delay"] for x in path.read_text().splitlines()
            if '"on_end_of_turn"' in x]


def _one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


# -- item 7: a profile's option defaults ------------------------------------------------------


def test_listen_runs_with_the_profile_file_defaults(tmp_path: Path) -> None:
    """A profile file's min_delay holds in listen (the CLI's own default does not win), a
    flag overrides only what it names, and the written trace replays the same."""
    prof = _profile(tmp_path, "  endpointing: {min_delay: 1.2, max_delay: 2.5}\n")
    out, trace, again = tmp_path / "o.jsonl", tmp_path / "t.jsonl", tmp_path / "r.jsonl"
    args = ["listen", str(HESITATION), "--words", str(HESITATION_WORDS), "-q"]
    assert main([*args, "--profile", str(prof), "-o", str(out), "--out-trace", str(trace)]) == 0
    header = json.loads(trace.read_text().splitlines()[0])
    assert header["endpointing"]["min_delay"] == 1.2 and header["endpointing"]["max_delay"] == 2.5
    assert _delays(out) and min(_delays(out)) >= 1.2 - 1e-6
    assert main(["replay", str(trace), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
    assert main([*args, "--profile", str(prof), "--min-delay", "0.7", "--out-trace",
                 str(trace)]) == 0
    header = json.loads(trace.read_text().splitlines()[0])
    assert header["endpointing"]["min_delay"] == 0.7 and header["endpointing"]["max_delay"] == 2.5


def test_replay_keeps_the_named_profile_defaults_where_the_header_is_silent(
        tmp_path: Path) -> None:
    """A trace whose header names a profile file but gives no endpointing runs with the
    profile's delays, not the trace format's; a field the header gives still wins."""
    prof = _profile(tmp_path, "  endpointing: {min_delay: 1.2, max_delay: 2.5}\n")
    full = tmp_path / "full.jsonl"
    assert main(["listen", str(HESITATION), "--words", str(HESITATION_WORDS), "-q",
                 "--profile", str(prof), "--out-trace", str(full)]) == 0
    lines = full.read_text().splitlines()
    header = json.loads(lines[0])
    del header["endpointing"]
    header["profile"] = prof.name  # a file beside the trace
    silent, out = tmp_path / "silent.jsonl", tmp_path / "o.jsonl"
    silent.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert main(["replay", str(silent), "-o", str(out)]) == 0
    assert _delays(out) and min(_delays(out)) >= 1.2 - 1e-6
    header["endpointing"] = {"min_delay": 0.6}
    silent.write_text("\n".join([json.dumps(header), *lines[1:]]) + "\n")
    assert main(["replay", str(silent), "-o", str(out)]) == 0
    assert _delays(out) and min(_delays(out)) < 1.2 - 1e-6


def test_listen_without_flags_keeps_the_default_profile_values(tmp_path: Path) -> None:
    """No flag given: the trace's header holds exactly the default profile's options."""
    from turnfsm.core.profiles import get_profile
    trace = tmp_path / "t.jsonl"
    assert main(["listen", str(HESITATION), "-q", "--out-trace", str(trace)]) == 0
    header = json.loads(trace.read_text().splitlines()[0])
    opts = get_profile("default").options()
    assert header["endpointing"]["min_delay"] == opts.endpointing.min_delay
    assert header["endpointing"]["max_delay"] == opts.endpointing.max_delay
    assert header["endpointing"]["mode"] == opts.endpointing.mode
    assert header["transcript_timeout"] == opts.transcript_timeout
    assert header["backchannel_max_words"] == opts.backchannel_max_words


def test_listen_flags_default_to_none_so_the_profile_decides() -> None:
    """Every listen flag a profile sets parses to None when not given."""
    from turnfsm.cli import PROFILE_OPTIONS
    ns = build_parser().parse_args(["listen", "x.wav"])
    assert all(getattr(ns, dest) is None for dest in PROFILE_OPTIONS)


def test_score_runs_with_the_profile_file_defaults(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """score --profile FILE answers later by the file's min_delay than the default profile."""
    prof = _profile(tmp_path, "  endpointing: {min_delay: 1.2}\n")
    assert main(["score", str(AUDIO / "two_turns.wav"), "--profile", "default", "--profile",
                 str(prof), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total[str(prof)]["latency_p50"] > total["default"]["latency_p50"] + 0.5


# -- item 8: output files ---------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["-o", "--out-trace", "--plot"])
def test_listen_refuses_an_output_in_a_missing_folder_before_the_work(
        flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """An output in a folder that does not exist: one line naming the flag, exit 2, and
    the audio is never read."""
    import turnfsm.audio.command as command

    def no_work(*a: Any, **k: Any) -> Any:
        raise AssertionError("the work started")
    monkeypatch.setattr(command, "WavStream", no_work)
    target = tmp_path / "missing" / "x.png"
    assert main(["listen", str(HESITATION), "-q", flag, str(target)]) == 2
    err = _one_line_error(capsys)
    assert flag in err and "does not exist" in err


@pytest.mark.parametrize("args, words", [
    (["-o", "{tmp}"], "is a folder"),
    (["--plot", "{tmp}/x.txt"], ".png"),
    (["-o", "{tmp}/a.jsonl", "--out-trace", "{tmp}/a.jsonl"], "different files"),
    (["-o", "{file}/x.jsonl"], "not a folder"),
], ids=["folder", "extension", "same-file", "parent-is-a-file"])
def test_listen_refuses_unwritable_outputs(args: list[str], words: str, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """A folder as a file, an unknown picture type, one file twice, a file as a folder:
    one line each, exit 2."""
    (tmp_path / "f").write_text("")
    args = [a.format(tmp=tmp_path, file=tmp_path / "f") for a in args]
    assert main(["listen", str(HESITATION), "-q", *args]) == 2
    assert words in _one_line_error(capsys)


def test_listen_keeps_its_timeline_when_an_output_fails_late(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The output folder vanishes during the run: the timeline is printed all the same,
    then one line names the file, exit 2."""
    import turnfsm.audio.command as command
    folder = tmp_path / "out"
    folder.mkdir()
    real = command.stream_trace

    def vanish(*a: Any, **k: Any) -> Any:
        shutil.rmtree(folder)
        return real(*a, **k)
    monkeypatch.setattr(command, "stream_trace", vanish)
    assert main(["listen", str(HESITATION), "--words", str(HESITATION_WORDS),
                 "-o", str(folder / "o.jsonl")]) == 2
    captured = capsys.readouterr()
    assert "END OF TURN" in captured.out and "# 1 end(s) of turn" in captured.out
    assert captured.err.count("\n") == 1 and "-o" in captured.err and "Traceback" not in \
        captured.err


def test_replay_refuses_unwritable_outputs(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """replay -o in a missing folder and replay --dir -o onto a file: one line, exit 2."""
    trace = ROOT / "src" / "turnfsm" / "examples" / "session.jsonl"
    assert main(["replay", str(trace), "-o", str(tmp_path / "no" / "o.jsonl")]) == 2
    assert "does not exist" in _one_line_error(capsys)
    (tmp_path / "f").write_text("")
    assert main(["replay", "--dir", str(trace.parent), "-o", str(tmp_path / "f")]) == 2
    assert "not a folder" in _one_line_error(capsys)
    assert not list(tmp_path.glob("**/*.partial"))


@pytest.mark.parametrize("flag", ["-o", "--plot"])
def test_tune_refuses_an_output_in_a_missing_folder_before_the_sweep(
        flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """tune -o/--plot in a missing folder: one line naming the flag, exit 2, no sweep."""
    grid = tmp_path / "g.yaml"
    grid.write_text("min_delay: [0.5, 0.6]\n")
    target = tmp_path / "missing" / ("r.csv" if flag == "-o" else "p.png")
    assert main(["tune", str(AUDIO / "two_turns.wav"), "--grid", str(grid), "-q", flag,
                 str(target)]) == 2
    err = _one_line_error(capsys)
    assert flag in err and "does not exist" in err


# -- item 12: help, version, errors -----------------------------------------------------------


def _subparsers(ap: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_option_has_help_and_shows_its_default() -> None:
    """Every option of every command has help text, and each with a default shows it."""
    ap = build_parser()
    for name, sub in _subparsers(ap).items():
        text = sub.format_help()
        for action in sub._actions:
            if not action.option_strings or isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings} has no help"
            if action.default not in (None, False):
                assert f"default: {action.default}" in " ".join(text.split()), \
                    f"{name} {action.option_strings} hides its default"


def test_listen_help_shows_the_default_profile_values() -> None:
    """listen --help shows the default profile's values for the options a profile sets."""
    from turnfsm.core.profiles import get_profile
    opts = get_profile("default").options()
    text = " ".join(_subparsers(build_parser())["listen"].format_help().split("options:")[1]
                    .split())
    for flag, value in (("min-delay", opts.endpointing.min_delay),
                        ("max-delay", opts.endpointing.max_delay),
                        ("transcript-timeout", opts.transcript_timeout),
                        ("backchannel-max-words", opts.backchannel_max_words)):
        after = text.split(f"--{flag} ", 1)[1]
        assert f"the profile's; {value} in the default profile" in after.split("--", 1)[0]


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    """turnfsm --version prints pyproject's version."""
    import tomllib
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out == f"turnfsm {version}\n"


@pytest.mark.parametrize("args, flag", [
    (["listen"], "WAV"),
    (["listen", "x.wav", "--endpointing", "slow"], "--endpointing"),
    (["score"], "sessions"),
    (["tune", "x.wav"], "--grid"),
    (["replay", "--jobs", "two"], "--jobs"),
], ids=["no-wav", "choice", "no-sessions", "no-grid", "not-a-number"])
def test_usage_errors_are_one_line(args: list[str], flag: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A malformed command line: one line naming the argument, exit 2."""
    with pytest.raises(SystemExit) as e:
        main(args)
    assert e.value.code == 2 and flag in _one_line_error(capsys)


def test_the_command_runs_as_a_module_with_this_source() -> None:
    """`python -m turnfsm.cli --version` runs from a subprocess with this src first."""
    r = subprocess.run([sys.executable, "-m", "turnfsm.cli", "--version"], capture_output=True,
                       text=True, env={"PYTHONPATH": str(ROOT / "src")}, timeout=60)
    assert r.returncode == 0 and r.stdout.startswith("turnfsm ")


# -- item 12: the score table and the reference ----------------------------------------------


def test_score_headers_name_their_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """No header is a cut name (latency_p5 for p50): each is spelled out in 10 characters."""
    from turnfsm.quality.command import COLUMNS, HEADERS
    assert set(HEADERS) == set(COLUMNS) and len(set(HEADERS.values())) == len(HEADERS)
    assert all(len(h) <= 10 for h in HEADERS.values())
    assert main(["score", str(AUDIO / "two_turns.wav")]) == 0
    head = capsys.readouterr().out.splitlines()[0]
    assert "p50 (s)" in head and "p90 (s)" in head and "latency_p5" not in head


def test_score_reference_without_the_replayer_says_where_it_comes_from(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """--reference with no replayer found: one line naming --reference-script, exit 2."""
    import turnfsm.quality.command as command
    monkeypatch.delenv(command.REFERENCE_SCRIPT_ENV, raising=False)
    monkeypatch.setattr(command.Path, "is_file", lambda self: False)
    assert main(["score", str(AUDIO / "two_turns.wav"), "--reference", sys.executable]) == 2
    err = _one_line_error(capsys)
    assert "--reference-script" in err and "livekit-agents 1.5.12" in err


def test_a_failing_reference_leaves_no_temporary_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A reference replayer that fails: one line with its last message, exit 2, and its
    temporary trace is gone."""
    import tempfile
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    script = tmp_path / "replayer.py"
    script.write_text("import sys\nprint('Traceback ...', file=sys.stderr)\n"
                      "print('ImportError: no livekit', file=sys.stderr)\nsys.exit(3)\n")
    assert main(["score", str(AUDIO / "two_turns.wav"), "--reference", sys.executable,
                 "--reference-script", str(script)]) == 2
    err = _one_line_error(capsys)
    assert "exit 3" in err and "ImportError: no livekit" in err
    assert list(temp.iterdir()) == []


def test_the_reference_replayer_is_run_on_the_trace(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A replayer (here: turnfsm's own replay, standing in) gets the trace without the
    turnfsm-only header fields and its outputs are scored as the reference's row."""
    script = tmp_path / "replayer.py"
    script.write_text(
        "import json, sys\n"
        f"sys.path.insert(0, {str(ROOT / 'src')!r})\n"
        "head = json.loads(open(sys.argv[1]).readline())\n"
        "assert 'profile' not in head and 'transcript_timeout' not in head, head\n"
        "from turnfsm.cli import main\n"
        "sys.exit(main(['replay', sys.argv[1]]))\n")
    assert main(["score", str(AUDIO / "two_turns.wav"), "--profile", "livekit", "--reference",
                 sys.executable, "--reference-script", str(script), "--json"]) == 0
    total = json.loads(capsys.readouterr().out)["total"]
    assert total["reference"] == total["livekit"] and total["reference"]["turns"] == 2


# -- item 12: the timeline --------------------------------------------------------------------


def test_listen_timeline_hides_internal_ids_unless_diagnostics(
        capsys: pytest.CaptureFixture[str]) -> None:
    """Without --diagnostics the timeline has no trace line column and no rule ids (P3:);
    with it, both."""
    args = ["listen", str(BACKCHANNEL), "--words", str(BACKCHANNEL.with_suffix(".words.json"))]
    assert main(args) == 0
    plain = capsys.readouterr().out
    assert "dropped 'uh huh' (backchannel)" in plain and "why: the interruption detector" in plain
    assert " line " not in plain and "P3:" not in plain
    rows = [x for x in plain.splitlines() if not x.startswith("#")]
    assert not any(x.split()[1].isdigit() for x in rows)
    assert main([*args, "--diagnostics"]) == 0
    diag = capsys.readouterr().out
    assert "#   time   line  input" in diag and "why: P3: the interruption detector" in diag
    assert any(x.split()[1].isdigit() for x in diag.splitlines() if not x.startswith("#"))


def test_replay_timeline_hides_internal_ids_unless_diagnostics(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """replay --timeline shows rule ids (R47-E, P3) and line numbers only with --diagnostics."""
    trace = tmp_path / "t.jsonl"
    assert main(["listen", str(BACKCHANNEL), "--words",
                 str(BACKCHANNEL.with_suffix(".words.json")), "-q", "--out-trace",
                 str(trace)]) == 0
    assert main(["replay", str(trace), "--timeline"]) == 0
    plain = capsys.readouterr().out
    assert "dropped 'uh huh'" in plain and "P3:" not in plain and " line " not in plain
    assert main(["replay", str(trace), "--timeline", "--diagnostics"]) == 0
    assert "P3:" in capsys.readouterr().out


@pytest.mark.parametrize("flag", ["--chart", "--profile"])
def test_a_missing_chart_or_profile_is_one_line(flag: str, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """listen --chart/--profile with a file that is not there: one line naming it, exit 2."""
    assert main(["listen", str(HESITATION), "-q", flag, str(tmp_path / "nope.yaml")]) == 2
    assert "nope.yaml: cannot read" in _one_line_error(capsys)


def test_a_chart_with_several_problems_is_one_line_pointing_at_check(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A chart with several problems: its first and how many more, in one line (`turnfsm
    check` lists them all)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text("regions:\n  - name: a\n    states: {}\n  - name: b\n    states: {}\n")
    trace = ROOT / "src" / "turnfsm" / "examples" / "session.jsonl"
    assert main(["replay", str(trace), "--chart", str(bad)]) == 2
    err = _one_line_error(capsys)
    assert "bad.yaml" in err and "more problem" in err and "turnfsm check" in err


def test_option_errors_name_the_listen_flags() -> None:
    """An option error from the engine's options names the flag a user typed."""
    from turnfsm.audio.command import flag_names
    assert flag_names("options: endpointing.min_delay must be a finite number, not nan") == \
        "--min-delay must be a finite number, not nan"
    assert flag_names("endpointing delays must not be negative") == \
        "--min-delay/--max-delay must not be negative"
    assert flag_names("options: transcript_timeout must be positive") == \
        "--transcript-timeout must be positive"
    assert flag_names("vad.activation_threshold must be in (0, 1]") == \
        "--vad-threshold must be in (0, 1]"


def test_a_profile_that_sets_interruption_detection_wins_over_auto(tmp_path: Path) -> None:
    """--interruption-detection auto follows the profile when it sets the option; on/off
    override it."""
    prof = _profile(tmp_path, "  interruption_detection: false\n")
    trace = tmp_path / "t.jsonl"
    wav = str(AUDIO / "barge_in.wav")

    def detection(*flags: str) -> bool:
        assert main(["listen", wav, "-q", "--profile", str(prof), "--out-trace", str(trace),
                     *flags]) == 0
        return bool(json.loads(trace.read_text().splitlines()[0])["interruption_detection"])
    assert detection() is False
    assert detection("--interruption-detection", "on") is True
    assert main(["listen", wav, "-q", "--out-trace", str(trace)]) == 0  # default: stereo
    assert json.loads(trace.read_text().splitlines()[0])["interruption_detection"] is True


def test_tune_writes_its_results_whole_or_not_at_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    """A write that fails midway leaves no results file and no partial one; the table was
    printed first; one line, exit 2."""
    import turnfsm.tuning.report as report

    def fail(result: Any, rows: Any, path: Any) -> None:
        Path(path).write_text("setting,profile\n1,")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(report, "write_csv", fail)
    grid = tmp_path / "g.yaml"
    grid.write_text("min_delay: [0.5, 0.6]\n")
    out = tmp_path / "r.csv"
    assert main(["tune", str(AUDIO / "two_turns.wav"), "--grid", str(grid), "-q", "--jobs", "1",
                 "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert "Recommended" in captured.out
    assert captured.err.count("\n") == 1 and "No space left on device" in captured.err
    assert list(tmp_path.iterdir()) == [grid]


def test_a_parser_built_for_one_command_parses_it_as_the_whole_parser() -> None:
    """`build_parser(command)` (what `main` builds) parses that command's arguments as the
    full parser does, and still lists every command."""
    argv = ["listen", "x.wav", "--min-delay", "0.4", "--profile", "livekit", "-q"]
    assert vars(build_parser("listen").parse_args(argv)) == vars(build_parser().parse_args(argv))
    assert vars(build_parser("check").parse_args(["check"])) == \
        vars(build_parser().parse_args(["check"]))
    usage = build_parser("listen").format_help()
    assert all(c in usage for c in ("replay", "listen", "score", "tune", "check", "diagram"))


def test_listen_writes_the_reference_form_of_its_trace(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """`listen --out-trace T --reference-trace` writes the trace without turnfsm's own
    header fields (the conformance kit's replayer refuses unknown fields); the flag alone
    is refused naming what it needs."""
    from turnfsm.replay.trace import TURNFSM_FIELDS
    out = tmp_path / "t.jsonl"
    wav = str(ROOT / "examples" / "audio" / "hesitation.wav")
    words = str(ROOT / "examples" / "audio" / "hesitation.words.json")
    assert main(["listen", wav, "--words", words, "-q", "--out-trace", str(out),
                 "--reference-trace"]) == 0
    head = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert head["kind"] == "config" and not set(head) & set(TURNFSM_FIELDS)
    assert main(["listen", wav, "-q", "--reference-trace"]) == 2
    assert "give --out-trace TRACE.jsonl too" in capsys.readouterr().err


# -- listen of several files in one process ---------------------------------------------------

DIALOGUES = ROOT / "examples" / "dialogues"


def test_listen_of_several_files_gives_each_what_it_gets_alone(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]
                                                                ) -> None:
    """Files and a folder run in one process: each file's outputs and trace (in the folders
    -o and --out-trace name, NAME.jsonl and NAME.trace.jsonl) are byte for byte those of the
    file run alone, its sidecar words found by --words auto, its timeline printed in turn."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("01_hesitation_800ms", "06_backchannel_early"):
        for suffix in (".wav", ".words.json"):
            shutil.copy(DIALOGUES / f"{name}{suffix}", folder / f"{name}{suffix}")
    shutil.copy(DIALOGUES / "04_digits.wav", tmp_path / "04_digits.wav")  # no words beside it
    out, traces = tmp_path / "out", tmp_path / "traces"
    assert main(["listen", str(tmp_path / "04_digits.wav"), str(folder), "--words", "auto",
                 "-o", str(out), "--out-trace", str(traces)]) == 0
    text = capsys.readouterr().out
    heads = [x for x in text.splitlines() if x.startswith("# ") and ".wav:" in x]
    assert [h.split(":")[0].rsplit("/", 1)[1] for h in heads] == [
        "04_digits.wav", "01_hesitation_800ms.wav", "06_backchannel_early.wav"]
    assert "transcripts: none" in heads[0] and "transcripts: words" in heads[1]
    assert text.count("end(s) of turn") == 3
    for wav, words in ((tmp_path / "04_digits.wav", None),
                       (folder / "01_hesitation_800ms.wav",
                        folder / "01_hesitation_800ms.words.json")):
        alone_o, alone_t = tmp_path / "alone.jsonl", tmp_path / "alone.trace.jsonl"
        assert main(["listen", str(wav), "-q", "-o", str(alone_o), "--out-trace", str(alone_t),
                     *(["--words", str(words)] if words else [])]) == 0
        assert (out / f"{wav.stem}.jsonl").read_bytes() == alone_o.read_bytes()
        assert (traces / f"{wav.stem}.trace.jsonl").read_bytes() == alone_t.read_bytes()


def test_listen_of_several_files_goes_on_past_a_bad_one(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """A file that is not a WAV is named on stderr, the files after it still run, and the
    exit code is 2."""
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    good = DIALOGUES / "12_yes_no.wav"
    assert main(["listen", str(bad), str(good), "-q", "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith(f"turnfsm listen: {bad}: not a WAV file") and \
        err[-1] == "turnfsm listen: 1 of 2 files failed"
    assert (tmp_path / "o" / "12_yes_no.jsonl").stat().st_size > 0


@pytest.mark.parametrize(("argv", "needle"), [
    (["-", "{wav}"], "`-` (standard input, live) runs alone"),
    (["{wav}", "{wav}", "-o", "{tmp}/o"], "have the same name"),
    (["{wav}", "{wav2}", "--words", "{wav}"], "with several WAV files give --words auto"),
    (["{tmp}/empty"], "a folder with no .wav files in it"),
    (["{wav}", "{wav2}", "-o", "{tmp}/f.txt"], "-o {tmp}/f.txt: is a file, not a folder"),
    (["{wav}", "{wav2}", "-o", "{tmp}/same", "--out-trace", "{tmp}/same"],
     "must name different folders"),
])
def test_listen_of_several_files_refuses_before_the_work(argv: list[str], needle: str,
                                                         tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    """What several files cannot do is one line naming it, exit 2, before any file runs."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "f.txt").write_text("x")
    fill = {"wav": str(DIALOGUES / "12_yes_no.wav"),
            "wav2": str(DIALOGUES / "07_backchannel_late.wav"), "tmp": str(tmp_path)}
    assert main(["listen", "-q", *(a.format(**fill) for a in argv)]) == 2
    captured = capsys.readouterr()
    assert needle.format(**fill) in captured.err and captured.err.count("\n") == 1, \
        captured.err
    assert captured.out == ""


def test_quiet_listen_writes_what_the_timeline_run_writes(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]
                                                           ) -> None:
    """listen -q (no step observed: nothing reads the steps) writes the same -o as the run
    that prints its timeline."""
    wav = DIALOGUES / "09_barge_in_middle.wav"
    words = ["--words", "auto"]
    assert main(["listen", str(wav), *words, "-o", str(tmp_path / "a.jsonl")]) == 0
    assert "END OF TURN" in capsys.readouterr().out
    assert main(["listen", str(wav), *words, "-q", "-o", str(tmp_path / "b.jsonl")]) == 0
    assert capsys.readouterr().out == ""
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()


@pytest.mark.usefixtures("rules_model_fails_once")
def test_a_failing_end_of_turn_model_is_a_failed_call_the_trace_replays(
        caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """listen with a model that raises on its first call goes on (that turn is decided as
    without a model, a warning names the failure) and writes a trace whose fail_calls
    replays the run byte for byte."""
    out, trace, again = tmp_path / "o.jsonl", tmp_path / "t.jsonl", tmp_path / "r.jsonl"
    assert main(["listen", str(HESITATION), "--words", str(HESITATION_WORDS), "-q",
                 "--turn-detection", "model", "-o", str(out), "--out-trace", str(trace)]) == 0
    assert "the end-of-turn model failed" in caplog.text and \
        "RuntimeError('model server gone')" in caplog.text
    detector = json.loads(trace.read_text().splitlines()[0])["turn_detector"]
    assert detector["fail_calls"] == [1] and len(detector["probabilities"]) == 2
    assert _delays(out)  # the turns still ended
    assert main(["replay", str(trace), "-o", str(again)]) == 0
    assert again.read_bytes() == out.read_bytes()
