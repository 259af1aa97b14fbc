"""Embedding turnfsm in an asyncio voice agent: one Session, scripted sources, the built-in
end-of-turn model, and every decision printed with the record of why it was made.

    python examples/embed_session.py            # in real time (about 12 s)
    python examples/embed_session.py --virtual  # on a virtual clock, at once

The sources stand in for a VAD, a speech recogniser and the agent's audio player: each is
an async iterable of events, pushed into the session as they arrive (``session.run``).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import AsyncIterator

from turnfsm import EndpointingOptions, EngineOptions
from turnfsm import events as ev
from turnfsm import outputs as out
from turnfsm.runtime import Session, run_virtual


async def at(t: float, session: Session) -> None:
    """Sleep until session time ``t``."""
    await asyncio.sleep(max(0.0, t - session.now()))


def user(session: Session, script: list[tuple[float, float, str, bool]]
         ) -> tuple[AsyncIterator[ev.Input], AsyncIterator[ev.Input]]:
    """A VAD and an STT source for utterances (start, length, text, final comes late)."""
    async def vad() -> AsyncIterator[ev.Input]:
        for start, length, _text, _late in script:
            await at(start, session)
            yield ev.VadStartOfSpeech(speech_duration=0.2)
            t = start
            while t + 0.032 < start + length:  # a VAD inference window every 32 ms
                t += 0.032
                await at(t, session)
                yield ev.VadInferenceDone(raw_accumulated_speech=t - start + 0.2)
            await at(start + length + 0.3, session)
            yield ev.VadEndOfSpeech(silence_duration=0.3)

    async def stt() -> AsyncIterator[ev.Input]:
        for start, length, text, late in script:
            words = text.split()
            await at(start + length / 2, session)
            yield ev.SttInterim(text=" ".join(words[: max(1, len(words) // 2)]), language="en")
            await at(start + length + (0.45 if late else 0.15), session)
            yield ev.SttFinal(text=text, language="en", confidence=0.92)
    return vad(), stt()


class Agent:
    """The host: prints what the session decides, and speaks when a turn ends."""

    def __init__(self, session_ref: list[Session]) -> None:
        self.ref = session_ref
        self.turns: list[str] = []

    def on_end_of_turn(self, o: out.EndOfTurn) -> bool:
        s = self.ref[0]
        self.turns.append(o.new_transcript)
        print(f"{o.t:6.2f} s  END OF TURN {o.new_transcript!r}")
        if o.decision is not None:
            print(f"          why: {o.decision.why()}")
        s.call_at(o.t + 0.4, s.agent_speech_started)  # the reply starts playing
        s.call_at(o.t + 1.6, s.agent_speech_ended)
        return True

    def on_preemptive_generation(self, o: out.PreemptiveGeneration) -> None:
        print(f"{o.t:6.2f} s  (may start a reply to {o.new_transcript!r})")

    def on_transcript(self, o: out.Transcript) -> None:
        if o.type == "final":
            print(f"{o.t:6.2f} s  heard {o.text!r}")


async def main() -> list[str]:
    """Run the conversation; return the delivered turns."""
    holder: list[Session] = []
    agent = Agent(holder)
    options = EngineOptions(turn_detection="model",  # the built-in rule-based model
                            endpointing=EndpointingOptions(min_delay=0.5, max_delay=2.0))
    async with Session(options, hooks=agent, conversation_id="demo-1") as session:
        holder.append(session)
        vad, stt = user(session, [
            (0.5, 1.2, "I want to book a table for", False),   # unfinished: waits longer
            (2.9, 0.8, "four people tonight.", False),         # complete: min_delay
            (7.0, 1.0, "Actually make it five", True),         # its final comes late
        ])
        await session.run(vad=vad, stt=stt)
        await asyncio.sleep(3.0)
    return agent.turns


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--virtual", action="store_true", help="run on a virtual clock, at once")
    turns = run_virtual(main()) if ap.parse_args().virtual else asyncio.run(main())
    print(f"{len(turns)} turns: {turns}")
