"""`turnfsm tune`: the grid, the sweep (serial, pool, Dask) against a plain loop, the Pareto
front, the recommendation and the files it writes."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Any

import attrs
import pytest

from turnfsm.audio.listen import ListenOptions, build_trace
from turnfsm.audio.transcripts import read_words
from turnfsm.audio.vad import VadOptions
from turnfsm.audio.wav import read_wav
from turnfsm.cli import main
from turnfsm.options import EngineOptions
from turnfsm.quality.command import _session
from turnfsm.quality.score import Score, read_truth, score_outputs
from turnfsm.replay import Trace, replay_trace
from turnfsm.runtime.model import RuleBasedModel
from turnfsm.runtime.replay import RuntimeReplay
from turnfsm.tuning import (
    GridError,
    Tally,
    pareto_front,
    parse_grid,
    plan,
    recommend,
    sweep_pool,
    sweep_serial,
)
from turnfsm.tuning.report import annotate, write_csv
from turnfsm.tuning.sessions import apply, build, cached_session, prepare, replay_setting

ROOT = Path(__file__).resolve().parents[1]
MONO = str(ROOT / "examples" / "audio" / "hesitation.wav")
STEREO = str(ROOT / "examples" / "audio" / "backchannel.wav")
SESSIONS = [MONO, STEREO]

GRID = """\
min_delay: [0.3, 0.5]
backchannel_boundary: [[1.0, 3.5], null]
min_silence: [0.3, 0.55]
interruption_after: [0.3, 0.6]
"""


# -- the grid ---------------------------------------------------------------------------------


def test_grid_ranges_lists_and_product() -> None:
    """A range with a step, a list and a single value make the cartesian product, in order."""
    g = parse_grid("profile: livekit\nmin_delay: {from: 0.2, to: 0.5, step: 0.1}\n"
                   "max_delay: [1.5, 3]\nendpointing_mode: fixed\n")
    assert len(g.settings) == 8
    assert [s.get("min_delay") for s in g.settings[::2]] == [0.2, 0.3, 0.4, 0.5]
    assert g.settings[1].as_dict() == {"min_delay": 0.2, "max_delay": 3.0,
                                       "endpointing_mode": "fixed"}
    assert {s.profile for s in g.settings} == {"livekit"}
    assert g.varying() == ("min_delay", "max_delay")
    assert [s.index for s in g.settings] == list(range(8))


def test_grid_drops_what_cannot_matter() -> None:
    """Thresholds without the model run once; min_delay above max_delay is skipped."""
    g = parse_grid("turn_detection: [vad, model]\nunlikely_threshold: [0.2, 0.5]\n"
                   "min_delay: [0.5, 2.0]\nmax_delay: [1.0]\n")
    assert [s.label() for s in g.settings] == [
        "turn_detection=vad min_delay=0.5 max_delay=1",
        "turn_detection=model unlikely_threshold=0.2 min_delay=0.5 max_delay=1",
        "turn_detection=model unlikely_threshold=0.5 min_delay=0.5 max_delay=1"]
    assert any("run once" in n for n in g.notes)
    assert any("min_delay > max_delay" in n for n in g.notes)


def test_grid_random_search_is_seeded_and_distinct() -> None:
    """samples: N draws N distinct settings, the same ones for the same seed."""
    text = "samples: 20\nseed: 7\nmin_delay: {from: 0.1, to: 1.0}\nmax_delay: [2, 3]\n"
    a, b = parse_grid(text), parse_grid(text)
    assert a.settings == b.settings and len(a.settings) == 20
    assert len({s.values for s in a.settings}) == 20
    assert all(0.1 <= s.get("min_delay") <= 1.0 for s in a.settings)
    other = parse_grid(text.replace("seed: 7", "seed: 8"))
    assert other.settings != a.settings
    small = parse_grid("samples: 10\nmax_delay: [2, 3]\n")
    assert len(small.settings) == 2 and "fewer than samples" in small.notes[0]


@pytest.mark.parametrize(("text", "message"), [
    ("min_delay: [0.2]\nmin_dealy: [0.3]\n", "<grid>:2: unknown option 'min_dealy'"),
    ("min_delay: [0.2, -1]\n", "<grid>:1: min_delay: must be >= 0 (got -1)"),
    ("max_delay: [0.2]\nmin_delay: {from: 0.2, to: 1.0}\n", "<grid>:2: min_delay: a range "
     "needs a step"),
    ("min_delay: {from: 1.0, to: 0.2, step: 0.1}\n", "to (0.2) is below from (1)"),
    ("min_delay: {from: 0.1, to: 0.2, step: 0}\n", "range step: must be > 0"),
    ("min_delay: {from: 0.1, upto: 0.2}\n", "not upto"),
    ("turn_detection: [vad, stt]\n", "<grid>:1: turn_detection: must be one of vad, model"),
    ("endpointing_mode: {from: 0, to: 1, step: 1}\n", "not a range"),
    ("profile: fast\nmin_delay: [0.2]\n", "<grid>:1: profile: unknown profile 'fast' "
     "(this version declares: default, livekit)"),
    ("profile: livekit\nbackchannel_max_words: [1, 2]\n", "<grid>:2: backchannel_max_words: "
     "only matters with profile: default"),
    ("profile: [{a: 1}]\nmin_delay: [0.2]\n", "<grid>:1: profile: unknown profile {'a': 1}"),
    ("min_delay: [0.2]\nunlikely_threshold: [0.3]\n", "<grid>:2: unlikely_threshold: only "
     "matters with turn_detection: model"),
    ("endpointing_mode: [fixed]\nalpha: [0.5]\n", "alpha: only matters with "
     "endpointing_mode: dynamic"),
    ("backchannel_boundary: [[1, 2, 3]]\n", "a pair must have two numbers"),
    ("interruption_detection: [yes, 1]\n", "must be true or false (got 1)"),
    ("samples: 0\nmin_delay: [0.2]\n", "<grid>:1: samples: must be a whole number from 1 to"),
    ("seed: 3\nmin_delay: [0.2]\n", "only a random search (samples: N) uses a seed"),
    ("min_delay: [0.2\nmax_delay: 3\n", "<grid>:2: not valid YAML"),
    ("- min_delay\n", "the grid must be a mapping"),
    ("", "the grid is empty"),
    ("profile: livekit\n", "names no option to tune"),
    ("min_delay: [0.2]\nmin_delay: [0.3]\n", "<grid>:2: min_delay: given twice"),
    ("min_delay: []\n", "an empty list"),
])
def test_grid_errors_name_the_line(text: str, message: str) -> None:
    """Unknown names, bad values and malformed ranges are refused, naming the grid line."""
    with pytest.raises(GridError) as e:
        parse_grid(text)
    assert message in str(e.value)


# -- the sweep against a plain loop --------------------------------------------------------------


def _loop(grid_text: str) -> list[dict[str, Any]]:
    """The figures per setting, by hand: listen's trace for each audio-side value, the
    engine-side values in its header, replay_trace, score_outputs, scores added up."""
    grid = parse_grid(grid_text)
    totals = [Score() for _ in grid.settings]
    for path in SESSIONS:
        audio = read_wav(path)
        words = read_words(path.replace(".wav", ".words.json"))
        truth = read_truth(path.replace(".wav", ".truth.json"))
        traces: dict[tuple[float, float], Trace] = {}  # the VAD is slow: once per value
        for k, s in enumerate(grid.settings):
            v = s.as_dict()
            audio_side = (v["min_silence"], v["interruption_after"])
            if audio_side not in traces:
                opts = ListenOptions(
                    engine=EngineOptions(interruption_detection=audio.channels > 1),
                    vad=VadOptions(min_silence_duration=v["min_silence"]),
                    interruption_after=v["interruption_after"])
                traces[audio_side] = build_trace(audio, opts, words=words)
            trace = traces[audio_side]
            b = v["backchannel_boundary"]
            cfg = {**trace.config,
                   "endpointing": {**trace.config["endpointing"], "min_delay": v["min_delay"]},
                   "backchannel_boundary": None if b is None else list(b)}
            out = replay_trace(attrs.evolve(trace, config=cfg))
            totals[k] = totals[k] + score_outputs(out, truth)
    return [t.summary() for t in totals]


def _figures(result: Any) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.summary().items() if k != "sessions"} for t in result.tallies]


@pytest.fixture(scope="module")
def serial() -> Any:
    """The test grid swept serially."""
    return sweep_serial(parse_grid(GRID), SESSIONS)


def test_sweep_equals_a_plain_replay_and_score_loop(serial: Any) -> None:
    """Every setting's figures are those of replay_trace + score_outputs by hand."""
    assert _figures(serial) == _loop(GRID)
    assert len(serial.tallies) == 16 and serial.replays == 32
    assert {t.sessions for t in serial.tallies} == {2}


