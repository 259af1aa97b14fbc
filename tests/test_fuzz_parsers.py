"""Fuzzing the chart loader and the trace reader (issue 6).

Arbitrary text, arbitrary YAML/JSON structures and mutations of valid inputs go into
``turnfsm.chart.load_chart`` and ``turnfsm.trace.parse_trace``; only ``ChartError`` /
``TraceError`` may come out, and every message names a location (``:LINE`` for charts, the
line number for traces). The crashes found here (all fixed) are reproduced by regression
tests at the end.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.test_properties import TRACE_LINES
from turnfsm.chart import load_chart
from turnfsm.core import RULES
from turnfsm.errors import ChartError, TraceError
from turnfsm.replay import parse_trace

ROOT = Path(__file__).resolve().parents[1]
CHART_TEXT = (ROOT / "states.yaml").read_text(encoding="utf-8")
CHART_DATA = yaml.safe_load(CHART_TEXT)
LOCATED = re.compile(r"^.*:\d+: ", re.S)

_SCALARS = (st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=True)
            | st.text(max_size=8))
STRUCT = st.recursive(
    _SCALARS,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(
        st.text(max_size=10) | st.integers(0, 5), c, max_size=4),
    max_leaves=20)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 10**6) | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=20)
FUZZ = settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
#: The chart loader's fuzz loads the whole chart per example (about 90 ms): a third of the
#: profile's examples (20 in the default run, 100 in CI's)
CHART_FUZZ = settings(FUZZ, max_examples=max(20, settings().max_examples // 3))


def load(text: str) -> None:
    """Load a chart; a ChartError must locate every problem (``source:LINE: ...``)."""
    try:
        load_chart(text, registry=RULES)
    except ChartError as e:
        assert e.problems, e
        for p in e.problems:
            assert LOCATED.match(p), f"problem without a location: {p!r}"
        assert re.search(r":\d+", str(e))


def parse(text: str) -> None:
    """Read a trace; a TraceError must name the line."""
    try:
        parse_trace(text)
    except TraceError as e:
        assert e.line is not None and e.line >= 1, e
        assert f":{e.line}" in str(e), e


# ===== charts ====================================================================================


@FUZZ
@given(st.text(max_size=300))
def test_chart_loader_arbitrary_text(text: str) -> None:
    """Arbitrary text gives a chart or a ChartError with a line for every problem."""
    load(text)


@FUZZ
@given(STRUCT)
def test_chart_loader_arbitrary_yaml_structures(doc: Any) -> None:
    """Arbitrary YAML structures give a chart or a located ChartError."""
    load(yaml.safe_dump(doc, allow_unicode=True))


@FUZZ
@given(st.fixed_dictionaries({"events": STRUCT, "regions": STRUCT},
                             optional={"chart": STRUCT, "version": STRUCT}))
def test_chart_loader_chart_shaped_structures(doc: Any) -> None:
    """Chart-shaped structures with arbitrary contents give a located ChartError."""
    load(yaml.safe_dump(doc, allow_unicode=True))


def _mutate(data: Any, obj: Any, value: Any) -> Any:
    """Replace (or delete) one randomly chosen node of ``obj`` with ``value``."""
    if isinstance(obj, dict) and obj and data.draw(st.integers(0, 3)):
        k = data.draw(st.sampled_from(sorted(obj, key=str)))
        new = dict(obj)
        if data.draw(st.integers(0, 5)) == 0:
            del new[k]
        else:
            new[k] = _mutate(data, obj[k], value)
        return new
    if isinstance(obj, list) and obj and data.draw(st.integers(0, 3)):
        i = data.draw(st.integers(0, len(obj) - 1))
        new_l = list(obj)
        if data.draw(st.integers(0, 5)) == 0:
            del new_l[i]
        else:
            new_l[i] = _mutate(data, obj[i], value)
        return new_l
    return value


@CHART_FUZZ
@given(data=st.data(), value=STRUCT)
def test_chart_loader_mutated_real_chart(data: Any, value: Any) -> None:
    """The real chart with one node replaced or deleted loads or gives a located ChartError."""
    load(yaml.safe_dump(_mutate(data, CHART_DATA, value), allow_unicode=True,
                        sort_keys=False))


@CHART_FUZZ
@given(op=st.sampled_from(["delete", "duplicate", "swap", "garble", "indent"]),
       i=st.integers(0, 10**6), j=st.integers(0, 10**6),
       junk=st.sampled_from([":", "- ", "{", "]", "&x", "*x", "\t", "'", "? ", "!!str "]))
def test_chart_loader_edited_chart_text(op: str, i: int, j: int, junk: str) -> None:
    """The real chart with one line edited loads or gives a located ChartError."""
    # edits: delete, duplicate, swap, garble or re-indent one line
    lines = CHART_TEXT.split("\n")
    a, b = i % len(lines), j % len(lines)
    if op == "delete":
        del lines[a]
    elif op == "duplicate":
        lines.insert(a, lines[a])
    elif op == "swap":
        lines[a], lines[b] = lines[b], lines[a]
    elif op == "garble":
        lines[a] = lines[a][: b % (len(lines[a]) + 1)] + junk + lines[a][b % (len(lines[a]) + 1):]
    else:
        lines[a] = "  " + lines[a]
    load("\n".join(lines))


# ===== traces ====================================================================================

KINDS = ["vad.start_of_speech", "vad.inference_done", "vad.end_of_speech", "stt.interim",
         "stt.final", "stt.preflight", "stt.start_of_speech", "stt.end_of_speech", "stt.usage",
         "overlap", "detector_error", "agent.speech_started", "agent.speech_ended",
         "signal.user_speech_started", "signal.user_speech_ended",
         "signal.overlap_speech_ended", "commit_user_turn", "clear_user_turn", "audio",
         "update_options", "set_vad", "set_stt", "set_interruption_detection", "config"]
FIELDS = ["t", "kind", "text", "note", "speech_duration", "enabled", "is_interruption",
          "endpointing", "turn_detection", "user_turn_limit", "count", "start_time", "glue",
          "turn_detector", "end_of_turn_returns", "time_limit", "backchannel_boundary"]
LINE_OBJ = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6),
                           JSONISH | st.sampled_from(KINDS), max_size=5)


@FUZZ
@given(st.text(max_size=300))
def test_trace_reader_arbitrary_text(text: str) -> None:
    """Arbitrary text gives a trace or a TraceError naming the line."""
    parse(text)


@FUZZ
@given(header=st.one_of(JSONISH, st.dictionaries(st.sampled_from(FIELDS), JSONISH).map(
    lambda d: {**d, "kind": "config"})), lines=st.lists(st.one_of(JSONISH, LINE_OBJ),
                                                       max_size=6))
def test_trace_reader_arbitrary_json_lines(header: Any, lines: list[Any]) -> None:
    """Arbitrary JSON values as trace lines give a trace or a TraceError naming the line."""
    parse("\n".join(json.dumps(x) for x in [header, *lines]))


@FUZZ
@given(data=st.data(), value=JSONISH, drop=st.booleans())
def test_trace_reader_mutated_valid_trace(data: Any, value: Any, drop: bool) -> None:
    """A valid trace with one field changed reads or fails at that line (or a later one)."""
    # a changed time can make the next line go back in time
    objs: list[dict[str, Any]] = [{"kind": "config", "turn_detection": "vad"}]
    for i, (kind, fields) in enumerate(TRACE_LINES):
        objs.append({"t": 0.5 * i, "kind": kind, **fields})
    n = data.draw(st.integers(0, len(objs) - 1), label="line index")
    obj = dict(objs[n])
    key = data.draw(st.sampled_from([*sorted(obj), "extra"]), label="field")
    if drop and key in obj:
        del obj[key]
    else:
        obj[key] = value
    objs[n] = obj
    try:
        parse_trace("\n".join(json.dumps(o) for o in objs))
    except TraceError as e:
        assert e.line is not None and e.line >= n + 1, (e, n + 1)
        assert f":{e.line}" in str(e)


def _read_both_ways(text: str) -> tuple[Any, Any]:
    """The trace read with msgspec and with the standard library alone: (inputs or error)."""
    import turnfsm.replay.trace as trace_module

    results = []
    trace_module._load_msgspec()  # msgspec's decoder is loaded on first use
    fast = trace_module._fast_decode
    assert fast is not None
    for decoder in (fast, None):
        trace_module._fast_decode = decoder
        try:
            results.append(parse_trace(text).inputs)
        except TraceError as e:
            results.append(str(e))
        finally:
            trace_module._fast_decode = fast
    return results[0], results[1]


@FUZZ
@given(data=st.data(), value=JSONISH, raw=st.sampled_from(
    ["", "NaN", "-Infinity", "1e999", "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]",
     '"\\ud800"', "01", "1.", "{", '{"t": 1, "t": 2}']))
def test_trace_reader_msgspec_and_the_standard_library_agree(data: Any, value: Any,
                                                            raw: str) -> None:
    """Decoding with msgspec accepts, refuses and reports exactly what the standard library
    alone does (the same inputs, the same error and location)."""
    objs: list[str] = [json.dumps({"kind": "config", "turn_detection": "vad"})]
    for i, (kind, fields) in enumerate(TRACE_LINES):
        objs.append(json.dumps({"t": 0.5 * i, "kind": kind, **fields}))
    n = data.draw(st.integers(1, len(objs) - 1), label="line index")
    obj = json.loads(objs[n])
    key = data.draw(st.sampled_from([*sorted(obj), "extra"]), label="field")
    obj[key] = value
    line = json.dumps(obj)
    if raw:  # a raw JSON token in place of the value (what json.dumps never writes)
        line = line.replace(json.dumps(value), raw, 1) if json.dumps(value) in line else raw
    objs[n] = line
    fast, slow = _read_both_ways("\n".join(objs))
    assert fast == slow


# ===== defects found here (B17..B21): minimal reproductions, now regression tests ===============


def test_bug_b17_complex_yaml_key_gives_chart_error() -> None:
    """A YAML mapping with a list as a key gives a located ChartError."""
    with pytest.raises(ChartError, match=r":\d+"):
        load_chart("? [a, b]\n: c\n")


def test_bug_b18_malformed_guard_is_reported() -> None:
    """A guard that is not a name is reported, not silently dropped."""
    text = ("events:\n  x: {input: SetVad}\nregions:\n  - name: r\n    initial: s\n"
            "    states: {s: {}}\n    transitions:\n      - {event: x, source: s, guard: [5]}\n")
    with pytest.raises(ChartError, match=r":8: .*guard"):
        load_chart(text)


def test_bug_b19_list_kind_gives_trace_error() -> None:
    """A trace line whose kind is a list gives a TraceError naming line 2."""
    with pytest.raises(TraceError, match=":2"):
        parse_trace('{"kind": "config"}\n{"t": 1, "kind": [1]}')


def test_bug_b20_deeply_nested_json_gives_trace_error() -> None:
    """A deeply nested JSON line gives a TraceError naming the line."""
    with pytest.raises(TraceError, match=":1"):
        parse_trace("[" * 100_000)


def test_bug_b21_bad_update_options_values_refused_by_the_reader() -> None:
    """update_options values the engine refuses are refused by the reader, with the line."""
    with pytest.raises(TraceError, match=":2"):
        parse_trace('{"kind": "config"}\n'
                    '{"t": 1, "kind": "update_options", "endpointing": {"min_delay": -1}}')


# ===== hostile values (issue 21): the reader, both replays, the sidecar, grid and profiles =====

HOSTILE = st.sampled_from([10**400, -(10**30), 1e308, -1e308, 1e11, 2**53 + 1, "\ud800",
                           "a\udfffb", "x" * 300, [[[[[]]]]], {"a": {"b": {}}}, -0.0, 5e9])
ANY_VALUE = st.one_of(JSONISH, HOSTILE)


def _replays(path: Path) -> tuple[str, str]:
    """The outcome of the direct and the asyncio replay of a trace file: the output, or the
    error's message (anything but a TurnFsmError escapes and fails the test)."""
    from turnfsm.errors import TurnFsmError
    from turnfsm.replay import replay_file
    from turnfsm.runtime.replay import replay_runtime_file
    outcomes = []
    for run in (replay_file, replay_runtime_file):
        try:
            outcomes.append(run(path))
        except TurnFsmError as e:
            outcomes.append(f"error: {e}")
    return outcomes[0], outcomes[1]


