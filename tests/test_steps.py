"""Steps of the engine: atomic and fail-closed, option changes staged per input, the input
clock, step records for observers, the host scheduler's order, the transitions backend."""

from __future__ import annotations

import gc
from typing import Any

import pytest

from turnfsm import EndpointingOptions, Engine, EngineOptions, Scheduler, StepRecord
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.core import ObserverFailed, TimerKind
from turnfsm.core.machines import region_machines
from turnfsm.core.profiles import get_profile
from turnfsm.errors import EngineFailed, InputError


def _turn(e: Engine, t0: float = 1.0) -> list[out.Output]:
    outs: list[out.Output] = []
    for x in (ev.VadStartOfSpeech(t=t0), ev.VadInferenceDone(t=t0 + 0.2,
                                                             raw_accumulated_speech=0.3),
              ev.SttFinal(t=t0 + 0.3, text="hello there"), ev.VadEndOfSpeech(t=t0 + 0.5)):
        outs += e.handle(x)
    return outs


class _Boom(RuntimeError):
    pass


def test_an_exception_inside_a_step_fails_the_engine_closed() -> None:
    """A rule that raises mid-step: the step's outputs are discarded, EngineFailed names the
    input, and every later call raises EngineFailed (no half-moved regions leak out)."""
    from turnfsm.core.endpointing import Endpointing

    class Broken(Endpointing):
        def on_user_end(self, t: float, ignore: bool) -> None:
            raise _Boom("endpointing hook failed")

    e = Engine()
    e.handle(ev.VadStartOfSpeech(t=1.0))
    e.cx.endpointing = Broken(e.options.endpointing)
    with pytest.raises(EngineFailed) as info:
        e.handle(ev.VadEndOfSpeech(t=2.0))
    assert "VadEndOfSpeech at t=2.0" in str(info.value)
    assert isinstance(info.value.__cause__, _Boom)
    assert isinstance(info.value.input, ev.VadEndOfSpeech)
    assert e.failed is info.value
    for call in (lambda: e.handle(ev.VadStartOfSpeech(t=3.0)), lambda: e.advance(5.0),
                 e.fire_next_timer):
        with pytest.raises(EngineFailed, match="failed earlier"):
            call()


def test_an_event_without_a_time_is_refused_by_the_engine() -> None:
    """An unstamped event (no t) is refused with a message that says how to stamp it."""
    e = Engine()
    for x in (ev.VadStartOfSpeech(), ev.VadInferenceDone()):
        with pytest.raises(InputError, match="has no time"):
            e.handle(x)


def test_bad_input_is_refused_without_failing_the_engine() -> None:
    """InputError leaves the engine usable: only failures inside a step are terminal."""
    e = Engine()
    with pytest.raises(InputError):
        e.handle(ev.VadStartOfSpeech(t=float("nan")))
    assert e.failed is None
    assert e.handle(ev.VadStartOfSpeech(t=1.0))


def test_two_option_changes_queued_during_an_answer_both_apply_in_order() -> None:
    """Two UpdateOptions queued while an end of turn awaits its answer: each applies once,
    in order, each over the result of the one before."""
    e = Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=0.0)))
    outs = _turn(e)
    assert isinstance(outs[-1], out.EndOfTurn) and e.awaiting_answer
    assert e.handle(ev.UpdateOptions(t=2.1, user_turn_limit={"max_words": 3})) == []
    assert e.handle(ev.UpdateOptions(t=2.2, endpointing={"max_delay": 4.0})) == []
    e.handle(ev.EndOfTurnAnswered(t=2.3, accepted=True))
    assert e.options.user_turn_limit.max_words == 3  # the first change survived the second
    assert e.options.endpointing.max_delay == 4.0
    assert e.options.endpointing.min_delay == 0.0
    assert e.cx.limit.max_words == 3