def test_traces_from_recorded_vad_equal_listen_traces() -> None:
    """A trace built from the recorded VAD is the one `turnfsm score` builds (no audio-side
    setting) or `listen` builds from the audio (with them)."""
    import argparse

    from turnfsm.core.profiles import get_profile
    for path in SESSIONS:
        traces, _truth = _session(Path(path), argparse.Namespace(asr="none", no_detector=False),
                                  {"default": get_profile("default")})
        assert build(cached_session(path)) == traces["default"]
    key = (("min_silence", 0.3), ("vad_threshold", 0.6), ("interruption_after", 0.3))
    listen = build_trace(read_wav(STEREO), ListenOptions(
        engine=EngineOptions(interruption_detection=True),
        vad=VadOptions(activation_threshold=0.6, deactivation_threshold=max(0.01, 0.6 - 0.15),
                       min_silence_duration=0.3), interruption_after=0.3),
        words=read_words(STEREO.replace(".wav", ".words.json")),
        agent_words=read_words(STEREO.replace(".wav", ".words.json"), "agent"))
    assert build(cached_session(STEREO), key) == listen


def test_model_setting_replays_as_listen_does() -> None:
    """turn_detection: model replays as `listen --turn-detection model` (a Session whose
    model is the rule-based one)."""
    grid = parse_grid("turn_detection: [model]\nunlikely_threshold: [0.3, 0.7]\n")
    trace = build(prepare(MONO))
    for s in grid.settings:
        r = RuntimeReplay(apply(trace, s))
        r.model_fn = RuleBasedModel().answer
        assert replay_setting(trace, s) == r.run()


