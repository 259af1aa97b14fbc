"""Chart loading and validation: every error names its YAML location."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnfsm.chart import load_chart
from turnfsm.core import RULES, default_chart, read_chart
from turnfsm.errors import ChartError

ROOT = Path(__file__).resolve().parents[1]

TINY = """\
chart: tiny
version: 1
events:
  go: {input: Close}
  stop: {input: Close}
regions:
  - name: r
    initial: a
    states:
      a: {doc: first}
      b: {doc: second}
    transitions:
      - {event: go, source: a, dest: b}
      - {event: stop, source: b, dest: a}
    ignore_in:
      a: [stop]
      b: [go]
"""


def problems(text: str, **kw: object) -> list[str]:
    with pytest.raises(ChartError) as info:
        load_chart(text, "c.yaml", **kw)  # type: ignore[arg-type]
    return info.value.problems


def test_tiny_chart_loads() -> None:
    """A small well-formed chart loads into regions, events and transitions."""
    c = load_chart(TINY, "c.yaml")
    assert [r.name for r in c.regions] == ["r"]
    assert {t.event for t in c.transitions} == {"go", "stop"}


def test_registry_holds_no_rule_the_shipped_charts_do_not_use() -> None:
    """Every guard and action the engine registers is named by states.yaml or a built-in
    profile's chart: no dead rule (loading a chart checks only that its names are
    registered, never the converse; the property suite's ``mutant_*`` rules aside)."""
    from turnfsm.core.profiles import PROFILES, get_profile

    charts = [default_chart(), *(get_profile(name).chart for name in PROFILES)]
    guards = set().union(*(c.guard_names for c in charts))
    actions = set().union(*(c.action_names for c in charts))
    own = {n for n in RULES.guards if not n.startswith("mutant_")}
    assert own - guards == set(), "registered guards no shipped chart uses"
    own = {n for n in RULES.actions if not n.startswith("mutant_")}
    assert own - actions == set(), "registered actions no shipped chart uses"


def test_malformed_yaml_names_line() -> None:
    """Broken YAML is refused with the line of the syntax error."""
    (p,) = problems(TINY.replace("  - name: r\n", "  - name: [r\n"))
    assert p.startswith("c.yaml:8:") and "malformed YAML" in p and "line 7" in p


def test_unknown_state_names_line() -> None:
    """A transition to a state the region does not have is refused at its line."""
    ps = problems(TINY.replace("dest: b}", "dest: zz}"))
    assert any(p.startswith("c.yaml:13:") and "unknown state 'zz'" in p for p in ps), ps


def test_unreachable_state_reported() -> None:
    """A state no transition enters is reported as unreachable."""
    text = TINY.replace("      b: {doc: second}\n",
                        "      b: {doc: second}\n      c: {doc: lost}\n")
    ps = problems(text)
    assert any("state 'c' is unreachable" in p and p.startswith("c.yaml:12:") for p in ps), ps


def test_unhandled_event_reported() -> None:
    """An event the region handles in one state must be handled or ignored in every state."""
    ps = problems(TINY.replace("      b: [go]\n", ""))
    assert any(p.startswith("c.yaml:11:") and "state 'b' neither handles nor ignores event 'go'"
               in p for p in ps), ps


def test_conflicting_transitions_reported() -> None:
    """Two transitions that could both fire for one event and state are refused."""
    text = TINY.replace("      - {event: stop, source: b, dest: a}\n",
                        "      - {event: stop, source: b, dest: a}\n"
                        "      - {event: stop, source: b, guard: g}\n")
    ps = problems(text)
    assert any(p.startswith("c.yaml:15:") and "could both fire on 'stop'" in p for p in ps), ps


def test_exclusive_guards_accepted() -> None:
    """Transitions whose guards exclude each other (g / not g) are accepted."""
    text = TINY.replace("      - {event: stop, source: b, dest: a}\n",
                        "      - {event: stop, source: b, dest: a, guard: g}\n"
                        "      - {event: stop, source: b, guard: not g}\n")
    load_chart(text, "c.yaml")


def test_unregistered_guard_and_action_reported() -> None:
    """Guard and action names must be in the registry."""
    text = TINY.replace("{event: go, source: a, dest: b}",
                        "{event: go, source: a, dest: b, guard: nope, actions: [nada]}")
    ps = problems(text, registry=RULES)
    assert any(p.startswith("c.yaml:13:") and "guard 'nope' is not registered" in p for p in ps)
    assert any(p.startswith("c.yaml:13:") and "action 'nada' is not registered" in p for p in ps)