def test_an_option_change_queued_is_checked_against_the_ones_before_it() -> None:
    """A queued change that is invalid given the change queued before it is refused at once."""
    e = Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=0.0)))
    _turn(e)
    e.handle(ev.UpdateOptions(t=2.1, endpointing={"mode": "dynamic"}))
    with pytest.raises(Exception, match="alpha"):
        e.handle(ev.UpdateOptions(t=2.2, endpointing={"alpha": 0.0}))
    e.handle(ev.EndOfTurnAnswered(t=2.3, accepted=True))
    assert e.options.endpointing.mode == "dynamic" and e.options.endpointing.alpha == 0.9


def test_advance_moves_the_input_clock() -> None:
    """After advance(2.0) an input at t=1.5 is refused; at 2.0 it is accepted."""
    e = Engine()
    e.advance(2.0)
    assert e.input_clock == 2.0
    with pytest.raises(InputError, match="goes back in time"):
        e.handle(ev.VadStartOfSpeech(t=1.5))
    with pytest.raises(InputError, match="goes back in time"):
        e.advance(1.0)
    assert e.handle(ev.VadStartOfSpeech(t=2.0))


def test_an_end_of_turn_stops_advance_at_its_time() -> None:
    """advance() stops at an EndOfTurn: the answer at its time is accepted, then time goes on."""
    e = Engine()
    for x in (ev.VadStartOfSpeech(t=1.0), ev.SttFinal(t=1.3, text="hi"),
              ev.VadInferenceDone(t=1.9, raw_accumulated_speech=0.5)):
        e.handle(x)
    e.handle(ev.VadEndOfSpeech(t=2.0))
    outs = e.advance(10.0)
    eot = [o for o in outs if isinstance(o, out.EndOfTurn)]
    assert eot and e.awaiting_answer and e.input_clock == eot[0].t
    e.handle(ev.EndOfTurnAnswered(t=eot[0].t, accepted=True))
    e.advance(10.0)
    assert e.input_clock == 10.0


def test_the_answer_inbox_is_bounded() -> None:
    """Inputs pile up while an end of turn waits for its answer, up to MAX_INBOX."""
    from turnfsm.core import engine as engine_module
    e = Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=0.0)))
    _turn(e)
    assert e.awaiting_answer
    old = engine_module.MAX_INBOX
    engine_module.MAX_INBOX = 3
    try:
        for k in range(3):
            e.handle(ev.SttInterim(t=2.1 + k * 0.01, text="x"))
        with pytest.raises(InputError, match="EndOfTurnAnswered"):
            e.handle(ev.SttInterim(t=2.2, text="y"))
    finally:
        engine_module.MAX_INBOX = old
    later = e.handle(ev.EndOfTurnAnswered(t=2.3, accepted=True))
    assert sum(isinstance(o, out.Transcript) for o in later) == 3


# -- step records --------------------------------------------------------------------------


def test_observers_receive_one_record_per_step() -> None:
    """Each handle/fire_next_timer produces one frozen record: input, moved regions, timers
    armed and cancelled, outputs (equal to what the call returned)."""
    records: list[StepRecord] = []
    e = Engine()
    e.add_observer(records.append, vad_windows=True)
    returned = []
    for x in (ev.VadStartOfSpeech(t=1.0, ref="a"), ev.VadInferenceDone(t=1.2,
                                                                      raw_accumulated_speech=0.3),
              ev.SttFinal(t=1.3, text="hi"), ev.VadEndOfSpeech(t=1.5)):
        returned.append(e.handle(x))
    assert [r.outputs for r in records] == [tuple(o) for o in returned]
    start = records[0]
    assert start.input is not None and start.input.ref == "a" and start.timer is None
    assert ("user_speech", "silent", "speaking") in start.moved
    assert ("turn", "idle", "open") in start.moved
    end = records[-1]
    assert ("turn", "open", "waiting") in end.moved
    assert [t.kind for t in end.armed] == [TimerKind.EOU_DEADLINE]
    e.handle(ev.VadStartOfSpeech(t=1.6))  # the user resumes: the wait and its timer go
    assert [t.kind for t in records[-1].cancelled] == [TimerKind.EOU_DEADLINE]
    assert records[-1].armed == ()
    assert [r.index for r in records] == list(range(1, len(records) + 1))
    assert dict(records[-1].state) == e.state()