def test_plan_covers_every_pair_once() -> None:
    """The tasks cover each (session, setting) once, by session or in chunks."""
    settings = parse_grid("min_delay: {from: 0.1, to: 3.0, step: 0.1}\n"
                          "min_silence: [0.3, 0.5]\n").settings
    for sessions, workers in ((3, 1), (3, 2), (100, 2), (40, 2), (1, 8)):
        p = plan(sessions, settings, workers)
        pairs = [(i, j) for t in p.tasks for i in t.sessions for j in t.settings]
        assert sorted(pairs) == [(i, j) for i in range(sessions) for j in range(60)]
        assert p.split == any(len(t.settings) < 60 for t in p.tasks)


def test_pool_equals_serial(serial: Any) -> None:
    """Two worker processes (sessions prepared first, settings in chunks) give the serial
    figures."""
    pooled = sweep_pool(parse_grid(GRID), SESSIONS, 2)
    assert pooled.runner == "pool (2 workers)"
    assert _figures(pooled) == _figures(serial)


def test_local_dask_cluster_equals_serial(serial: Any) -> None:
    """A LocalCluster of two worker processes gives the serial figures."""
    distributed = pytest.importorskip("distributed")
    from turnfsm.tuning import sweep
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        result = sweep(parse_grid(GRID), SESSIONS, cluster=cluster.scheduler_address)
    assert result.runner.startswith("dask (tcp://")
    assert _figures(result) == _figures(serial)