def test_undeclared_event_reported() -> None:
    """A transition on an event missing from `events` is refused at its line."""
    ps = problems(TINY.replace("{event: go, source: a, dest: b}",
                               "{event: gone, source: a, dest: b}"))
    assert any(p.startswith("c.yaml:13:") and "undeclared event 'gone'" in p for p in ps), ps


def test_unknown_keys_reported() -> None:
    """Misspelt keys are refused instead of silently ignored."""
    ps = problems(TINY.replace("    initial: a\n", "    initial: a\n    intial: b\n"))
    assert any("unknown key 'intial'" in p and p.startswith("c.yaml:7:") for p in ps), ps


def test_bad_initial_state_reported() -> None:
    """An initial state that is not one of the region's states is refused."""
    ps = problems(TINY.replace("initial: a", "initial: q"))
    assert any("initial state 'q'" in p for p in ps), ps


def test_every_problem_reported_at_once() -> None:
    """All problems of a chart are listed together, not only the first."""
    text = TINY.replace("dest: b}", "dest: zz}")
    text = text.replace("    initial: a\n", "    initial: a\n    x: 1\n")
    assert len(problems(text)) >= 2


def test_read_chart_missing_file(tmp_path: Path) -> None:
    """A chart file that cannot be read is a ChartError naming the file."""
    with pytest.raises(ChartError, match="cannot read the chart"):
        read_chart(tmp_path / "nope.yaml")


def test_root_states_yaml_is_the_chart_the_code_runs() -> None:
    """In a checkout the default chart is the repository's root states.yaml."""
    assert Path(default_chart().source).resolve() == (ROOT / "states.yaml").resolve()


def test_engine_names_are_declared_by_the_chart() -> None:
    """Every region/state the engine's code names is in REQUIRED_STATES, or is what a rule
    that reads a region only some charts have declares it needs (so charts are checked)."""
    import re

    from turnfsm.core.registry import REQUIRED_STATES, RULES

    src = "".join(p.read_text() for p in (ROOT / "src" / "turnfsm" / "core").rglob("*.py"))
    used = set(re.findall(r'(?:in_state|index)\("([a-z_]+)", "([a-z_]+)"\)', src))
    assert used, "the pattern no longer finds the engine's state references"
    optional: dict[str, set[str]] = {}
    for needs in RULES.needs.values():
        for region, states in needs:
            optional.setdefault(region, set()).update(states)
    for region, state in used:
        assert state in REQUIRED_STATES.get(region, ()) or state in optional.get(region, ()), \
            (region, state)


def test_a_chart_naming_a_rule_without_the_region_it_reads_is_refused(tmp_path: Path) -> None:
    """`holds_for_final` reads the final_wait seam region: a chart that names it without
    declaring that region is refused, naming the rule and the region."""
    base = (ROOT / "states.yaml").read_text()
    start, end = base.index("  - name: final_wait\n"), base.index("  - name: turn\n")
    text = base[:start] + base[end:]
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    with pytest.raises(ChartError) as info:
        read_chart(p)
    assert any("'holds_for_final' reads region 'final_wait'" in x for x in info.value.problems)


def test_user_chart_missing_a_required_state_is_refused(tmp_path: Path) -> None:
    """A user chart that renames a state the engine relies on is refused with its location."""
    text = (ROOT / "states.yaml").read_text().replace("predicting", "guessing")
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    with pytest.raises(ChartError) as info:
        read_chart(p)
    assert any("region 'turn' needs a state 'predicting'" in x for x in info.value.problems)


def test_user_chart_that_validates_runs(tmp_path: Path) -> None:
    """A user's own valid chart (here: extra docs) runs a session."""
    from turnfsm import Engine
    from turnfsm import events as ev

    text = (ROOT / "states.yaml").read_text().replace(
        "doc: the user is silent}", "doc: the user is silent (mine)}")
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    chart = read_chart(p)
    e = Engine(chart=chart)
    e.handle(ev.VadStartOfSpeech(t=1.0))
    assert e.state()["user_speech"] == "speaking"