def test_a_fired_timer_has_its_record() -> None:
    """A timer step records the timer and the outputs it caused; no input."""
    records: list[StepRecord] = []
    e = Engine()
    e.handle(ev.VadStartOfSpeech(t=1.0))
    e.handle(ev.SttFinal(t=1.3, text="hi"))
    e.handle(ev.VadEndOfSpeech(t=1.5))
    e.add_observer(records.append)
    outs = e.advance(5.0)
    assert len(records) == 1 and records[0].input is None
    assert records[0].timer is not None and records[0].timer.kind is TimerKind.EOU_DEADLINE
    assert list(records[0].outputs) == outs
    assert ("turn", "waiting", "delivering") in records[0].moved


def test_queued_inputs_are_recorded_with_the_answer_that_released_them() -> None:
    """Inputs that queued during an answer wait run in the answer's step and are named."""
    records: list[StepRecord] = []
    e = Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=0.0)))
    _turn(e)
    e.add_observer(records.append)
    fin = ev.SttFinal(t=2.1, text="again")
    e.handle(fin)
    e.handle(ev.EndOfTurnAnswered(t=2.2, accepted=True))
    assert records[-1].released == (fin,)


def test_a_failing_observer_does_not_lose_the_step() -> None:
    """An observer that raises: the step completed, its outputs travel on the error."""
    e = Engine()

    def bad(rec: StepRecord) -> None:
        raise ValueError("observer bug")
    e.add_observer(bad)
    with pytest.raises(ObserverFailed) as info:
        e.handle(ev.VadStartOfSpeech(t=1.0))
    assert any(isinstance(o, out.StartOfSpeech) for o in info.value.outputs)
    assert e.failed is None and e.in_state("user_speech", "speaking")
    e.remove_observer(bad)
    assert e.handle(ev.VadEndOfSpeech(t=2.0))


def test_vad_windows_bypass_the_machine_only_without_observers() -> None:
    """A VAD window is a step record only for observers that ask for windows; otherwise it
    stays on the fast path (no step bookkeeping)."""
    e = Engine()
    records: list[StepRecord] = []
    e.add_observer(records.append)
    before = e.steps
    e.handle(ev.VadInferenceDone(t=0.1, raw_accumulated_speech=0.1))
    assert e.steps == before and records == []  # fast path
    windows: list[StepRecord] = []
    e.add_observer(windows.append, vad_windows=True)
    e.handle(ev.VadInferenceDone(t=0.2, raw_accumulated_speech=0.2))
    assert len(windows) == 1 and isinstance(windows[0].outputs[0], out.VadInference)
    assert records == windows  # every observer sees every step that is recorded
    e.remove_observer(windows.append)
    e.handle(ev.VadInferenceDone(t=0.3, raw_accumulated_speech=0.3))
    assert len(windows) == 1


# -- the host scheduler ------------------------------------------------------------------


def test_scheduler_orders_engine_and_host_timers_by_creation_at_equal_deadlines() -> None:
    """At one deadline, a host timer made before the engine armed its timer fires first, and
    one made after fires after."""
    e = Engine(EngineOptions(endpointing=EndpointingOptions(min_delay=1.0)))
    s: Scheduler[str] = Scheduler(e)
    fired: list[str] = []
    s.call_at(3.0, "host-before")
    e.handle(ev.VadStartOfSpeech(t=1.0))
    e.handle(ev.SttFinal(t=1.5, text="hi"))
    e.handle(ev.VadEndOfSpeech(t=2.0))  # anchor 1.5 (the final) + 1.0 -> deadline 2.5
    s.call_at(2.5, "host-after")
    assert e.next_deadline() == 2.5

    def engine_outputs(outs: list[out.Output]) -> None:
        fired.extend("engine" for o in outs if isinstance(o, out.EndOfTurn))
        for o in outs:
            if isinstance(o, out.EndOfTurn):
                e.handle(ev.EndOfTurnAnswered(t=o.t, accepted=True))
    s.run_until(3.0, engine_outputs, fired.append)
    assert fired == ["engine", "host-after", "host-before"]
    assert s.next_deadline() is None


# -- the transitions backend -----------------------------------------------------------------