def test_cluster_without_dask_says_what_to_install(monkeypatch: pytest.MonkeyPatch,
                                                   tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """--cluster without Dask installed exits 2 naming the package to install."""
    monkeypatch.setitem(sys.modules, "distributed", None)
    grid = tmp_path / "g.yaml"
    grid.write_text("min_delay: [0.5]\n")
    assert main(["tune", MONO, "--grid", str(grid), "--cluster", "tcp://127.0.0.1:1"]) == 2
    assert "pip install 'dask[distributed]'" in capsys.readouterr().err


# -- the front, the rule, the files --------------------------------------------------------------


def test_pareto_front_of_a_hand_made_set() -> None:
    """The front keeps the points no other beats on both counts, equal points together."""
    points: list[tuple[float, float | None]] = [
        (5, 0.50), (3, 0.70), (3, 0.60), (1, 0.90), (1, 0.95), (0, None), (6, 0.45),
        (3, 0.60), (2, 0.90), (0, 1.20), (7, 0.45)]
    assert pareto_front(points) == [9, 3, 2, 7, 0, 6]
    assert pareto_front([]) == []
    assert pareto_front([(0, None)]) == []


def test_recommendation_rule() -> None:
    """Fewest cut-ins within the latency bound; ties by the lower p90, then the median."""
    def row(cut: int, p50: float | None, p90: float | None, orphans: int = 0) -> dict[str, Any]:
        return {"cut_ins": cut, "latency_p50": p50, "latency_p90": p90, "orphans": orphans,
                "missed_turns": 0, "backchannel_turns": 0, "false_interruptions": 0,
                "missed_interruptions": 0}
    rows = [row(0, 1.2, 1.3), row(2, 0.6, 0.7), row(1, 0.9, 1.1), row(1, 0.95, 1.0),
            row(1, 0.95, 1.0, orphans=1), row(0, None, None)]
    assert recommend(rows, 1.0) == 3
    assert recommend(rows, 1.5) == 0
    assert recommend(rows, 0.5) is None


def test_tally_quantiles_are_score_quantiles() -> None:
    """A tally's latency quantiles equal Score.latency over the same latencies."""
    scores = [Score(latencies=(0.5, 0.7, 0.7)), Score(latencies=(0.2,)),
              Score(latencies=(0.9, 0.7)), Score()]
    tally, merged = Tally(), Tally()
    for s in scores[:2]:
        tally.add(s)
    for s in scores[2:]:
        merged.add(s)
    tally.merge(merged)
    total = sum(scores, Score())
    for q in (0.5, 0.9, 0.1, 1.0):
        assert tally.latency(q) == total.latency(q)
    assert tally.summary()["sessions"] == 4
    assert Tally().latency(0.5) is None


def test_csv_output(serial: Any, tmp_path: Path) -> None:
    """The CSV has a row per setting with its values, figures and flags."""
    rows = annotate(serial, 1.0)
    path = tmp_path / "results.csv"
    write_csv(serial, rows, path)
    with open(path, newline="") as f:
        got = list(csv.DictReader(f))
    assert len(got) == 16
    assert list(got[0])[:6] == ["setting", "profile", "min_delay", "backchannel_boundary",
                                "min_silence", "interruption_after"]
    assert [r["backchannel_boundary"] for r in got[:8:4]] == ["[1, 3.5]", ""]
    assert [int(r["cut_ins"]) for r in got] == [r["cut_ins"] for r in rows]
    assert sum(r["recommended"] == "true" for r in got) == 1
    assert {r["pareto"] for r in got} <= {"true", "false"}


def test_tune_command_writes_table_csv_parquet_and_plot(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]
                                                        ) -> None:
    """`turnfsm tune` prints the table, the front and the recommendation, and writes the
    files it is asked for."""
    grid = tmp_path / "g.yaml"
    grid.write_text("min_delay: [0.3, 0.6]\nturn_detection: [vad, model]\n")
    outs = ["-o", str(tmp_path / "r.csv"), "--plot", str(tmp_path / "p.png")]
    if _has("pyarrow"):
        outs += ["-o", str(tmp_path / "r.parquet")]
    assert main(["tune", MONO, "--grid", str(grid), "-j", "1", *outs]) == 0
    text = capsys.readouterr().out
    assert "Pareto front" in text and "Recommended: #" in text and "turn_detection" in text
    assert (tmp_path / "r.csv").read_text().count("\n") == 5
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    if _has("pyarrow"):
        import pyarrow.parquet as pq
        table = pq.read_table(tmp_path / "r.parquet")
        assert table.num_rows == 4 and str(table.schema.field("min_delay").type) == "double"
    assert main(["tune", MONO, "--grid", str(grid), "-o", str(tmp_path / "r.txt")]) == 2
    assert "r.txt: -o writes .csv or .parquet" in capsys.readouterr().err
    grid.write_text("min_delay: [0.3]\nmin_delai: [1]\n")
    assert main(["tune", MONO, "--grid", str(grid)]) == 2
    assert f"{grid}:2: unknown option 'min_delai'" in capsys.readouterr().err