@settings(FUZZ, max_examples=40, deadline=None)
@given(data=st.data(), value=ANY_VALUE, header=st.booleans())
def test_hostile_values_give_one_outcome_in_both_replays(data: Any, value: Any, header: bool,
                                                         tmp_path_factory: Any) -> None:
    """A valid trace with one field (of the header or a line) set to a huge number, a lone
    surrogate, a long text or a nested value: both replays give the same output or the same
    located error, never a traceback."""
    objs: list[dict[str, Any]] = [{"kind": "config", "turn_detection": "model"}]
    for i, (kind, fields) in enumerate(TRACE_LINES):
        objs.append({"t": 0.5 * i, "kind": kind, **fields})
    n = 0 if header else data.draw(st.integers(1, len(objs) - 1), label="line index")
    obj = dict(objs[n])
    if header:
        key = data.draw(st.sampled_from(["comment", "time_limit", "profile", "turn_detector",
                                         "transcript_timeout", "backchannel_max_words",
                                         "endpointing", "user_turn_limit"]), label="field")
        if key in ("turn_detector", "endpointing", "user_turn_limit"):
            sub = {"turn_detector": ["probability", "probabilities", "unlikely_threshold",
                                     "languages", "fail_calls", "latency"],
                   "endpointing": ["min_delay", "max_delay", "alpha"],
                   "user_turn_limit": ["max_words", "max_duration"]}[key]
            value = {data.draw(st.sampled_from(sub), label="sub-field"): value}
    else:
        key = data.draw(st.sampled_from(sorted(obj)), label="field")
    obj[key] = value
    objs[n] = obj
    p = tmp_path_factory.mktemp("fuzz") / "t.jsonl"
    p.write_bytes("\n".join(json.dumps(o) for o in objs).encode("utf-8", "surrogatepass"))
    direct, runtime = _replays(p)
    assert direct == runtime


