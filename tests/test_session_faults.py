"""Fault injection for the asyncio Session: model and hook calls that hang, raise, are
cancelled or answer garbage; observers and tracer providers that raise on every step kind;
close at every stage of a pending decision; huge clock values and option values.

Every test asserts conservation (every final pushed is delivered in an end of turn the host
took, or reported dropped with a reason) and liveness (the session decides the next turn
after the fault). All run in virtual time (nothing sleeps)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from turnfsm import EndpointingOptions, Engine, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.errors import ConfigError, EngineFailed, InputError
from turnfsm.runtime import Session, run_virtual
from turnfsm.runtime.faults import (
    HOOK_FAULTS,
    MODEL_FAULTS,
    BrokenTracerProvider,
    FaultyHooks,
    FaultyModel,
    Ledger,
    RaisingObserver,
)
from turnfsm.runtime.virtual import VirtualClockLoop

MODEL = EngineOptions(turn_detection="model",
                      endpointing=EndpointingOptions(min_delay=0.5, max_delay=3.0))


def virtual(test: Callable[[], Awaitable[None]], *, start: float = 0.0) -> None:
    """Run an async test body on a virtual clock (starting at ``start``); no task may
    outlive it."""
    async def body() -> None:
        before = set(asyncio.all_tasks())
        await test()
        await asyncio.sleep(0)
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()
                and not t.done()]
        assert not left, f"tasks left pending: {left}"

    def factory() -> VirtualClockLoop:
        loop = VirtualClockLoop()
        loop.advance(start)
        return loop
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(body())


async def utterance(s: Session, ledger: Ledger, word: str, *, at: float,
                    final_delay: float = 0.1) -> None:
    """One utterance at session time ``at``: VAD start, a window, a final, VAD end."""
    await s.advance_to(at)
    s.push_vad(ev.VadStartOfSpeech(speech_duration=0.2))
    await s.advance_to(at + 0.6)
    s.push_vad(ev.VadInferenceDone(raw_accumulated_speech=0.6))
    await s.advance_to(at + 0.6 + final_delay)
    ledger.final(s.push_stt, word, language="en", confidence=0.9)
    await s.advance_to(at + 0.8)
    s.push_vad(ev.VadEndOfSpeech(silence_duration=0.1))


def conserved(ledger: Ledger) -> None:
    """Nothing lost, and every drop has a reason."""
    assert not ledger.lost(), f"lost finals: {ledger.lost()}"
    assert all(ledger.dropped[w] for w in ledger.dropped)


# -- the end-of-turn model ---------------------------------------------------------------------


@pytest.mark.parametrize("method", ["supports_language", "predict_end_of_turn",
                                    "unlikely_threshold"])
@pytest.mark.parametrize("fault", MODEL_FAULTS)
def test_a_model_fault_is_a_model_failure_and_the_next_turn_is_decided(method: str,
                                                                       fault: str) -> None:
    """Every model method hanging, slow, raising, cancelled, or answering NaN, inf, a number
    outside [0, 1], text, None, a bool or a huge integer: the turn ends after min_delay with
    a failed model record (D20), in bounded time; the next turn is decided normally."""
    if (method, fault) in (("supports_language", "bool"), ("unlikely_threshold", "none")):
        pytest.skip("a valid answer: True supports the language, None is no threshold")

    async def body() -> None:
        ledger = Ledger()
        hooks = FaultyHooks()
        model = FaultyModel({method: fault})
        async with Session(MODEL, hooks=hooks, model=model, model_timeout=1.0,
                           telemetry=False, observers=[ledger]) as s:
            await utterance(s, ledger, "first", at=1.0)
            await s.advance_to(3.5)  # 1.8 + model_timeout 1.0 + min_delay 0.5 < 3.5
            first = hooks.end_of_turns[0]
            assert first.decision is not None and first.decision.model is not None
            assert first.decision.model.failed and first.decision.delay == 0.5
            assert first.t <= 1.8 + 1.0 + 0.5 + 1e-6
            await utterance(s, ledger, "second", at=5.0)
            await s.advance_to(10.0)
        assert [o.new_transcript for o in hooks.end_of_turns] == ["first", "second"]
        assert not hooks.end_of_turns[1].decision.model.failed
        conserved(ledger)
    virtual(body)


def test_engine_refuses_a_probability_outside_zero_one() -> None:
    """EouModelAnswered with a probability or threshold outside [0, 1] is bad input, refused
    before anything changes (the Session turns such an answer into a failure first)."""
    for field in ("probability", "threshold"):
        e = Engine(MODEL)
        with pytest.raises(InputError, match=f"EouModelAnswered.{field} must be between 0"):
            e.handle(ev.EouModelAnswered(t=1.0, request_id=1, **{field: 1.5}))
        assert e.failed is None


def test_close_with_a_slow_model_never_loses_the_last_utterance() -> None:
    """model_timeout 1 s, a model that takes 30 s: close right after the final delivers the
    utterance (the model's failure is given at its timeout, the wait delivers at once)."""
    async def body() -> None:
        ledger, hooks = Ledger(), FaultyHooks()
        s = Session(MODEL, hooks=hooks, model=FaultyModel({"predict_end_of_turn": "slow"}),
                    model_timeout=1.0, telemetry=False, observers=[ledger])
        s.push_vad(ev.VadStartOfSpeech(speech_duration=0.2))
        await asyncio.sleep(0.5)
        s.push_vad(ev.VadEndOfSpeech())
        ledger.final(s.push_stt, "last")
        t0 = s.loop.time()
        await s.aclose()
        assert s.loop.time() - t0 <= s.model_timeout + s.hook_timeout
        assert ledger.delivered == {"last"}
        conserved(ledger)
    virtual(body)


# -- the end-of-turn hook ----------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["keep", "take"])
@pytest.mark.parametrize("fault", HOOK_FAULTS)
def test_an_end_of_turn_hook_fault_never_wedges_the_session(fault: str, policy: str) -> None:
    """on_end_of_turn hanging (even ignoring its cancellation), slow, raising (sync or
    async), cancelled, or answering something whose truth cannot be read: the turn is kept
    (or, for a timeout with on_hook_timeout='take', taken), the inputs that queued behind it
    run, and the next turn is decided and delivered with whatever was kept."""
    async def body() -> None:
        ledger = Ledger()
        hooks = FaultyHooks(fault)
        async with Session(hooks=hooks, hook_timeout=2.0, on_hook_timeout=policy,
                           telemetry=False, observers=[ledger]) as s:
            await utterance(s, ledger, "first", at=1.0)
            await s.advance_to(2.5)
            assert len(hooks.end_of_turns) == 1
            # inputs pushed while the answer is awaited queue behind it, and run
            s.push_vad(ev.VadStartOfSpeech(speech_duration=0.2))
            ledger.final(s.push_stt, "queued")
            await s.advance_to(6.0)
            s.push_vad(ev.VadEndOfSpeech())
            await utterance(s, ledger, "second", at=8.0)
            await s.advance_to(14.0)
        timed_out = fault in ("hang", "slow", "hang-ignoring-cancel")
        took_first = timed_out and policy == "take"
        eots = [o.new_transcript.split() for o in hooks.end_of_turns]
        assert eots[0] == ["first"] and any("second" in w for w in eots)
        assert any("first" in w for w in eots[1:]) != took_first  # a kept turn comes again
        assert ledger.delivered >= {"first", "queued", "second"}
        conserved(ledger)
    virtual(body)


@pytest.mark.parametrize("policy", ["keep", "take"])
def test_close_while_the_hook_hangs_answers_for_it_and_accounts_for_the_queue(
        policy: str) -> None:
    """Close while on_end_of_turn hangs and finals queue behind it: close waits
    hook_timeout, answers by on_hook_timeout, runs the queue; every final is delivered or
    dropped with the reason 'closed'; close takes bounded time."""
    async def body() -> None:
        ledger = Ledger()
        hooks = FaultyHooks("hang", times=100)
        s = Session(hooks=hooks, hook_timeout=2.0, on_hook_timeout=policy, telemetry=False,
                    observers=[ledger])
        await utterance(s, ledger, "first", at=1.0)
        await s.advance_to(2.5)
        s.push_vad(ev.VadStartOfSpeech())
        ledger.final(s.push_stt, "queued")
        s.push_vad(ev.VadEndOfSpeech())
        t0 = s.loop.time()
        await s.aclose()
        assert s.loop.time() - t0 <= s.model_timeout + 3 * s.hook_timeout
        conserved(ledger)
        if policy == "take":
            assert "first" in ledger.delivered
        else:
            assert ledger.dropped.get("first") == "closed"
        assert "queued" in ledger.delivered or ledger.dropped.get("queued") == "closed"
    virtual(body)


def test_other_hooks_that_raise_or_hang_are_isolated(caplog: Any) -> None:
    """Every other hook raising, and a detector whose signal hangs: logged, bounded, the
    turns go on."""
    class HangingDetector:
        async def signal(self, o: Any) -> None:
            await asyncio.Event().wait()

    async def body() -> None:
        ledger = Ledger()
        hooks = FaultyHooks(all_hooks=True)
        opts = EngineOptions(interruption_detection=True)
        async with Session(opts, hooks=hooks, detector=HangingDetector(), hook_timeout=1.0,
                           telemetry=False, observers=[ledger]) as s:
            s.agent_speech_started()
            await s.advance_to(0.5)
            s.agent_speech_ended()
            await utterance(s, ledger, "one", at=1.0)
            await utterance(s, ledger, "two", at=4.0)
            await s.advance_to(8.0)
        assert [o.new_transcript for o in hooks.end_of_turns] == ["one", "two"]
        conserved(ledger)
    with caplog.at_level(logging.WARNING, logger="turnfsm.runtime"):
        virtual(body)
    assert any("did not finish within" in r.message for r in caplog.records)


# -- observers and telemetry -------------------------------------------------------------------


@pytest.mark.parametrize("kinds", [("input",), ("timer",), ("answer",),
                                   ("input", "timer", "answer")],
                         ids=["input", "timer", "answer", "every"])
@pytest.mark.parametrize("how", ["session", "engine"])
def test_an_observer_that_raises_loses_no_output(kinds: tuple[str, ...], how: str) -> None:
    """An observer raising on input, timer or answer steps (given to the Session, or added
    to its engine behind its back): every output is still delivered, no exception escapes
    push() or aclose(), and turns go on."""
    async def body() -> None:
        ledger, hooks = Ledger(), FaultyHooks()
        bad = RaisingObserver(kinds)
        s = Session(hooks=hooks, telemetry=False, observers=[ledger] + (
            [bad] if how == "session" else []))
        if how == "engine":
            s.engine.add_observer(bad)
        await utterance(s, ledger, "one", at=1.0)
        await utterance(s, ledger, "two", at=4.0)
        await s.advance_to(7.0)
        await utterance(s, ledger, "three", at=8.0)
        await s.aclose()
        assert bad.calls > 0
        assert [o.new_transcript for o in hooks.end_of_turns] == ["one", "two", "three"]
        assert ledger.delivered == {"one", "two", "three"}
        conserved(ledger)
    virtual(body)


@pytest.mark.parametrize("where", ["get_tracer", "start_span", "end", "set_attribute", "span"])
def test_a_broken_tracer_provider_never_stops_a_conversation(where: str) -> None:
    """The default telemetry observer on a tracer provider that fails (getting a tracer,
    starting a span, ending one, setting an attribute, any span method): every turn is
    delivered, close completes."""
    async def body() -> None:
        ledger, hooks = Ledger(), FaultyHooks()
        s = Session(hooks=hooks, tracer_provider=BrokenTracerProvider(where),
                    observers=[ledger])
        await utterance(s, ledger, "one", at=1.0)
        await utterance(s, ledger, "two", at=4.0)
        await s.advance_to(4.9)
        await s.aclose()
        assert ledger.delivered == {"one", "two"}
        conserved(ledger)
    virtual(body)


# -- close at every stage ----------------------------------------------------------------------


async def _stage(s: Session, ledger: Ledger, stage: str) -> None:
    if stage == "idle":
        return
    s.push_vad(ev.VadStartOfSpeech(speech_duration=0.2))
    await s.advance_to(s.engine.now + 0.5)
    if stage == "speaking":
        return
    ledger.final(s.push_stt, "final")
    if stage == "final-before-end":
        return
    if stage == "commit-waiting":
        s.commit_user_turn(transcript_timeout=5.0)
        ledger.final(s.push_stt, "after-commit")
        return
    if stage == "held":
        s.agent_speech_started()
        ledger.final(s.push_stt, "held")
        return
    s.push_vad(ev.VadEndOfSpeech())
    if stage == "waiting":
        await s.advance_to(s.engine.now + 0.1)
        return
    await s.advance_to(s.engine.now + 0.6)  # predicting, or awaiting the hook's answer


STAGES = {"idle": (None, None), "speaking": (None, None), "final-before-end": (None, None),
          "waiting": (None, None), "commit-waiting": (None, None), "held": (None, None),
          "predicting-slow": ("slow", None), "predicting-hang": ("hang", None),
          "predicting-cancel-ignored": ("hang", None),
          "awaiting-hook": (None, "hang"), "awaiting-hook-ignoring-cancel":
              (None, "hang-ignoring-cancel")}


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_close_at_every_stage_settles_everything(stage: str) -> None:
    """aclose at every stage of a pending decision (speech, a final before the end, a
    running wait, a commit waiting for its final, held transcripts, a slow or hung model, a
    hook that hangs): close completes within its bound, every final is delivered or dropped
    with a reason, no task is left."""
    model_fault, hook_fault = STAGES[stage]

    async def body() -> None:
        ledger = Ledger()
        hooks = FaultyHooks(hook_fault, times=100)
        opts = EngineOptions(turn_detection="model" if model_fault else None,
                             interruption_detection=stage == "held",
                             endpointing=EndpointingOptions(min_delay=2.0))
        model = FaultyModel({"predict_end_of_turn": model_fault} if model_fault else {},
                            times=100)
        s = Session(opts, hooks=hooks, model=model, model_timeout=1.0, hook_timeout=1.0,
                    telemetry=False, observers=[ledger])
        await s.advance_to(1.0)
        await _stage(s, ledger, stage)
        t0 = s.loop.time()
        await s.aclose()
        assert s.loop.time() - t0 <= s.model_timeout + 3 * s.hook_timeout + 1e-6
        assert s.closed
        conserved(ledger)
    virtual(body)


# -- time, bounds, failures --------------------------------------------------------------------


@pytest.mark.parametrize("start", [2.0**24, 1.7e9, 5e9], ids=["2^24", "epoch", "5e9"])
def test_sessions_run_at_huge_clock_values(start: float) -> None:
    """A virtual clock at 2^24 s or more (194 days; Unix-epoch times): turns end on time and
    the loop does not spin."""
    async def body() -> None:
        ledger, hooks = Ledger(), FaultyHooks()
        async with Session(hooks=hooks, telemetry=False, observers=[ledger]) as s:
            await utterance(s, ledger, "one", at=1.0)
            await s.advance_to(3.0)
        assert [o.new_transcript for o in hooks.end_of_turns] == ["one"]
        conserved(ledger)
    virtual(body, start=start)


def test_replay_through_a_session_at_epoch_times_equals_the_direct_replay(tmp_path: Any
                                                                         ) -> None:
    """`replay --runtime asyncio` of a trace at Unix-epoch times finishes and equals the
    direct replay."""
    import json
    from pathlib import Path

    from turnfsm.replay import dumps, read_trace, replay_trace
    from turnfsm.runtime.replay import replay_runtime
    src = Path(__file__).parent / "conformance" / "extra" / "traces" / \
        "x01_vad_two_turns_anchors_reset.jsonl"
    lines = []
    for line in src.read_text().splitlines():
        d = json.loads(line)
        for k in ("t", "start_time", "end_time"):
            if k in d:
                d[k] += 1.7e9
        lines.append(json.dumps(d))
    p = tmp_path / "epoch.jsonl"
    p.write_text("\n".join(lines) + "\n")
    trace = read_trace(p)
    assert dumps(replay_runtime(trace)) == dumps(replay_trace(trace))


@pytest.mark.parametrize("change", [{"transcript_timeout": 1e308},
                                    {"endpointing": {"max_delay": 1e308}},
                                    {"endpointing": {"min_delay": 1e9}},
                                    {"user_turn_limit": {"max_duration": 1e308}},
                                    {"backchannel_boundary": [1.0, 1e308]},
                                    {"backchannel_max_words": 10**30}],
                         ids=["transcript_timeout", "max_delay", "min_delay", "max_duration",
                              "boundary", "max_words"])
def test_huge_option_values_are_refused(change: dict[str, Any]) -> None:
    """A finite but huge duration or count is a ConfigError naming the option, never a
    deadline of inf or an overflow later."""
    name = next(iter(change))
    with pytest.raises(ConfigError, match=name):
        Engine(change)


@pytest.mark.parametrize("field", ["transcript_timeout", "stt_flush_duration"])
def test_huge_commit_durations_are_refused_and_the_engine_keeps_working(field: str) -> None:
    """CommitUserTurn with 1e308 s is refused (InputError) and changes nothing."""
    e = Engine(EngineOptions(turn_detection="manual"))
    with pytest.raises(InputError, match=field):
        e.handle(ev.CommitUserTurn(t=1.0, **{field: 1e308}))
    assert e.failed is None
    e.handle(ev.CommitUserTurn(t=1.0))


@pytest.mark.parametrize("kw, message", [
    ({"t": "1"}, "VadInferenceDone.t must be a finite number"),
    ({"t": 1.0, "raw_accumulated_speech": -float("inf")}, "raw_accumulated_speech"),
    ({"t": 1.0, "raw_accumulated_speech": float("nan")}, "raw_accumulated_speech"),
    ({"t": 1.0, "probability": float("nan")}, "probability"),
    ({"t": 1.0, "raw_accumulated_silence": float("inf")}, "raw_accumulated_silence"),
    ({"t": 1.0, "speech_duration": "x"}, "speech_duration"),
    ({"t": 1e300}, "t must be a finite number of seconds up to"),
    ({"t": 1.0, "raw_accumulated_speech": 10**400}, "raw_accumulated_speech"),
], ids=["t-text", "speech-neg-inf", "speech-nan", "prob-nan", "silence-inf", "text",
        "t-huge", "big-int"])
def test_the_vad_window_fast_path_refuses_what_handle_refuses(kw: dict[str, Any],
                                                              message: str) -> None:
    """The VAD window fast path (handle and vad_window) refuses a non-number time and NaN or
    infinite fields with InputError, never TypeError, and changes nothing."""
    e = Engine()
    with pytest.raises(InputError, match=message):
        e.handle(ev.VadInferenceDone(**kw))
    if set(kw) <= {"t", "raw_accumulated_speech"}:
        with pytest.raises(InputError, match=message):
            e.vad_window(kw["t"], kw.get("raw_accumulated_speech", 0.0))
    assert e.failed is None and e.input_clock == -float("inf")


def test_engine_failed_names_the_queued_input_that_failed() -> None:
    """An input queued behind an end of turn that fails the engine when the answer
    releases it is the one EngineFailed names (and its message says the answer released
    it)."""
    from turnfsm.core.endpointing import Endpointing

    class Broken(Endpointing):
        def on_user_start(self, t: float) -> None:
            raise RuntimeError("endpointing bug")
    e = Engine(EngineOptions(turn_detection="manual"))
    e.handle(ev.VadStartOfSpeech(t=1.0))
    e.handle(ev.SttFinal(t=1.1, text="hi"))
    e.handle(ev.VadEndOfSpeech(t=1.2))
    outs = e.handle(ev.CommitUserTurn(t=1.3, transcript_timeout=0.0))
    outs += e.advance(5.0)
    assert e.awaiting_answer, outs
    e.handle(ev.VadStartOfSpeech(t=5.0))  # queued
    e.cx.endpointing = Broken(e.options.endpointing)
    with pytest.raises(EngineFailed) as err:
        e.handle(ev.EndOfTurnAnswered(t=5.1, accepted=True))
    assert isinstance(err.value.input, ev.VadStartOfSpeech)
    assert "VadStartOfSpeech at t=5.0" in str(err.value) and "EndOfTurnAnswered" in str(err.value)


def test_session_option_bounds() -> None:
    """model_timeout and hook_timeout must be positive and at most a day; on_hook_timeout
    is 'keep' or 'take'."""
    async def body() -> None:
        for kw in ({"model_timeout": 1e308}, {"model_timeout": 0}, {"hook_timeout": -1},
                   {"hook_timeout": float("nan")}, {"on_hook_timeout": "drop"}):
            with pytest.raises(ConfigError, match=next(iter(kw))):
                Session(telemetry=False, **kw)
    run_virtual(body())
    assert out.EndOfTurn  # the outputs module is what the ledger reads


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 12])
def test_a_soak_with_random_faults_loses_nothing_and_leaves_no_task(seed: int) -> None:
    """benchmarks/soak.py at a smaller size (40 slots, 3 virtual minutes, a fault in 90% of
    the sessions): no final lost, no task left."""
    import argparse
    import importlib.util
    from pathlib import Path
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"
    spec = importlib.util.spec_from_file_location("soak", path)
    assert spec is not None and spec.loader is not None
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    args = argparse.Namespace(slots=40, minutes=3.0, lifetime=40.0, fault_rate=0.9, seed=seed)
    logging.disable(logging.CRITICAL)
    try:
        with asyncio.Runner(loop_factory=VirtualClockLoop) as runner:
            report = runner.run(soak.soak(args))
    finally:
        logging.disable(logging.NOTSET)
    assert report["sessions"] >= 100 and report["finals_pushed"] > 1000
    assert report["lost"] == 0, report["lost_examples"]
    assert report["tasks_left"] == 0


def test_the_virtual_loop_reaches_a_far_timer_in_one_step() -> None:
    """A timer 1e12 s ahead is reached in a step or two, not in a day's steps (asyncio
    waits at most a day at a time; listen with a huge --asr-latency looped for ever)."""
    steps = []

    class Counting(VirtualClockLoop):
        def advance(self, seconds: float, *, to_next: bool = False) -> None:
            steps.append(seconds)
            super().advance(seconds, to_next=to_next)

    async def far() -> float:
        await asyncio.sleep(1e12)
        return asyncio.get_running_loop().time()
    with asyncio.Runner(loop_factory=Counting) as runner:
        assert runner.run(far()) >= 1e12
    assert len(steps) <= 3
