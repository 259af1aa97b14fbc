"""turnfsm deciding the turns of a LiveKit Agents ``AgentSession`` (a wiring example, offline).

    pip install -e '.[livekit]'
    python examples/livekit_app.py            # in real time (about 11 s)
    python examples/livekit_app.py --virtual  # on a virtual clock, at once

This is a wiring example. The VAD, STT, LLM, TTS, microphone and speaker below are scripted
stand-ins, so it runs with no LiveKit server, no model and no network: the user hesitates
("I want to book a table for" ... "four people tonight.": a turn ending on "for" waits
``max_delay``, so the rest joins it), barges in on the agent's reply, and says "Mm-hmm."
over the next one (too short to interrupt; dropped). In a real agent you pass real plugins
(for example ``silero.VAD.load()``, a streaming STT, an LLM and a TTS) and
``session.start(agent, room=ctx.room)``; the turnfsm lines (marked ``# turnfsm``) stay the
same.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from livekit import rtc
from livekit.agents import APIConnectOptions, LanguageCode, llm, stt, tts
from livekit.agents import vad as lk_vad
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
from livekit.agents.voice import AgentSession
from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities

from turnfsm import EndpointingOptions, EngineOptions
from turnfsm import outputs as out
from turnfsm.adapters.livekit import TurnfsmAgent, TurnfsmTurnTaking
from turnfsm.runtime import run_virtual

# what the user says: (start, end, text), seconds from the start
SCRIPT = [(0.5, 1.7, "I want to book a table for"), (2.6, 3.4, "four people tonight."),
          (5.0, 6.2, "Actually, make it five."), (8.0, 8.15, "Mm-hmm.")]
LENGTH = 11.0


# -- scripted stand-ins for the VAD, STT, LLM, TTS and audio devices --------------------------


async def at(t0: float, t: float) -> None:
    """Sleep until ``t`` seconds after ``t0`` (loop time)."""
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, t0 + t - loop.time()))


class ScriptedVAD(lk_vad.VAD):
    """A start 100 ms into each utterance, a window every 100 ms, an end after 300 ms of
    silence."""

    def __init__(self, t0: float) -> None:
        super().__init__(capabilities=lk_vad.VADCapabilities(update_interval=0.1))
        self.t0 = t0

    def stream(self) -> lk_vad.VADStream:
        return ScriptedVADStream(self)


class ScriptedVADStream(lk_vad.VADStream):
    async def _main_task(self) -> None:
        assert isinstance(self._vad, ScriptedVAD)
        t0, kinds = self._vad.t0, lk_vad.VADEventType
        begun = asyncio.get_running_loop().time() - t0
        for start, end, _ in SCRIPT:
            times = [(start + 0.1, kinds.START_OF_SPEECH)]
            times += [(round(start + k / 10, 6), kinds.INFERENCE_DONE)
                      for k in range(2, round((end - start) * 10) + 1)]
            times += [(end + 0.3, kinds.END_OF_SPEECH)]
            for t, kind in times:
                if t < begun:
                    continue
                await at(t0, t)
                self._event_ch.send_nowait(lk_vad.VADEvent(
                    type=kind, samples_index=0, timestamp=t, speaking=t <= end,
                    probability=1.0 if t <= end else 0.0,
                    speech_duration=min(t, end) - start, silence_duration=max(0.0, t - end),
                    raw_accumulated_speech=max(0.0, min(t, end) - start) if t <= end else 0.0))
        async for _ in self._input_ch:
            pass


class ScriptedSTT(stt.STT):
    """An interim halfway through each utterance, its final 100 ms after it ends."""

    def __init__(self, t0: float) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self.t0 = t0

    async def _recognize_impl(self, buffer: Any, *, language: Any = None,
                              conn_options: APIConnectOptions) -> stt.SpeechEvent:
        raise NotImplementedError

    def stream(self, *, language: Any = None,
               conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
               ) -> stt.RecognizeStream:
        return ScriptedSTTStream(stt=self, conn_options=conn_options)


class ScriptedSTTStream(stt.RecognizeStream):
    async def _run(self) -> None:
        assert isinstance(self._stt, ScriptedSTT)
        t0 = self._stt.t0
        begun = asyncio.get_running_loop().time() - t0
        drain = asyncio.create_task(self._drain())
        for start, end, text in SCRIPT:
            for t, kind, said in (((start + end) / 2, stt.SpeechEventType.INTERIM_TRANSCRIPT,
                                   " ".join(text.split()[:2])),
                                  (end + 0.1, stt.SpeechEventType.FINAL_TRANSCRIPT, text)):
                if t < begun:
                    continue
                await at(t0, t)
                self._event_ch.send_nowait(stt.SpeechEvent(type=kind, alternatives=[
                    stt.SpeechData(language=LanguageCode("en"), text=said, confidence=0.9)]))
        await drain

    async def _drain(self) -> None:
        async for _ in self._input_ch:
            pass


class ScriptedLLM(llm.LLM):
    def chat(self, *, chat_ctx: llm.ChatContext, tools: Any = None,
             conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
             **kw: Any) -> llm.LLMStream:
        return ScriptedLLMStream(self, chat_ctx=chat_ctx, tools=tools or [],
                                 conn_options=conn_options)


class ScriptedLLMStream(llm.LLMStream):
    async def _run(self) -> None:
        await asyncio.sleep(0.1)
        self._event_ch.send_nowait(llm.ChatChunk(id="reply", delta=llm.ChoiceDelta(
            role="assistant", content="Let me check what we have for you tonight.")))


class SilentTTS(tts.TTS):
    """Every reply is 2.5 s of silence."""

    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=24000,
                         num_channels=1)

    def synthesize(self, text: str, *,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                   ) -> tts.ChunkedStream:
        return SilentStream(tts=self, input_text=text, conn_options=conn_options)


class SilentStream(tts.ChunkedStream):
    async def _run(self, output_emitter: tts.AudioEmitter) -> None:
        output_emitter.initialize(request_id="reply", sample_rate=24000, num_channels=1,
                                  mime_type="audio/pcm")
        output_emitter.push(b"\x00\x00" * int(24000 * 2.5))
        output_emitter.flush()


class Microphone(AudioInput):
    """50 ms of silence every 50 ms (the scripted VAD and STT do the hearing)."""

    def __init__(self) -> None:
        super().__init__(label="microphone")

    async def __anext__(self) -> rtc.AudioFrame:
        await asyncio.sleep(0.05)
        return rtc.AudioFrame.create(16000, 1, 800)


class Speaker(AudioOutput):
    """Plays in loop time; ``pause()`` holds it where it is (turnfsm pauses the agent on
    speech over it), ``resume()`` plays on, ``clear_buffer`` (an interruption) stops it."""

    def __init__(self) -> None:
        super().__init__(label="speaker", next_in_chain=None, sample_rate=None,
                         capabilities=AudioOutputCapabilities(pause=True))
        self.pushed, self.started = 0.0, 0.0
        self.flushed = False
        self.paused_at: float | None = None
        self.timer: asyncio.TimerHandle | None = None

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if not self.pushed:
            self.started = asyncio.get_running_loop().time()
            self.on_playback_started(created_at=self.started)
        self.pushed += frame.duration

    def flush(self) -> None:
        super().flush()
        if self.pushed:
            self.flushed = True
            self._arm()

    def pause(self) -> None:
        super().pause()
        if self.pushed and self.paused_at is None:
            self.paused_at = asyncio.get_running_loop().time()
            if self.timer is not None:
                self.timer.cancel()

    def resume(self) -> None:
        super().resume()
        if self.paused_at is not None:
            self.started += asyncio.get_running_loop().time() - self.paused_at
            self.paused_at = None
            self._arm()

    def clear_buffer(self) -> None:
        if self.pushed:
            self._done(True)

    def _arm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.flushed and self.paused_at is None:
            loop = asyncio.get_running_loop()
            self.timer = loop.call_later(max(0.0, self.started + self.pushed - loop.time()),
                                         self._done, False)

    def _done(self, interrupted: bool) -> None:
        if self.timer is not None:
            self.timer.cancel()
        position, self.pushed = self.pushed, 0.0
        self.flushed, self.paused_at = False, None
        self.on_playback_finished(playback_position=position, interrupted=interrupted)


# -- the app -----------------------------------------------------------------------------------


class Hooks:
    """turnfsm's decisions, printed with why they were made."""

    def __init__(self, taking: list[TurnfsmTurnTaking]) -> None:
        self.taking = taking
        self.dropped: set[tuple[float, str]] = set()

    def now(self) -> float:
        return self.taking[0].fsm.now() if self.taking else 0.0

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        print(f"{o.t:6.2f} s  END OF TURN {o.new_transcript!r} -> commit")
        if o.decision is not None:
            print(f"          why: {o.decision.why()}")
        return True  # False keeps the turn open (nothing is committed)

    def on_interruption(self, o: out.Interruption) -> None:
        print(f"{o.t:6.2f} s  INTERRUPTION (user speech since {o.overlap_started_at:.2f} s)"
              " -> session.interrupt()")

    def on_transcript(self, o: out.Transcript) -> None:
        if o.type == "final":
            print(f"{o.t:6.2f} s  heard {o.text!r}")

    def on_transcript_dropped(self, o: out.TranscriptDropped) -> None:
        if (o.t, o.text) not in self.dropped:  # its interim and its final go together
            self.dropped.add((o.t, o.text))
            print(f"{o.t:6.2f} s  dropped {o.text!r} ({o.reason}): LiveKit never hears it")

    def on_preemptive_generation(self, o: out.PreemptiveGeneration) -> None:
        pass  # no public target in LiveKit's manual mode