@FUZZ
@given(doc=st.one_of(JSONISH, st.fixed_dictionaries({"words": st.lists(
    st.dictionaries(st.sampled_from(["channel", "word", "start", "end"]), ANY_VALUE,
                    max_size=4), max_size=4)})))
def test_words_sidecar_arbitrary_json_gives_one_error(doc: Any, tmp_path_factory: Any
                                                      ) -> None:
    """Any JSON as a words sidecar gives words or an AudioError naming the file."""
    from turnfsm.audio.transcripts import read_words
    from turnfsm.audio.wav import AudioError
    p = tmp_path_factory.mktemp("w") / "w.json"
    p.write_bytes(json.dumps(doc).encode("utf-8", "surrogatepass"))
    try:
        words = read_words(p)
    except AudioError as e:
        assert str(e).startswith(str(p)) and "\n" not in str(e)
    else:
        assert all(0 <= w.start <= w.end <= 86_400 for w in words)


@FUZZ
@given(doc=st.one_of(STRUCT, st.dictionaries(
    st.sampled_from(["samples", "seed", "profile", "min_delay", "max_delay"]), ANY_VALUE,
    max_size=4)))
@example(doc={"min_delay": 10**400})  # a whole number too large for a float
def test_grid_arbitrary_yaml_gives_one_error(doc: Any) -> None:
    """Any YAML structure as a grid gives a grid or a GridError naming the grid."""
    from turnfsm.tuning.grid import GridError, parse_grid
    try:
        text = yaml.safe_dump(doc)
    except yaml.YAMLError:
        return
    try:
        parse_grid(text, "g.yaml")
    except GridError as e:
        assert str(e).startswith("g.yaml") and "\n" not in str(e)


