"""The asyncio runtime: a Session in virtual time (nothing sleeps), its hooks, requests,
commits, failures and close; and `turnfsm replay --runtime asyncio`."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from turnfsm import EndpointingOptions, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.errors import EngineFailed
from turnfsm.replay import dumps, read_trace, replay_trace
from turnfsm.runtime import (
    CommitCancelled,
    RuleBasedModel,
    Session,
    SessionClosed,
    TurnContext,
    run_virtual,
)
from turnfsm.runtime.replay import replay_runtime

ROOT = Path(__file__).resolve().parents[1]
TRACES = sorted((ROOT / "tests" / "conformance").glob("*/traces/*.jsonl"))


def virtual(test: Callable[[], Awaitable[None]]) -> None:
    """Run an async test body on a virtual clock; no task may outlive it."""
    async def body() -> None:
        before = set(asyncio.all_tasks())
        await test()
        left = [t for t in asyncio.all_tasks() - before if t is not asyncio.current_task()
                and not t.done()]
        assert not left, f"tasks left pending: {left}"
    run_virtual(body())


class Recorder:
    """Hooks that keep every output (and answer end of turns as told)."""

    def __init__(self, accept: bool = True) -> None:
        self.outputs: list[out.Output] = []
        self.accept = accept
        self.errors: list[BaseException] = []

    def on_output(self, o: out.Output) -> None:
        self.outputs.append(o)

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        return self.accept

    def on_error(self, e: BaseException) -> None:
        self.errors.append(e)

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.outputs if isinstance(o, kind)]

    def assert_conserved(self) -> None:
        """Every final the engine accepted is in a delivered turn or has a drop record."""
        delivered = " ".join(o.new_transcript for o in self.of(out.EndOfTurn))
        dropped = [d.text for d in self.of(out.TranscriptDropped)]
        for f in self.of(out.Transcript):
            if f.type == "final":
                assert f.text in delivered or f.text in dropped, f"lost {f.text!r}"
        for d in self.of(out.TranscriptDropped):
            assert d.record is not None and d.record.rule, d


async def speak(s: Session, text: str, *, at: float, length: float = 0.6,
                final_delay: float = 0.1) -> None:
    """One utterance: VAD start, a window, a final, VAD end (session times)."""
    await s.advance_to(at)
    s.push_vad(ev.VadStartOfSpeech(speech_duration=0.2))
    await s.advance_to(at + length)
    s.push_vad(ev.VadInferenceDone(raw_accumulated_speech=length))
    await s.advance_to(at + length + final_delay)
    s.push_stt(ev.SttFinal(text=text, language="en", confidence=0.9))
    await s.advance_to(at + length + final_delay + 0.1)
    s.push_vad(ev.VadEndOfSpeech(silence_duration=0.1))


# -- replay through the runtime ----------------------------------------------------------------


@pytest.mark.parametrize("path", TRACES, ids=lambda p: f"{p.parent.parent.name}/{p.stem}")
def test_runtime_replay_equals_the_direct_replay(path: Path) -> None:
    """`replay --runtime asyncio` writes byte for byte what the direct replay writes."""
    trace = read_trace(path)
    assert dumps(replay_runtime(trace, diagnostics=True)) == \
        dumps(replay_trace(trace, diagnostics=True))


def test_cli_runtime_option(tmp_path: Path) -> None:
    """`turnfsm replay --runtime asyncio TRACE -o OUT` equals the direct replay's file."""
    from turnfsm.cli import main
    trace = TRACES[0]
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["replay", str(trace), "-o", str(a)]) == 0
    assert main(["replay", "--runtime", "asyncio", str(trace), "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()


# -- a conversation ------------------------------------------------------------------------


def test_a_turn_ends_at_the_engine_deadline_in_session_time() -> None:
    """Events pushed without a time are stamped with session time; the end of turn comes
    from the session's own timer at the engine's deadline, with its decision record."""
    async def body() -> None:
        rec = Recorder()
        async with Session(hooks=rec, telemetry=False) as s:
            await speak(s, "book a table for two", at=1.0)
            await s.advance_to(5.0)
            (eot,) = rec.of(out.EndOfTurn)
            assert eot.new_transcript == "book a table for two"
            assert eot.t == pytest.approx(1.6 + 0.5)  # the last speech + min_delay
            assert eot.decision is not None and eot.decision.trigger == "vad_end_of_speech"
            assert rec.of(out.StartOfSpeech)[0].t == pytest.approx(1.0)
    virtual(body)


def test_the_session_timer_is_one_handle_rearmed_only_on_change() -> None:
    """One loop.call_at per new deadline; inputs that leave the deadline alone re-arm none."""
    async def body() -> None:
        loop = asyncio.get_running_loop()
        calls: list[float] = []
        real = loop.call_at

        def spy(when: float, cb: Any, *args: Any, **kw: Any) -> Any:
            if getattr(cb, "__name__", "") == "_on_timer":
                calls.append(when)
            return real(when, cb, *args, **kw)
        loop.call_at = spy  # type: ignore[method-assign]
        try:
            s = Session(telemetry=False)
            s.push_vad(ev.VadStartOfSpeech())
            s.push_stt(ev.SttFinal(text="hello"))
            s.push_vad(ev.VadEndOfSpeech())
            assert len(calls) == 1
            for _ in range(5):
                s.push_stt(ev.SttUsage(request_id="r"))  # no deadline change
            assert len(calls) == 1
            await asyncio.sleep(1.0)
            assert len(calls) == 1 and s.engine.next_deadline() is None
            await s.aclose()
        finally:
            loop.call_at = real  # type: ignore[method-assign]
    virtual(body)


def test_a_late_vad_window_lets_the_due_end_of_turn_go_first() -> None:
    """A window pushed at or after the armed deadline (the loop was late to run the timer)
    fires the end of turn first; windows before the deadline neither fire nor re-arm it."""
    async def body() -> None:
        rec = Recorder()
        s = Session(hooks=rec, telemetry=False)
        s.push_vad(ev.VadStartOfSpeech(t=1.0))
        s.push_vad(ev.VadInferenceDone(t=1.2, raw_accumulated_speech=0.2))
        s.push_stt(ev.SttFinal(t=1.3, text="hello"))
        s.push_vad(ev.VadEndOfSpeech(t=1.4))
        deadline = s.engine.next_deadline()
        assert deadline == pytest.approx(1.7)
        s.push_vad(ev.VadInferenceDone(t=1.5, raw_accumulated_speech=0.0))
        assert not rec.of(out.EndOfTurn) and s.engine.next_deadline() == deadline
        s.push_vad(ev.VadInferenceDone(t=1.8, raw_accumulated_speech=0.0))
        (eot,) = rec.of(out.EndOfTurn)
        assert eot.t == pytest.approx(1.7)
        assert s.engine.input_clock == pytest.approx(1.8)
        await s.aclose()
    virtual(body)


def test_outputs_iterator_sees_every_output_in_order() -> None:
    """`async for o in session.outputs()` yields the outputs in order until close."""
    async def body() -> None:
        rec = Recorder()
        s = Session(hooks=rec, telemetry=False)
        seen: list[out.Output] = []

        async def consume() -> None:
            async for o in s.outputs():
                seen.append(o)
        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await speak(s, "hello there", at=0.5)
        await s.advance_to(3.0)
        await s.aclose()
        await task
        assert seen == rec.outputs and any(isinstance(o, out.EndOfTurn) for o in seen)
    virtual(body)


def test_run_consumes_async_sources() -> None:
    """`session.run(vad=..., stt=...)` pushes each source's events as they arrive."""
    async def body() -> None:
        rec = Recorder()
        s = Session(hooks=rec, telemetry=False)

        async def vad() -> AsyncIterator[ev.Input]:
            await asyncio.sleep(1.0)
            yield ev.VadStartOfSpeech()
            await asyncio.sleep(0.6)
            yield ev.VadInferenceDone(raw_accumulated_speech=0.6)
            await asyncio.sleep(0.3)
            yield ev.VadEndOfSpeech()

        async def stt() -> AsyncIterator[ev.Input]:
            await asyncio.sleep(1.7)
            yield ev.SttFinal(text="what time is it?")
        await s.run(vad=vad(), stt=stt())
        await asyncio.sleep(2.0)
        await s.aclose()
        assert [e.new_transcript for e in rec.of(out.EndOfTurn)] == ["what time is it?"]
    virtual(body)


def test_a_failing_source_detaches_its_component() -> None:
    """A VAD source that raises is logged and the VAD detached; the session goes on."""
    async def body() -> None:
        s = Session(telemetry=False)

        async def vad() -> AsyncIterator[ev.Input]:
            yield ev.VadStartOfSpeech()
            raise OSError("microphone unplugged")
        await s.run(vad=vad())
        assert s.engine.in_state("vad_input", "detached")
        await s.aclose()
    virtual(body)


# -- the end-of-turn model -----------------------------------------------------------------


def test_rule_based_model_waits_long_on_an_unfinished_utterance() -> None:
    """With the built-in model, 'a table for' waits max_delay; 'for two.' min_delay."""
    async def body() -> None:
        rec = Recorder()
        opts = EngineOptions(turn_detection="model",
                             endpointing=EndpointingOptions(min_delay=0.5, max_delay=2.0))
        async with Session(opts, hooks=rec, telemetry=False) as s:
            await speak(s, "I want to book a table for", at=1.0)
            await s.advance_to(10.0)
            await speak(s, "Four people.", at=11.0)
            await s.advance_to(20.0)
        first, second = rec.of(out.EndOfTurn)
        assert first.decision.delay == 2.0 and first.decision.delay_reason == "max_delay"
        assert first.decision.model.probability == RuleBasedModel().unfinished
        assert second.decision.delay == 0.5 and second.decision.delay_reason == "min_delay"
    virtual(body)


class SlowModel:
    """A model that answers after ``latency`` seconds (or raises)."""

    def __init__(self, latency: float, *, error: Exception | None = None) -> None:
        self.latency = latency
        self.error = error
        self.calls = 0

    async def supports_language(self, language: str | None) -> bool:
        return True

    async def unlikely_threshold(self, language: str | None) -> float | None:
        return 0.5

    async def predict_end_of_turn(self, context: TurnContext, *,
                                  timeout: float | None = None) -> float:
        self.calls += 1
        await asyncio.sleep(self.latency)
        if self.error is not None:
            raise self.error
        return 0.1  # unlikely over: max_delay


@pytest.mark.parametrize("model", [SlowModel(5.0), SlowModel(0.1, error=ValueError("boom"))],
                         ids=["times-out", "raises"])
def test_a_model_that_times_out_or_raises_means_min_delay(model: SlowModel,
                                                          caplog: Any) -> None:
    """Model timeout or exception: a failed answer, the turn ends after min_delay (D20)."""
    async def body() -> None:
        rec = Recorder()
        opts = EngineOptions(turn_detection="model",
                             endpointing=EndpointingOptions(min_delay=0.5, max_delay=3.0))
        async with Session(opts, hooks=rec, model=model, model_timeout=1.0,
                           telemetry=False) as s:
            await speak(s, "hello there", at=1.0)
            await s.advance_to(10.0)
        (eot,) = rec.of(out.EndOfTurn)
        assert eot.decision.model is not None and eot.decision.model.failed
        assert eot.decision.delay == 0.5
    with caplog.at_level(logging.WARNING, logger="turnfsm.runtime"):
        virtual(body)
    assert any("end-of-turn model" in r.message for r in caplog.records)


def test_a_model_answer_after_the_turn_was_cancelled_is_ignored() -> None:
    """The user speaks again while the model thinks: its late answer changes nothing."""
    async def body() -> None:
        rec = Recorder()
        model = SlowModel(0.5)
        opts = EngineOptions(turn_detection="model")
        async with Session(opts, hooks=rec, model=model, telemetry=False) as s:
            await speak(s, "hello", at=1.0)
            await s.advance_to(1.85)
            s.push_vad(ev.VadStartOfSpeech())  # cancels the prediction's wait
            await s.advance_to(3.0)
            assert not rec.of(out.EndOfTurn) and model.calls == 1
            s.push_vad(ev.VadEndOfSpeech())
            await s.advance_to(8.0)
        assert len(rec.of(out.EndOfTurn)) == 1
    virtual(body)


# -- commits -------------------------------------------------------------------------------


def test_commit_resolves_with_the_delivered_transcript() -> None:
    """`await session.commit_user_turn()` gives the transcript its decision delivered."""
    async def body() -> None:
        s = Session(EngineOptions(turn_detection="manual"), telemetry=False)
        s.push_vad(ev.VadStartOfSpeech())
        await asyncio.sleep(0.5)
        s.push_stt(ev.SttFinal(text="turn the lights off"))
        fut = s.commit_user_turn()
        assert await fut == "turn the lights off"
        await s.aclose()
    virtual(body)


def test_commit_cancelled_by_a_clear_raises() -> None:
    """A commit whose decision a clear drops raises CommitCancelled to its awaiter."""
    async def body() -> None:
        s = Session(EngineOptions(endpointing=EndpointingOptions(min_delay=2.0)),
                    telemetry=False)
        s.push_vad(ev.VadStartOfSpeech())
        await asyncio.sleep(0.5)
        s.push_vad(ev.VadInferenceDone(raw_accumulated_speech=0.5))
        s.push_stt(ev.SttFinal(text="never mind"))
        fut = s.commit_user_turn()
        await asyncio.sleep(0.1)
        s.clear_user_turn()
        with pytest.raises(CommitCancelled):
            await fut
        await s.aclose()
    virtual(body)


def test_commit_waiting_for_a_late_final_takes_it_or_times_out() -> None:
    """A commit waits up to transcript_timeout: a final inside it is delivered; a final
    arriving after it joins the next turn, never lost."""
    async def body() -> None:
        rec = Recorder()
        s = Session(EngineOptions(turn_detection="manual"), hooks=rec, telemetry=False)
        s.push_vad(ev.VadStartOfSpeech())
        s.push_stt(ev.SttInterim(text="call"))
        fut = s.commit_user_turn(transcript_timeout=0.5)
        await asyncio.sleep(1.0)  # no final within the timeout: the interim is promoted
        assert await fut == "call"
        s.push_stt(ev.SttFinal(text="call mom"))  # the late final, duplicate-checked
        await asyncio.sleep(0.1)
        await s.aclose()
        drops = rec.of(out.TranscriptDropped)
        assert [d.text for d in drops] == ["call mom"] and drops[0].reason == "closed"
        rec.assert_conserved()
    virtual(body)


# -- failures -------------------------------------------------------------------------------


class Raising(Recorder):
    """Hooks that raise on every call (and on end of turn)."""

    def on_output(self, o: out.Output) -> None:
        super().on_output(o)
        raise RuntimeError("host bug")

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        raise RuntimeError("host bug in on_end_of_turn")


def test_a_hook_raising_on_every_call_is_logged_and_isolated(caplog: Any) -> None:
    """Hooks that always raise: logged with the session id; the turn is refused (kept, not
    lost) and delivered again on the next decision."""
    async def body() -> None:
        rec = Raising()
        async with Session(hooks=rec, session_id="s-42", telemetry=False) as s:
            await speak(s, "first", at=1.0)
            await s.advance_to(4.0)
            await speak(s, "second", at=5.0)
            await s.advance_to(8.0)
        eots = rec.of(out.EndOfTurn)
        assert [e.new_transcript for e in eots] == ["first", "first second"]
        rec.assert_conserved()
    with caplog.at_level(logging.ERROR, logger="turnfsm.runtime"):
        virtual(body)
    assert any("s-42" in r.message and "host bug" in (r.exc_text or "") for r in caplog.records)


def test_async_hooks_are_awaited_and_an_async_refusal_keeps_the_turn() -> None:
    """An async on_end_of_turn answers when it completes; until then inputs wait in order."""
    async def body() -> None:
        answers = [False, True]
        seen: list[str] = []

        class Hooks:
            async def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
                await asyncio.sleep(0.2)
                seen.append(o.new_transcript)
                return answers.pop(0)
        async with Session(hooks=Hooks(), telemetry=False) as s:
            await speak(s, "one", at=1.0)
            await s.advance_to(4.0)
            await speak(s, "two", at=5.0)
            await s.advance_to(9.0)
        assert seen == ["one", "one two"]
    virtual(body)


def test_an_engine_failure_closes_the_session_and_is_reported() -> None:
    """EngineFailed: on_error hears it, the call raises it, later calls raise SessionClosed,
    pending commits are cancelled, no task is left."""
    async def body() -> None:
        from turnfsm.core.endpointing import Endpointing

        class Broken(Endpointing):
            def on_user_end(self, t: float, ignore: bool) -> None:
                raise RuntimeError("endpointing bug")
        rec = Recorder()
        s = Session(EngineOptions(turn_detection="manual"), hooks=rec, telemetry=False)
        s.push_vad(ev.VadStartOfSpeech())
        fut = s.commit_user_turn()
        s.engine.cx.endpointing = Broken(s.options.endpointing)
        with pytest.raises(EngineFailed):
            s.push_vad(ev.VadEndOfSpeech())
        assert s.closed and len(rec.errors) == 1
        with pytest.raises(SessionClosed):
            s.push_vad(ev.VadStartOfSpeech())
        with pytest.raises(CommitCancelled):
            await fut
        await s.aclose()
    virtual(body)


def test_close_settles_everything_and_calls_no_hook_after() -> None:
    """aclose with a running wait, a pending commit and held transcripts: the wait delivers
    at once (R4), the commit resolves, held speech is dropped with a record, and no hook
    runs once close completed (I20)."""
    async def body() -> None:
        rec = Recorder()
        opts = EngineOptions(interruption_detection=True,
                             endpointing=EndpointingOptions(min_delay=3.0))
        s = Session(opts, hooks=rec, telemetry=False)
        await speak(s, "first part", at=1.0)
        fut = s.commit_user_turn()
        await asyncio.sleep(0.2)
        s.agent_speech_started()
        s.push_stt(ev.SttFinal(text="uh huh"))  # held while the agent speaks
        n = len(rec.outputs)
        await s.aclose()
        assert await fut == "first part"  # the running wait delivered at once (R4)
        closing = rec.outputs[n:]
        assert [e.new_transcript for e in closing if isinstance(e, out.EndOfTurn)] == \
            ["first part"]
        assert [(d.text, d.reason) for d in rec.of(out.TranscriptDropped)] == \
            [("uh huh", "closed")]
        rec.assert_conserved()
        count = len(rec.outputs)
        with pytest.raises(SessionClosed):
            s.push_stt(ev.SttFinal(text="after close"))
        assert len(rec.outputs) == count
    virtual(body)


def test_stt_faults_lose_nothing_silently() -> None:
    """A duplicated final is delivered as said twice; a dropped final simply never comes; a
    final after close is refused to its pusher (SessionClosed), not lost in silence."""
    async def body() -> None:
        rec = Recorder()
        async with Session(hooks=rec, telemetry=False) as s:
            s.push_vad(ev.VadStartOfSpeech())
            await asyncio.sleep(0.5)
            s.push_stt(ev.SttFinal(text="yes"))
            s.push_stt(ev.SttFinal(text="yes"))  # the provider repeats itself
            s.push_vad(ev.VadEndOfSpeech())
            await asyncio.sleep(2.0)
        assert [e.new_transcript for e in rec.of(out.EndOfTurn)] == ["yes yes"]
        rec.assert_conserved()
        with pytest.raises(SessionClosed):
            s.push_stt(ev.SttFinal(text="late"))
    virtual(body)


def test_a_failing_detector_source_reports_detector_failed() -> None:
    """An overlap source that raises becomes DetectorFailed: verdicts are dropped after."""
    async def body() -> None:
        s = Session(EngineOptions(interruption_detection=True), telemetry=False)

        async def overlap() -> AsyncIterator[ev.Input]:
            if False:
                yield ev.OverlapVerdict(is_interruption=True)
            raise ConnectionError("detector stream lost")
        await s.run(overlap=overlap())
        assert s.engine.in_state("detector", "failed")
        await s.aclose()
    virtual(body)


@pytest.mark.parametrize("e", [
    ev.VadInferenceDone(raw_accumulated_speech=0.4, probability=0.9, speaking=True, ref=7),
    ev.SttFinal(text="book a table", confidence=0.8, language="en"),
    ev.CommitUserTurn(transcript_timeout=1.5, skip_reply=True),
    ev.AgentSpeechEnded(ignore_user_transcript_until=3.0),
    ev.UpdateOptions(set_turn_detection=True, turn_detection="stt"),
])
def test_stamping_copies_the_event_with_its_time(e: ev.Input) -> None:
    """A Session stamps an event by copying it with the time: equal to attrs.evolve, the
    caller's event untouched (it may push the same object again)."""
    import attrs

    stamped = ev.with_time(e, 2.5)
    assert stamped == attrs.evolve(e, t=2.5)
    assert type(stamped) is type(e) and stamped is not e
    assert not ev.stamped(e.t)