def _has(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def test_a_grid_value_too_large_for_a_float_is_one_error() -> None:
    """An integer beyond a float's range (YAML reads it whole) is refused like infinity,
    with one line naming the grid and the option, not an OverflowError."""
    from turnfsm.tuning.grid import GridError, parse_grid

    with pytest.raises(GridError, match=r"^g\.yaml:1: min_delay: must be a finite number"):
        parse_grid("min_delay: 1" + "0" * 400 + "\n", "g.yaml")


def test_grid_sweeps_the_session_pause_options() -> None:
    """pause_memory and pause_margin are tunable (default profile) and reach the header."""
    g = parse_grid("pause_memory: [0, 3]\npause_margin: {from: 0.1, to: 0.3, step: 0.1}\n")
    assert [s.label() for s in g.settings[:2]] == ["pause_memory=0 pause_margin=0.1",
                                                   "pause_memory=0 pause_margin=0.2"]
    assert len(g.settings) == 6
    trace = apply(build(prepare(MONO)), g.settings[-1])
    assert (trace.config["pause_memory"], trace.config["pause_margin"]) == (3, 0.3)
    with pytest.raises(GridError, match=r"pause_memory: only matters with profile: default"):
        parse_grid("profile: livekit\npause_memory: [0, 3]\n")


def test_grid_eou_model_drops_the_rules_threshold() -> None:
    """eou_model: smart-turn is the host's model: turn_detection and unlikely_threshold do
    not matter with it, so its settings run once."""
    g = parse_grid("eou_model: [rules, smart-turn]\nturn_detection: [vad, model]\n"
                   "unlikely_threshold: [0.2, 0.5]\n")
    assert [s.label() for s in g.settings] == [
        "eou_model=rules turn_detection=vad",
        "eou_model=rules turn_detection=model unlikely_threshold=0.2",
        "eou_model=rules turn_detection=model unlikely_threshold=0.5",
        "eou_model=smart-turn"]
    with pytest.raises(GridError, match=r"eou_model: must be one of rules, smart-turn"):
        parse_grid("eou_model: [smart_turn]\n")


def test_smart_turn_setting_scores_as_score_does() -> None:
    """eou_model: smart-turn replays as `turnfsm score --eou-model smart-turn` (Smart Turn
    v3.2 fused with the rules, hearing the session's user channel), and differs from the
    rules alone where Smart Turn doubts a complete turn (en46's, answered after max_delay)."""
    pytest.importorskip("onnxruntime")
    import argparse

    from turnfsm.audio.smart_turn import SmartTurn, SmartTurnError, bundled_model_path, replay_fused
    try:
        bundled_model_path()
    except SmartTurnError:
        pytest.skip("pipecat-ai's model file absent")
    from turnfsm.core.profiles import get_profile
    path = str(ROOT / "examples" / "corpus" / "en46_ssml_filler.wav")
    grid = parse_grid("eou_model: [rules, smart-turn]\n")
    got = _figures(sweep_serial(grid, [path]))
    prof = get_profile("default")
    traces, truth_path = _session(Path(path), argparse.Namespace(
        asr="none", no_detector=False, eou_model="smart-turn"), {"default": prof})
    assert traces["default"].config["turn_detection"] == "model"
    want = score_outputs(replay_fused(apply(traces["default"], grid.settings[1]),
                                      read_wav(path).samples[0], profile=prof,
                                      smart_turn=SmartTurn()), read_truth(truth_path))
    assert got[1] == want.summary()
    assert got[0] != got[1]


def test_tune_refuses_smart_turn_on_traces(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """eou_model: smart-turn with a trace session: one line, exit 2 (it hears audio)."""
    grid = tmp_path / "g.yaml"
    grid.write_text("eou_model: [rules, smart-turn]\n")
    one = sorted((ROOT / "tests" / "conformance" / "public" / "traces").glob("*.jsonl"))[0]
    (tmp_path / one.name).write_text(one.read_text())
    (tmp_path / one.name.replace(".jsonl", ".truth.json")).write_text(
        '{"turns": [], "backchannels": [], "interruptions": []}')
    assert main(["tune", str(tmp_path / one.name), "--grid", str(grid), "-j", "1"]) == 2
    err = capsys.readouterr().err
    assert "eou_model smart-turn hears audio" in err and err.count("\n") == 1