async def main() -> list[str]:
    """Run the conversation; return the user turns LiveKit completed."""
    t0 = asyncio.get_running_loop().time()
    session: AgentSession[None] = AgentSession(
        vad=ScriptedVAD(t0), stt=ScriptedSTT(t0), llm=ScriptedLLM(), tts=SilentTTS(),
        turn_handling={"turn_detection": "manual",  # turnfsm decides (it sets this too)
                       "interruption": {"resume_false_interruption": False}},
        aec_warmup_duration=None, user_away_timeout=None, session_close_transcript_timeout=0.5)
    session.input.audio = Microphone()
    session.output.audio = Speaker()
    holder: list[TurnfsmTurnTaking] = []
    hooks = Hooks(holder)
    taking = TurnfsmTurnTaking(  # turnfsm
        session, EngineOptions(turn_detection="model", interruption_detection=True,
                               endpointing=EndpointingOptions(min_delay=0.5, max_delay=2.0)),
        hooks=hooks, telemetry=False)
    holder.append(taking)
    committed: list[str] = []

    def on_item(e: Any) -> None:
        if getattr(e.item, "role", None) == "user" and e.item.text_content:
            committed.append(e.item.text_content or "")
            print(f"{hooks.now():6.2f} s  LiveKit committed the user turn {committed[-1]!r}")

    session.on("conversation_item_added", on_item)
    session.on("agent_state_changed", lambda e: print(
        f"{hooks.now():6.2f} s  agent {e.old_state} -> {e.new_state}")
        if "speaking" in (e.old_state, e.new_state) else None)
    await session.start(TurnfsmAgent(instructions="You book tables."))  # turnfsm
    await asyncio.sleep(LENGTH - (asyncio.get_running_loop().time() - t0))
    await session.aclose()
    await taking.aclose()
    return committed


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--virtual", action="store_true", help="run on a virtual clock, at once")
    turns = run_virtual(main()) if ap.parse_args().virtual else asyncio.run(main())
    print(f"{len(turns)} turns committed: {turns}")