def test_check_command_lists_every_problem_with_location(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`turnfsm check FILE` prints each problem with FILE:LINE and exits 1; a good chart 0."""
    from turnfsm.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "states.yaml").read_text()
                   .replace("initial: running", "initial: runnin")
                   .replace("actions: [restart_stt]}", "actions: [restart_sst]}", 1))
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:" in err and "initial state 'runnin'" in err
    assert "action 'restart_sst' is not registered" in err
    assert main(["check"]) == 0
    assert f"ok ({len(default_chart().regions)} regions" in capsys.readouterr().out


def test_an_action_routed_an_event_it_cannot_read_is_refused(tmp_path: Path) -> None:
    """The loader checks each action's accepted payloads against the events routed to it."""
    text = (ROOT / "states.yaml").read_text().replace(
        "actions: [process_final]}", "actions: [agent_ended]}")
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    with pytest.raises(ChartError) as info:
        read_chart(p)
    assert any("action 'agent_ended' does not accept what event 'stt_final' carries (SttFinal)"
               in x for x in info.value.problems), info.value.problems


def test_an_internal_event_payload_must_be_known(tmp_path: Path) -> None:
    """An internal event naming an unknown payload class is refused with its line."""
    text = (ROOT / "states.yaml").read_text().replace("payload: Trigger,", "payload: Trigga,")
    p = tmp_path / "mine.yaml"
    p.write_text(text)
    with pytest.raises(ChartError) as info:
        read_chart(p)
    assert any("unknown payload class 'Trigga'" in x for x in info.value.problems)


# -- guard literals: `in: REGION.STATE` and `option: NAME` ----------------------------------

TWO = TINY.replace("""    ignore_in:
      a: [stop]
      b: [go]
""", """    ignore_in:
      a: [stop]
      b: [go]
  - name: s
    initial: x
    states:
      x: {doc: one}
      y: {doc: two}
      z: {doc: three}
    transitions:
      - {event: go, source: x, dest: y, guard: [in: r.b]}
      - {event: go, source: x, dest: z, guard: [not in: r.b]}
      - {event: [go, stop], source: [y, z], dest: x}
    ignore_in:
      x: [stop]
""")


def test_in_literals_parse_in_every_written_form() -> None:
    """`[in: r.s]`, `{not in: r.s}` and the quoted string give the same canonical guard,
    whose kind and target name the region and state."""
    from turnfsm.chart import Guard
    from turnfsm.chart.model import guard_term

    assert guard_term({"in": " r.b "}) == Guard("in: r.b") == guard_term("in:r . b")
    assert guard_term({"not in": "r.b"}) == Guard("in: r.b", True) == guard_term("not in: r.b")
    g = guard_term({"option": "turn_detection==stt"})
    assert g == Guard("option: turn_detection == stt")
    assert (g.kind, g.target) == ("option", ("turn_detection", "stt"))
    assert Guard("in: r.b").target == ("r", "b") and Guard("may_decide").kind == "rule"
    assert guard_term({"maybe": "r.b"}) is None and guard_term(3) is None
    c = load_chart(TWO, "c.yaml")
    assert {str(g) for t in c.transitions if t.region == "s" for g in t.guards} == {
        "in: r.b", "not in: r.b"}
    assert c.guard_names == frozenset()  # literals are not registered names


def test_in_literal_naming_an_unknown_region_or_state_is_refused() -> None:
    """An `in:` literal must name a declared region (any, before or after) and one of its
    states; the problem names the line and lists what exists."""
    ps = problems(TWO.replace("[in: r.b]", "[in: q.b]"))
    assert any(p.startswith("c.yaml:25:") and "names unknown region 'q' (regions: r, s)" in p
               for p in ps), ps
    ps = problems(TWO.replace("[not in: r.b]", "[not in: r.c]"))
    assert any(p.startswith("c.yaml:26:") and "unknown state 'c' of region 'r' (states: a, b)"
               in p for p in ps), ps
    ps = problems(TWO.replace("[in: r.b]", "[{maybe: r.b}]"))
    assert any("is neither a guard name nor a literal" in p for p in ps), ps


def test_in_literals_of_two_states_of_one_region_are_exclusive() -> None:
    """`in: r.a` and `in: r.b` cannot hold together, so the loader accepts them side by side;
    `in: r.a` and `in: s.x` can, so it refuses those."""
    text = TWO.replace("[not in: r.b]", "[in: r.a]")
    load_chart(text, "c.yaml")
    ps = problems(TWO.replace("[not in: r.b]", "[in: s.x]"))
    assert any("could both fire on 'go' in state 'x'" in p for p in ps), ps


def test_option_literals_of_two_values_of_one_option_are_exclusive() -> None:
    """`option: o == x` and `option: o == y` cannot hold together (an option has one
    value), so the loader accepts them side by side; two values of two options can, and
    one value with a boolean option can, so it refuses those."""
    both = "[option: turn_detection == stt]", "[option: turn_detection == manual]"
    text = TWO.replace("[in: r.b]", both[0]).replace("[not in: r.b]", both[1])
    load_chart(text, "c.yaml")
    for other in ("[option: endpointing_mode == fixed]", "[option: vad]"):
        ps = problems(TWO.replace("[in: r.b]", both[0]).replace("[not in: r.b]", other))
        assert any("could both fire on 'go' in state 'x'" in p for p in ps), (other, ps)


def test_option_literals_are_checked_against_the_options() -> None:
    """`option: NAME` needs a boolean option, `option: NAME == VALUE` one of its values;
    unknown names are refused (with the registry that knows the options)."""
    for guard, want in (("option: nope", "names unknown option 'nope'"),
                        ("option: turn_detection", "needs a boolean option"),
                        ("option: turn_detection == sometimes", "is never 'sometimes'")):
        ps = problems(TINY.replace("{event: go, source: a, dest: b}",
                                   f"{{event: go, source: a, dest: b, guard: [{guard}]}}"),
                      registry=RULES)
        assert any(p.startswith("c.yaml:13:") and want in p for p in ps), (guard, ps)


@pytest.mark.parametrize("backend", ["table", "transitions"])
def test_literals_decide_at_run_time_on_both_backends(tmp_path: Path, backend: str) -> None:
    """A user chart whose user_speech region takes a VAD start only with
    `option: speech_feedback` (and `in: vad_input.attached`), and whose mode region is told
    by `option: turn_detection == stt`: the options in force decide, an update included."""
    from turnfsm import Engine, EngineOptions
    from turnfsm import events as ev

    text = (ROOT / "states.yaml").read_text()
    old = ("      - {event: vad_start, source: [silent, speaking], dest: speaking, "
           "guard: [in: vad_input.attached], actions: [report_vad_start]}\n")
    assert old in text
    new = (old.replace("guard: [in: vad_input.attached]",
                       "guard: [in: vad_input.attached, option: speech_feedback]")
           + "      - {event: vad_start, source: [silent, speaking], guard: "
             "[in: vad_input.attached, not option: speech_feedback]}\n")
    p = tmp_path / "mine.yaml"
    p.write_text(text.replace(old, new))
    chart = read_chart(p)
    for feedback, state in ((False, "silent"), (True, "speaking")):
        e = Engine(EngineOptions(speech_feedback=feedback), chart=chart,
                   backend=backend)  # type: ignore[arg-type]
        e.handle(ev.VadStartOfSpeech(t=1.0))
        assert e.state()["user_speech"] == state

    old = "      - {event: to_vad, source: realtime, dest: vad}\n"
    assert old in text
    new = ("      - {event: to_vad, source: realtime, dest: vad, guard: "
           "[not option: turn_detection == stt]}\n"
           "      - {event: to_vad, source: realtime, guard: [option: turn_detection == stt]}\n")
    p.write_text(text.replace(old, new))
    chart = read_chart(p)
    e = Engine(EngineOptions(turn_detection="realtime_llm"), chart=chart,
               backend=backend)  # type: ignore[arg-type]
    e.handle(ev.UpdateOptions(t=1.0, set_turn_detection=True, turn_detection="vad"))
    assert e.state()["mode"] == "vad"


def test_only_a_seam_region_may_have_a_state_no_transition_enters(tmp_path: Path) -> None:
    """A state nothing enters is refused, except in a `seam: true` region (a profile's
    replacement enters it); `seam` must be a boolean."""
    base = (ROOT / "states.yaml").read_text()
    assert "    seam: true\n" in base
    p = tmp_path / "mine.yaml"
    seam = "  - name: final_wait\n    seam: true\n"
    assert seam in base
    p.write_text(base.replace(seam, "  - name: final_wait\n"))
    with pytest.raises(ChartError) as info:
        read_chart(p)
    assert any("state 'pending' is unreachable from 'settled'" in x
               for x in info.value.problems)
    p.write_text(base.replace(seam, "  - name: final_wait\n    seam: maybe\n"))
    with pytest.raises(ChartError) as info:
        read_chart(p)
    assert any("'seam' must be true or false" in x for x in info.value.problems)
    p.write_text(base)
    assert any(r.seam and r.name == "final_wait" for r in read_chart(p).regions)


def test_a_rule_may_need_several_regions_and_each_is_checked() -> None:
    """The backchannel guards read two regions (utterance, utterance_verdict): a chart
    without either is refused, naming the rule and the missing region."""
    import attrs

    from turnfsm.core.profiles import get_profile

    chart = get_profile("default").chart
    assert ("utterance", frozenset({"over_agent"})) in RULES.needs["still_judging"]
    for gone in ("utterance", "utterance_verdict"):
        mutant = attrs.evolve(chart, regions=tuple(r for r in chart.regions
                                                   if r.name != gone))
        problems = RULES.requirements(mutant)
        assert any(f"'still_judging' reads region {gone!r}" in p for p in problems), problems