@FUZZ
@given(doc=st.one_of(STRUCT, st.fixed_dictionaries(
    {"profile": st.text(max_size=5)},
    optional={"base": st.sampled_from(["default", "livekit", "../x.yaml", "/dev/zero",
                                       "p.yaml", "nope.yaml"]) | ANY_VALUE,
              "options": STRUCT, "chart": STRUCT, "doc": ANY_VALUE})))
def test_profile_arbitrary_yaml_gives_one_error(doc: Any, tmp_path_factory: Any) -> None:
    """Any YAML as a profile file gives a profile or a ChartError naming the file."""
    from turnfsm.core.profiles import read_profile
    try:
        text = yaml.safe_dump(doc)
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    p = tmp_path_factory.mktemp("p") / "p.yaml"
    p.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        read_profile(p)
    except ChartError as e:
        assert e.problems and all(str(p) in x or "p.yaml" in x for x in e.problems), e


def test_bug_b22_a_400_digit_number_is_a_trace_error() -> None:
    """A 400-digit number in a trace line is refused with the line and field."""
    with pytest.raises(TraceError, match=r":2: field 'duration': .*400 digits"):
        parse_trace('{"kind": "config"}\n{"t": 1, "kind": "audio", "duration": 1'
                    + "0" * 400 + "}")


