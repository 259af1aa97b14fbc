"""A Pipecat voice agent whose user turns turnfsm decides, offline: scripted user frames (what
a transport, its VAD and an STT would send) and stand-ins for the LLM and the TTS/output.

    python examples/pipecat_app.py            # in real time (about 20 s)
    python examples/pipecat_app.py --virtual  # on a virtual clock, at once

Needs the pipecat extra (``pip install -e '.[pipecat]'``). What it shows:

* a hesitation ("I want to book a table for" ... "four people tonight.") is one turn: the
  built-in rule-based end-of-turn model waits ``max_delay`` after an unfinished utterance;
* a backchannel over the bot ("uh huh") neither interrupts nor is answered, and a longer
  overlap does interrupt: an interruption detector (here a stand-in that calls an overlap an
  interruption once it lasts 0.8 s) judges each overlap;
* every turn comes with turnfsm's decision record (``o.decision.why()``).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from loguru import logger
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    UserSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from turnfsm import EndpointingOptions, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.adapters.pipecat import TurnfsmUserTurnStrategies
from turnfsm.runtime import run_virtual

# the user: (start, seconds of speech, words), in seconds from the start
USER = [
    (0.5, 1.2, "I want to book a table for"),
    (2.9, 0.9, "four people tonight."),        # 1.2 s later: the same turn
    (6.4, 0.4, "uh huh"),                      # over the bot: a backchannel
    (10.5, 0.8, "Around seven."),
    (13.0, 1.6, "wait, actually make it five people"),  # over the bot: an interruption
]
REPLIES = {"four": "Sure, a table for four tonight. What time would you like?",
           "seven": "Seven it is. Anything else I can do for you?",
           "five": "No problem, five people at seven."}


def log(t: float, what: str) -> None:
    print(f"{t:6.2f} s  {what}")


class Clock:
    """Seconds since the conversation started."""

    def __init__(self) -> None:
        self.t0 = asyncio.get_running_loop().time()

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.t0


def user_frames(start: float, length: float, text: str) -> list[tuple[float, Frame]]:
    """What the transport's VAD and the STT send for one utterance."""
    frames: list[tuple[float, Frame]] = [(start, VADUserStartedSpeakingFrame(start_secs=0.2))]
    frames += [(start + 0.2 * i, UserSpeakingFrame()) for i in range(round(length / 0.2) + 1)]
    words = text.split()
    frames.append((start + length / 2, InterimTranscriptionFrame(
        text=" ".join(words[: max(1, len(words) // 2)]), user_id="user", timestamp="")))
    frames.append((start + length + 0.1, TranscriptionFrame(text=text, user_id="user",
                                                            timestamp="")))
    frames.append((start + length + 0.2, VADUserStoppedSpeakingFrame(stop_secs=0.2)))
    return frames


class FakeLLM(FrameProcessor):
    """Answers each context after 0.5 s with a canned reply; an interruption cancels it."""

    def __init__(self) -> None:
        super().__init__()
        self._task: asyncio.Task[None] | None = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            said = str(frame.context.messages[-1].get("content", ""))  # type: ignore[union-attr]
            reply = next((r for k, r in REPLIES.items() if k in said), "I see.")
            self._task = self.create_task(self._answer(reply))
            return
        if isinstance(frame, InterruptionFrame) and self._task is not None:
            await self.cancel_task(self._task)
            self._task = None
        await self.push_frame(frame, direction)

    async def _answer(self, reply: str) -> None:
        await asyncio.sleep(0.5)
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(text=reply))
        await self.push_frame(LLMFullResponseEndFrame())


class FakeVoice(FrameProcessor):
    """TTS and output transport: speaks each reply (0.3 s a word, after 0.2 s), telling the
    pipeline with Bot{Started,Stopped}SpeakingFrame; an interruption stops it at once."""

    def __init__(self, clock: list[Clock]) -> None:
        super().__init__()
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            self._task = self.create_task(self._speak(frame.text))
        elif isinstance(frame, InterruptionFrame):
            if self._task is not None:
                await self.cancel_task(self._task)
                self._task = None
            if self._speaking:
                await self._stopped("interrupted")
        await self.push_frame(frame, direction)

    async def _speak(self, text: str) -> None:
        await asyncio.sleep(0.2)
        self._speaking = True
        log(self._clock[0].now(), f"bot: {text!r}")
        await self.broadcast_frame(BotStartedSpeakingFrame)
        await asyncio.sleep(0.3 * len(text.split()))
        await self._stopped("done")

    async def _stopped(self, how: str) -> None:
        self._speaking = False
        log(self._clock[0].now(), f"bot stops speaking ({how})")
        await self.broadcast_frame(BotStoppedSpeakingFrame)


class DurationDetector:
    """A stand-in for an audio interruption detector: an overlap that lasts ``threshold``
    seconds is an interruption (said then); one that ends sooner is a backchannel."""

    def __init__(self, threshold: float = 0.8) -> None:
        self.threshold = threshold
        self.strategies: TurnfsmUserTurnStrategies | None = None
        self._open = 0  # the overlap being judged (a counter: stale verdicts are dropped)

    async def signal(self, o: out.DetectorSignal) -> None:
        assert self.strategies is not None and self.strategies.session is not None
        session = self.strategies.session
        if o.signal == "overlap_speech_started":
            self._open += 1
            mine = self._open
            await session.sleep(self.threshold)
            if self._open == mine:
                self._open += 1
                session.push_overlap(ev.OverlapVerdict(
                    is_interruption=True, overlap_started_at=o.started_at, probability=0.9))
        elif o.signal == "overlap_speech_ended" and self._open % 2:
            self._open += 1
            session.push_overlap(ev.OverlapVerdict(is_interruption=False, probability=0.1))


class Hooks:
    """What the app hears from turnfsm: every decision, with why."""

    def __init__(self, clock: list[Clock]) -> None:
        self.clock = clock
        self.turns: list[str] = []

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        self.turns.append(o.new_transcript)
        log(self.clock[0].now(), f"END OF TURN {o.new_transcript!r}")
        if o.decision is not None:
            print(f"          why: {o.decision.why()}")
        return True

    def on_interruption(self, o: out.Interruption) -> None:
        log(self.clock[0].now(), f"interruption (p={o.probability:g})")

    def on_transcript_dropped(self, o: out.TranscriptDropped) -> None:
        log(self.clock[0].now(), f"dropped {o.text!r} ({o.reason})")


async def main() -> tuple[list[str], list[Any]]:
    """Run the conversation; return turnfsm's turns and the LLM context."""
    clock: list[Clock] = []
    hooks = Hooks(clock)
    detector = DurationDetector()
    strategies = TurnfsmUserTurnStrategies(
        EngineOptions(turn_detection="model", interruption_detection=True,
                      endpointing=EndpointingOptions(min_delay=0.5, max_delay=2.5)),
        hooks=hooks, session_kwargs={"detector": detector, "conversation_id": "demo-pipecat"})
    detector.strategies = strategies
    context = LLMContext()
    pair = LLMContextAggregatorPair(context, user_params=strategies.user_params())
    pipeline = Pipeline([pair.user(), FakeLLM(), FakeVoice(clock), pair.assistant()])
    worker = PipelineWorker(pipeline, cancel_on_idle_timeout=False)
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
    async def on_started(_worker: Any, _frame: Any) -> None:
        started.set()

    async def user() -> None:
        await started.wait()
        clock.append(Clock())
        print(f"user_turn_stop_timeout: {strategies.user_turn_stop_timeout:g} s")
        script = sorted((f for u in USER for f in user_frames(*u)), key=lambda x: x[0])
        for t, frame in script:
            await asyncio.sleep(max(0.0, t - clock[0].now()))
            if isinstance(frame, TranscriptionFrame):
                log(t, f"user: {frame.text!r}")
            await worker.queue_frame(frame)
        await asyncio.sleep(4.0)
        await worker.queue_frame(EndFrame())

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await asyncio.gather(runner.run(), user())
    return hooks.turns, list(context.messages)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--virtual", action="store_true", help="run on a virtual clock, at once")
    logger.remove()
    logger.add(sys.stderr, level="WARNING")  # Pipecat's own log: warnings only
    turns, messages = run_virtual(main()) if ap.parse_args().virtual else asyncio.run(main())
    print(f"{len(turns)} turns: {turns}")
    for m in messages:
        print(f"  {m['role']:>9}: {m['content']}")