def test_transitions_backend_releases_its_models() -> None:
    """Engines on the transitions backend detach their models when they are collected."""
    chart = get_profile().chart  # the default profile's
    machines = region_machines(chart)
    gc.collect()
    base = machines.model_count()
    engines: list[Any] = [Engine(backend="transitions") for _ in range(50)]
    assert machines.model_count() == base + 50 * len(chart.regions)
    for en in engines:
        _turn(en)
    del engines, en
    gc.collect()
    assert machines.model_count() == base


def test_transitions_backend_reports_dispatch_like_the_table() -> None:
    """The dispatch observer sees the same (region, state, event, fired) on both backends."""
    seen: dict[str, list[tuple[str, str, str, bool]]] = {}
    for backend in ("table", "transitions"):
        e = Engine(EngineOptions(interruption_detection=True), backend=backend)  # type: ignore[arg-type]
        log = seen[backend] = []
        e.observe_dispatch(lambda *a, log=log: log.append(a))
        outs = _turn(e) + e.advance(2.5)
        assert any(isinstance(o, out.EndOfTurn) for o in outs)
        e.handle(ev.EndOfTurnAnswered(t=2.5, accepted=True))
        e.handle(ev.AgentSpeechStarted(t=3.0))
        e.handle(ev.SttFinal(t=3.5, text="uh huh"))
        e.handle(ev.AgentSpeechEnded(t=4.0))
    assert seen["table"] == seen["transitions"] and len(seen["table"]) > 20


def test_vad_window_outputs_can_be_turned_off() -> None:
    """With vad_window_outputs off a window returns nothing yet still moves the anchor and
    the onset, so the decisions are the same."""
    runs = []
    for flag in (True, False):
        e = Engine(EngineOptions(vad_window_outputs=flag))
        outs = e.handle(ev.VadStartOfSpeech(t=1.0))
        w = e.handle(ev.VadInferenceDone(t=1.4, raw_accumulated_speech=0.5))
        assert (len(w) == 1) is flag
        outs += e.handle(ev.SttFinal(t=1.5, text="hi")) + e.handle(ev.VadEndOfSpeech(t=1.6))
        outs += e.advance(3.0)
        runs.append([(o.t, o.new_transcript, o.started_speaking_at, o.stopped_speaking_at)
                     for o in outs if isinstance(o, out.EndOfTurn)])
    assert runs[0] == runs[1] == [(1.9, "hi", 1.0, 1.4)]


def test_every_vad_window_path_moves_the_anchor_alike() -> None:
    """The four ways a window reaches the engine (an event with and without window outputs,
    the object-free ``vad_window``, an event seen by a window observer) leave the same
    end-of-turn anchor and onset: silence moves nothing, speech moves the anchor to the
    window and sets an unknown onset, never before the last delivery (I7)."""
    seen = []
    for path in ("event", "quiet", "direct", "observed"):
        e = Engine(EngineOptions(vad_window_outputs=path != "quiet"))
        if path == "observed":
            e.add_observer(lambda r: None, vad_windows=True)

        def window(t: float, speech: float, e: Engine = e, path: str = path) -> None:
            if path == "direct":
                assert e.vad_window(t, speech) == 1
            else:
                e.handle(ev.VadInferenceDone(t=t, raw_accumulated_speech=speech))
        e.handle(ev.ClearUserTurn(t=0.5))  # the onset floor: 0.5
        window(0.6, 0.0)
        marks = [(e.cx.last_speaking_time, e.cx.speech_start_time)]
        window(0.8, 0.6)  # a run from 0.2, cut at the floor
        marks.append((e.cx.last_speaking_time, e.cx.speech_start_time))
        window(1.0, 0.0)  # silence after speech keeps the anchor
        window(1.2, 0.3)  # the onset is known: only the anchor moves
        marks.append((e.cx.last_speaking_time, e.cx.speech_start_time))
        seen.append(marks)
    assert seen[0] == [(None, None), (0.8, 0.5), (1.2, 0.5)]
    assert seen[1] == seen[0] and seen[2] == seen[0] and seen[3] == seen[0]