def test_bug_b23_a_lone_surrogate_is_a_trace_error() -> None:
    """A lone \\ud800 in a transcript is refused with the line (it could not be written)."""
    with pytest.raises(TraceError, match=r":2: field 'text'"):
        parse_trace('{"kind": "config"}\n{"t": 1, "kind": "stt.final", "text": "\\ud800"}')


def test_bug_b24_invalid_utf8_in_a_chart_is_a_chart_error(tmp_path: Path) -> None:
    """A chart file with bytes that are not UTF-8 gives a ChartError naming its line."""
    from turnfsm.chart import loader
    p = tmp_path / "c.yaml"
    p.write_bytes(b"events: {}\nregions: []\n# \xff\n")
    with pytest.raises(ChartError, match=r"c.yaml:3: the chart is not UTF-8"):
        loader.read_chart(p)


def test_bug_b25_bad_scripted_model_fields_are_refused_when_read() -> None:
    """The scripted model's fields are checked with the header (the direct and asyncio
    replays used to fail differently, mid-run)."""
    for td, field in (({"probability": "x"}, "turn_detector.probability"),
                      ({"probabilities": [1.5]}, r"turn_detector.probabilities\[0\]"),
                      ({"languages": "en"}, "turn_detector.languages"),
                      ({"fail_calls": [0]}, "turn_detector.fail_calls")):
        with pytest.raises(TraceError, match=f":1: field '{field}'"):
            parse_trace(json.dumps({"kind": "config", "turn_detector": td}))


def test_bug_b26_option_keys_of_mixed_types_are_a_chart_error(tmp_path: Path) -> None:
    """A profile whose options mix a text and a number key gives a ChartError naming the
    file (sorting the unknown keys raised TypeError)."""
    from turnfsm.core.profiles import read_profile
    p = tmp_path / "p.yaml"
    p.write_text("profile: x\noptions: {'': 1, 0: 2}\n")
    with pytest.raises(ChartError, match=r"p.yaml:1: .*unknown option"):
        read_profile(p)
