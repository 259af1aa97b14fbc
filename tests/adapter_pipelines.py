"""Each framework's real pipeline on the project's labelled WAVs, with the framework's own
Silero VAD, and stand-ins only for the network services: an STT that emits the words
sidecar's transcripts at their times, a recording LLM, a TTS that plays the agent channel
of the WAV at the agent's labelled times (and, when the labels say the agent was cut off,
goes on with silence to the length of its whole sentence, so only an interruption stops it).
An agent turn that answers a user turn starts no earlier than the LLM run for that turn (at
most 1.5 s after its labelled start): the agent speaks once it has heard the turn.

Used by ``tests/test_adapter_pipelines.py`` (slow) and ``benchmarks/adapters.py``.

Time: both pipelines run on turnfsm's virtual clock (``turnfsm.runtime.run_virtual``), and
the wall clock the frameworks read (``time.time``, ``time.monotonic``) follows it during a
run (:func:`virtual`); the frameworks' VAD and turn-model inference, which they run in worker
threads, runs inline instead (:class:`InlineExecutor`), so a window is scored at the instant
its audio arrives, as on an idle machine, and runs are deterministic whatever the load of
the CPU. The rest is the
frameworks' own code: Pipecat's ``LLMUserAggregator`` with ``SileroVADAnalyzer`` and a
``BaseOutputTransport``; LiveKit's ``AgentSession`` with ``livekit-plugins-silero``, its
audio input and output interfaces, in the default manual mode turnfsm sets up.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import re
import statistics
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from turnfsm import outputs as out
from turnfsm.audio.transcripts import Word, read_words, words_lines
from turnfsm.audio.vad import Segment
from turnfsm.audio.wav import read_wav
from turnfsm.runtime import run_virtual

ROOT = Path(__file__).resolve().parents[1]
RATE = 16000
FRAME = 0.02  # seconds of microphone audio per input frame
STT_LATENCY = 0.3  # a final arrives this long after its speech ends (as ``turnfsm listen``)
INTERIM_EVERY = 0.3
AGENT_WPM = 175.0  # the agent's speaking rate (examples/audio/README.md)
TAIL = 3.0  # seconds the pipeline runs after the file's end


def labelled_files() -> list[Path]:
    """Every labelled WAV (examples/audio and examples/dialogues)."""
    return sorted([*ROOT.glob("examples/audio/*.wav"), *ROOT.glob("examples/dialogues/*.wav")])


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """An executor that runs each call at once, in the caller's thread: VAD inference
    scored at the instant its audio arrives, on the virtual clock."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any
               ) -> concurrent.futures.Future[Any]:
        fut: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            fut.set_exception(exc)
        return fut


@contextlib.contextmanager
def _wall_follows(loop_time: Callable[[], float]) -> Iterator[None]:
    wall, mono = time.time(), time.monotonic()
    real = time.time, time.monotonic
    time.time = lambda: wall + loop_time()  # type: ignore[assignment]
    time.monotonic = lambda: mono + loop_time()  # type: ignore[assignment]
    try:
        yield
    finally:
        time.time, time.monotonic = real  # type: ignore[assignment]


def virtual(main: Callable[[], Coroutine[Any, Any, None]], realtime: bool = False) -> None:
    """Run ``main()`` on the virtual clock, the wall clock following it (``realtime``: on
    a real event loop instead, in real time)."""
    if realtime:
        asyncio.run(main())
        return
    async def body() -> None:
        loop = asyncio.get_running_loop()
        with _wall_follows(loop.time):
            await main()
    run_virtual(body())


@dataclass
class AgentTurn:
    """The agent's scripted speech: from ``start``, ``audio`` (16 kHz int16) then silence to
    ``length`` seconds."""

    start: float
    length: float
    audio: np.ndarray
    cut: bool  # the labels say the user cut it off


@dataclass
class Labelled:
    """One labelled file: the user's microphone, the transcripts, the agent's speech."""

    name: str
    path: Path
    duration: float
    mic: np.ndarray  # int16, the user's channel
    truth: dict[str, Any]
    stt: list[dict[str, Any]]  # stt.interim / stt.final lines, in time order
    agent: list[AgentTurn]

    @classmethod
    def load(cls, path: Path) -> Labelled:
        audio = read_wav(path)
        truth = json.loads(path.with_suffix(".truth.json").read_text())
        words: list[Word] = read_words(path.with_suffix(".words.json"))
        segments = [Segment(a, b) for a, b in truth["speech"]["user"]]
        stt = sorted(words_lines(words, segments, latency=STT_LATENCY,
                                 interim_every=INTERIM_EVERY), key=lambda x: x["t"])
        agent: list[AgentTurn] = []
        if audio.channels > 1:
            pcm = audio.int16(1)
            for a in truth.get("agent_turns", []):
                i, j = int(a["start"] * RATE), int(a["end"] * RATE)
                cut = a.get("interrupted_at") is not None
                full = len(a["text"].split()) * 60.0 / AGENT_WPM
                length = max(a["end"] - a["start"], full if cut else 0.0)
                agent.append(AgentTurn(a["start"], length, pcm[i:j], cut))
        return cls(path.stem, path, audio.duration, audio.int16(0), truth, stt, agent)


def answers(lab: Labelled, k: int) -> float | None:
    """The end of the user turn the agent's ``k``-th turn answers (a labelled turn that
    ended after the agent's previous turn began and before this one), or None."""
    start = lab.agent[k].start
    before = lab.agent[k - 1].start if k else -1.0
    ends = [t["end"] for t in lab.truth["turns"] if before < t["end"] <= start]
    return max(ends) if ends else None


async def agent_turn_due(lab: Labelled, k: int, runs: list[tuple[float, str]],
                         now: Callable[[], float]) -> None:
    """Wait for the agent's ``k``-th turn: its labelled start, and, when it answers a user
    turn, the LLM run for that turn too (an agent speaks after it has heard the turn; at
    most 1.5 s later than labelled)."""
    turn = lab.agent[k]
    await asyncio.sleep(max(0.0, turn.start - now()))
    heard = answers(lab, k)
    if heard is None:
        return
    while not any(at >= heard - 0.05 for at, _ in runs) and now() < turn.start + 1.5:
        await asyncio.sleep(0.01)


@dataclass
class Result:
    """What one run did, in seconds from the start of the file."""

    name: str
    framework: str
    mode: str  # "turnfsm" or "defaults"
    llm_runs: list[tuple[float, str]] = field(default_factory=list)  # (time, user text)
    # user turns the framework completed (time, text): Pipecat's context pushed to the LLM,
    # LiveKit's on_user_turn_completed (its preemptive LLM runs come earlier)
    commits: list[tuple[float, str]] = field(default_factory=list)
    agent: list[tuple[float, float, bool]] = field(default_factory=list)  # start, stop, cut
    # pauses of the agent's audio output: [paused at, resumed or cleared at (inf: open)]
    pauses: list[list[float]] = field(default_factory=list)
    played: list[bytearray] = field(default_factory=list)  # the audio each agent turn played
    frames_in: int = 0  # microphone frames sent
    frames_seen: int = 0  # microphone frames that reached the far side of the turn logic
    frames_in_order: bool = True
    outputs: list[out.Output] = field(default_factory=list)  # turnfsm's, session time
    origin: float = 0.0  # session time of the file's start


# -- scoring ----------------------------------------------------------------------------------


def _norm(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


@dataclass
class Score:
    """A run against the labels."""

    turns: int = 0
    answered: int = 0  # turns answered exactly once, with all their words
    llm_runs: int = 0
    cut_ins: int = 0  # LLM runs while a turn was still going on (before its intended end)
    backchannels: int = 0
    bc_interrupting: int = 0
    bc_answered: int = 0
    barge_ins: int = 0
    barge_ins_stopped: int = 0
    # barge-ins: the agent's audio fell silent (paused, or stopped) - the onset; and the
    # interruption that stopped it for good (its reply cancelled) - the onset
    silent_times: list[float] = field(default_factory=list)
    stop_times: list[float] = field(default_factory=list)
    # each pause a backchannel caused that was resumed (the agent played on), seconds
    bc_pauses: list[float] = field(default_factory=list)
    audio_lost: int = 0  # agent audio frames (20 ms) not played, or played out of order
    latencies: list[float] = field(default_factory=list)  # turn completed - turn end
    frames_lost: int = 0
    problems: list[str] = field(default_factory=list)


def score(lab: Labelled, r: Result) -> Score:
    """Count what the run did against the file's labels."""
    t = lab.truth
    s = Score(turns=len(t["turns"]), llm_runs=len(r.llm_runs),
              backchannels=len(t.get("backchannels", [])),
              barge_ins=len(t.get("interruptions", [])),
              frames_lost=r.frames_in - r.frames_seen, audio_lost=audio_lost(lab, r))
    if not r.frames_in_order:
        s.problems.append("microphone frames reordered")
    turns = t["turns"]
    starts = [x["start"] for x in turns] + [float("inf")]
    for k, turn in enumerate(turns):
        words = set(_norm(turn["text"]))
        window = [(at, text) for at, text in r.commits
                  if turn["end"] - 0.05 <= at < starts[k + 1] + 0.05]
        full = [(at, text) for at, text in window if words <= set(_norm(text))]
        if len(full) == 1 and len(window) == 1:
            s.answered += 1
            s.latencies.append(full[0][0] - turn["end"])
        else:
            s.problems.append(f"turn {turn['text']!r}: runs {window}")
        for at, text in r.commits:
            if turn["start"] < at < turn["intended_end"] - 0.05:
                s.cut_ins += 1
                s.problems.append(f"cut-in at {at:.2f} s in {turn['text']!r}: {text!r}")
    for bc in t.get("backchannels", []):
        cuts = [stop for _, stop, cut in r.agent if cut]  # a pause ended by a cut is no pause
        s.bc_pauses += [round(b - a, 3) for a, b in r.pauses
                        if bc["start"] <= a <= bc["end"] + 0.3
                        and not any(abs(b - c) <= 0.03 for c in cuts)]
        if any(bc["start"] <= stop <= bc["end"] + 1.0 and cut for _, stop, cut in r.agent):
            s.bc_interrupting += 1
            s.problems.append(f"backchannel {bc['text']!r} stopped the agent")
        nxt = min((x for x in starts if x > bc["start"]), default=float("inf"))
        if any(bc["start"] < at < nxt for at, _ in r.commits):
            s.bc_answered += 1
            s.problems.append(f"backchannel {bc['text']!r} answered")
    for bi in t.get("interruptions", []):
        # the interruption may cancel the reply after the barge-in's end (a paused agent
        # is stopped when its words are judged)
        stops = [stop for _, stop, cut in r.agent
                 if cut and bi["start"] <= stop <= bi["end"] + 1.0]
        if stops:
            s.barge_ins_stopped += 1
            s.stop_times.append(stops[0] - bi["start"])
            silent = [a for a, _ in r.pauses if bi["start"] <= a <= stops[0]]
            s.silent_times.append(min([*silent, stops[0]]) - bi["start"])
        else:
            s.problems.append(f"barge-in {bi['text']!r} never stopped the agent")
    return s


def audio_lost(lab: Labelled, r: Result) -> int:
    """The agent's audio frames (20 ms) an agent turn did not play, in order: all of a turn
    nobody cut off, a prefix of one cut off (paused and resumed audio included)."""
    if not r.played:
        return 0
    frame = int(FRAME * RATE) * 2
    lost = 0
    for k, turn in enumerate(lab.agent):
        expected = np.concatenate([turn.audio, np.zeros(
            max(0, int(turn.length * RATE) - len(turn.audio)), np.int16)]).tobytes()
        want = expected.rstrip(b"\0")
        played = bytes(r.played[k]).rstrip(b"\0") if k < len(r.played) else b""
        cut = k < len(r.agent) and r.agent[k][2]
        if not want.startswith(played):
            lost += -(-len(want) // frame)  # reordered, or audio that is not this turn's
        elif not cut:
            lost += -(-(len(want) - len(played)) // frame)
    return lost


def pct(xs: list[float], q: float) -> float | None:
    """The q-quantile of xs (None when empty)."""
    if not xs:
        return None
    if len(xs) == 1:
        return xs[0]
    return float(statistics.quantiles(xs, n=100, method="inclusive")[int(q * 100) - 1])


# -- Pipecat ---------------------------------------------------------------------------------


def run_pipecat(lab: Labelled, mode: str = "turnfsm", *,
                strategies_kw: dict[str, Any] | None = None, realtime: bool = False) -> Result:
    """The file through a Pipecat 1.14 pipeline: microphone frames -> the STT stand-in ->
    ``LLMUserAggregator`` (turnfsm's strategies with ``SileroVADAnalyzer`` through
    ``user_params``, or Pipecat's defaults) -> the recording LLM -> the scripted TTS -> an
    output transport that plays in (virtual) real time."""
    from pipecat.audio.vad.silero import SileroVADAnalyzer
    from pipecat.frames.frames import (
        BotStartedSpeakingFrame,
        BotStoppedSpeakingFrame,
        Frame,
        InputAudioRawFrame,
        InterimTranscriptionFrame,
        InterruptionFrame,
        LLMContextFrame,
        OutputAudioRawFrame,
        StartFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
    )
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams
    from pipecat.processors.aggregators.llm_context import LLMContext
    from pipecat.processors.aggregators.llm_response_universal import (
        LLMUserAggregator,
        LLMUserAggregatorParams,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
    from pipecat.tests.utils import SleepFrame, run_test
    from pipecat.transports.base_output import BaseOutputTransport
    from pipecat.transports.base_transport import TransportParams
    from pipecat.turns.user_turn_strategies import UserTurnStrategies

    from turnfsm.adapters.pipecat import TurnfsmUserTurnStrategies

    r = Result(lab.name, "pipecat", mode)
    clock: dict[str, float] = {}

    def now() -> float:
        return asyncio.get_running_loop().time() - clock["t0"]

    class Mic(FrameProcessor):  # the microphone and the STT: frames at their own instants
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, StartFrame):
                self.create_task(self._play())

        async def _play(self) -> None:
            loop = asyncio.get_running_loop()
            clock["t0"] = loop.time()
            n = int(FRAME * RATE)
            stt = list(lab.stt)
            for k, i in enumerate(range(0, len(lab.mic) - n + 1, n)):
                t = k * FRAME  # each frame at its absolute instant: no drift in real time
                await asyncio.sleep(max(0.0, clock["t0"] + t - loop.time()))
                while stt and stt[0]["t"] <= t + 1e-9:
                    await self.push_frame(_transcription(stt.pop(0)))
                f = InputAudioRawFrame(audio=lab.mic[i:i + n].tobytes(), sample_rate=RATE,
                                       num_channels=1)
                f.pts = k + 1
                r.frames_in += 1
                await self.push_frame(f)
            for line in stt:
                await asyncio.sleep(max(0.0, clock["t0"] + line["t"] - loop.time()))
                await self.push_frame(_transcription(line))

    def _transcription(line: dict[str, Any]) -> Frame:
        kind = TranscriptionFrame if line["kind"] == "stt.final" else InterimTranscriptionFrame
        return kind(text=line["text"], user_id="user", timestamp="")

    class LLM(FrameProcessor):  # records every run; counts the microphone frames
        last = -1

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if isinstance(frame, LLMContextFrame):
                users = [m for m in frame.context.get_messages() if m.get("role") == "user"]
                content = users[-1].get("content", "") if users else ""
                text = content if isinstance(content, str) else " ".join(
                    c.get("text", "") for c in content if isinstance(c, dict))
                r.llm_runs.append((round(now(), 3), text))
                r.commits.append((round(now(), 3), text))
                return  # the LLM consumes the context (and says nothing: the TTS is scripted)
            if isinstance(frame, InputAudioRawFrame):
                r.frames_seen += 1
                k = int(getattr(frame, "pts", 0) or 0)
                if k <= self.last:
                    r.frames_in_order = False
                self.last = k
            await self.push_frame(frame, direction)

    class TTS(FrameProcessor):  # the agent's scripted speech, queued at its start time
        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            await self.push_frame(frame, direction)
            if isinstance(frame, StartFrame):
                self.create_task(self._speak())

        async def _speak(self) -> None:
            while "t0" not in clock:
                await asyncio.sleep(0.005)
            for k, turn in enumerate(lab.agent):
                await agent_turn_due(lab, k, r.commits, now)
                await self.push_frame(TTSStartedFrame())
                pcm = np.concatenate([turn.audio, np.zeros(
                    max(0, int(turn.length * RATE) - len(turn.audio)), np.int16)])
                n = int(FRAME * RATE)
                for i in range(0, len(pcm), n):
                    await self.push_frame(TTSAudioRawFrame(
                        audio=pcm[i:i + n].tobytes(), sample_rate=RATE, num_channels=1))
                await self.push_frame(TTSStoppedFrame())

    class Speaker(BaseOutputTransport):  # plays in real time; InterruptionFrame clears it
        segment = False  # between the bot's started and stopped speaking
        writing = False  # a chunk is playing
        last_end: float | None = None  # when the segment's last chunk ended

        async def start(self, frame: StartFrame) -> None:
            await super().start(frame)
            await self.set_transport_ready(frame)

        def gap(self) -> None:
            """The bot was silent from its last chunk's end to now: a pause."""
            if self.segment and not self.writing and self.last_end is not None and \
                    "t0" in clock and now() - self.last_end > 0.03:
                r.pauses.append([self.last_end, round(now(), 3)])

        async def push_frame(self, frame: Frame,
                             direction: FrameDirection = FrameDirection.DOWNSTREAM) -> None:
            if direction == FrameDirection.DOWNSTREAM:
                if isinstance(frame, BotStartedSpeakingFrame):
                    r.played.append(bytearray())  # pushed before the segment's first write
                    self.segment, self.last_end = True, None
                elif isinstance(frame, BotStoppedSpeakingFrame):
                    self.gap()  # paused, then stopped
                    self.segment, self.last_end = False, None
            await super().push_frame(frame, direction)

        async def write_audio_frame(self, frame: OutputAudioRawFrame) -> bool:
            self.gap()
            self.writing = True
            if self.segment and r.played:
                r.played[-1] += frame.audio
            await asyncio.sleep(len(frame.audio) / 2 / frame.sample_rate)
            self.writing = False
            self.last_end = round(now(), 3) if self.segment and "t0" in clock else None
            return True

    class Watch(FrameProcessor):  # the agent's audio, as the output transport reports it
        cut = False

        async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
            await super().process_frame(frame, direction)
            if "t0" in clock:
                if isinstance(frame, InterruptionFrame) and r.agent and \
                        r.agent[-1][1] == float("inf"):
                    self.cut = True
                elif isinstance(frame, BotStartedSpeakingFrame):
                    self.cut = False
                    r.agent.append((round(now(), 3), float("inf"), False))
                elif isinstance(frame, BotStoppedSpeakingFrame) and r.agent and \
                        r.agent[-1][1] == float("inf"):
                    start = r.agent[-1][0]
                    r.agent[-1] = (start, round(now(), 3), self.cut)
            await self.push_frame(frame, direction)

    async def main() -> None:
        analyzer = SileroVADAnalyzer()
        if not realtime:  # inference inline, on the virtual clock
            asyncio.get_running_loop().set_default_executor(InlineExecutor(max_workers=1))
            analyzer._executor = InlineExecutor(max_workers=1)
        context = LLMContext()
        strategies: TurnfsmUserTurnStrategies | None = None
        if mode == "turnfsm":
            strategies = TurnfsmUserTurnStrategies(
                hooks=_Collect(r.outputs), session_kwargs={"telemetry": False},
                **(strategies_kw or {}))
            params = strategies.user_params(vad_analyzer=analyzer)
        else:  # Pipecat's defaults: VAD and transcription starts, the smart-turn stop
            defaults = UserTurnStrategies()
            for stop in defaults.stop or []:
                turn = getattr(stop, "_turn_analyzer", None)
                if turn is not None and not realtime:  # its model runs inline too
                    turn._executor = InlineExecutor(max_workers=1)
            params = LLMUserAggregatorParams(vad_analyzer=analyzer,
                                             user_turn_strategies=defaults)
        user = LLMUserAggregator(context, params=params)
        speaker = Speaker(TransportParams(audio_out_enabled=True, audio_out_sample_rate=RATE))
        if strategies is not None:
            strategies.pausable(speaker)
        watch = Watch()
        pipeline = Pipeline([Mic(), user, LLM(), TTS(), speaker, watch])
        frames: list[Frame] = [SleepFrame(sleep=lab.duration + TAIL)]
        if strategies is not None:
            async def origin() -> None:
                while strategies.session is None or "t0" not in clock:
                    await asyncio.sleep(0.001)
                r.origin = strategies.session.now() - now()
            task = asyncio.create_task(origin())
        await run_test(pipeline, frames_to_send=frames, pipeline_params=PipelineParams(
            audio_in_sample_rate=RATE, audio_out_sample_rate=RATE), start_timeout=10.0)
        if strategies is not None:
            task.cancel()
    virtual(main, realtime)
    return r


class _Collect:
    """turnfsm hooks that keep every output."""

    def __init__(self, outputs: list[out.Output]) -> None:
        self.outputs = outputs

    def on_output(self, o: out.Output) -> None:
        self.outputs.append(o)


# -- LiveKit ---------------------------------------------------------------------------------


def run_livekit(lab: Labelled, mode: str = "turnfsm", *,
                taking_kw: dict[str, Any] | None = None, realtime: bool = False) -> Result:
    """The file through a LiveKit Agents 1.8 ``AgentSession`` with ``livekit-plugins-silero``:
    a microphone input reading the user's channel, the STT stand-in, a recording LLM that
    says nothing, the agent's scripted speech through ``session.say`` with a TTS that plays
    the agent channel, and a speaker that stops on ``clear_buffer``. ``mode`` "turnfsm":
    :class:`TurnfsmTurnTaking` and a :class:`TurnfsmAgent`; "defaults": LiveKit's own turn
    handling (VAD endpointing, its VAD barge-in)."""
    from livekit import rtc
    from livekit.agents import (
        NOT_GIVEN,
        APIConnectOptions,
        LanguageCode,
        NotGivenOr,
        llm,
        stt,
        tts,
        utils,
    )
    from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS
    from livekit.agents.voice import Agent, AgentSession
    from livekit.agents.voice.io import AudioInput, AudioOutput, AudioOutputCapabilities
    from livekit.plugins import silero

    from turnfsm.adapters.livekit import TurnfsmAgent, TurnfsmTurnTaking

    r = Result(lab.name, "livekit", mode)
    clock: dict[str, float] = {}  # t0: the loop time of the file's start (once started)

    async def started() -> None:
        while "t0" not in clock:
            await asyncio.sleep(0.005)

    def now() -> float:
        return asyncio.get_running_loop().time() - clock["t0"]

    class STT(stt.STT):
        def __init__(self) -> None:
            super().__init__(capabilities=stt.STTCapabilities(streaming=True,
                                                              interim_results=True))

        async def _recognize_impl(self, buffer: Any, *, language: NotGivenOr[str] = NOT_GIVEN,
                                  conn_options: APIConnectOptions) -> stt.SpeechEvent:
            raise NotImplementedError

        def stream(self, *, language: NotGivenOr[str] = NOT_GIVEN,
                   conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                   ) -> stt.RecognizeStream:
            return STTStream(stt=self, conn_options=conn_options)

    class STTStream(stt.RecognizeStream):
        async def _run(self) -> None:
            async def drain() -> None:
                async for _ in self._input_ch:
                    pass
            task = asyncio.create_task(drain())
            try:
                await started()
                for line in lab.stt:
                    if line["t"] < now():
                        continue
                    await asyncio.sleep(line["t"] - now())
                    kind = (stt.SpeechEventType.FINAL_TRANSCRIPT if line["kind"] == "stt.final"
                            else stt.SpeechEventType.INTERIM_TRANSCRIPT)
                    self._event_ch.send_nowait(stt.SpeechEvent(type=kind, alternatives=[
                        stt.SpeechData(language=LanguageCode("en"), text=line["text"],
                                       confidence=line["confidence"])]))
                await task
            finally:
                await utils.aio.cancel_and_wait(task)

    class LLM(llm.LLM):
        def chat(self, *, chat_ctx: llm.ChatContext, tools: list[Any] | None = None,
                 conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
                 parallel_tool_calls: NotGivenOr[bool] = NOT_GIVEN,
                 tool_choice: NotGivenOr[Any] = NOT_GIVEN,
                 extra_kwargs: NotGivenOr[dict[str, Any]] = NOT_GIVEN) -> llm.LLMStream:
            users = [i for i in chat_ctx.items if i.type == "message" and i.role == "user"]
            r.llm_runs.append((round(now(), 3), users[-1].text_content or "" if users else ""))
            return LLMStream(self, chat_ctx=chat_ctx, tools=tools or [],
                             conn_options=conn_options)

    class LLMStream(llm.LLMStream):
        async def _run(self) -> None:
            return  # says nothing: the agent's speech is scripted

    class TTS(tts.TTS):  # the agent channel of the turn being said
        def __init__(self) -> None:
            super().__init__(capabilities=tts.TTSCapabilities(streaming=False),
                             sample_rate=RATE, num_channels=1)

        def synthesize(self, text: str, *,
                       conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS
                       ) -> tts.ChunkedStream:
            return TTSStream(tts=self, input_text=text, conn_options=conn_options)

    class TTSStream(tts.ChunkedStream):
        async def _run(self, output_emitter: tts.AudioEmitter) -> None:
            k = int(self.input_text.split(":", 1)[0])
            turn = lab.agent[k]
            pcm = np.concatenate([turn.audio, np.zeros(
                max(0, int(turn.length * RATE) - len(turn.audio)), np.int16)])
            output_emitter.initialize(request_id=f"agent-{k}", sample_rate=RATE,
                                      num_channels=1, mime_type="audio/pcm")
            output_emitter.push(pcm.tobytes())
            output_emitter.flush()

    class Mic(AudioInput):
        def __init__(self) -> None:
            super().__init__(label="wav-mic")
            self.k = 0
            self.n = int(FRAME * RATE)

        async def __anext__(self) -> rtc.AudioFrame:
            await started()
            i = self.k * self.n
            t = (self.k + 1) * FRAME
            await asyncio.sleep(max(0.0, t - now()))
            self.k += 1
            if i + self.n <= len(lab.mic):
                chunk = lab.mic[i:i + self.n]
                r.frames_in += 1
            else:
                chunk = np.zeros(self.n, np.int16)
            return rtc.AudioFrame(data=chunk.tobytes(), sample_rate=RATE, num_channels=1,
                                  samples_per_channel=self.n)

    class Speaker(AudioOutput):
        """Plays its frames in (loop) real time, 20 ms at a time, as a room's output does:
        ``pause()`` holds the piece due next (nothing is dropped), ``resume()`` plays on
        from it, ``clear_buffer()`` drops what is left and stops at once."""

        def __init__(self) -> None:
            super().__init__(label="speaker", next_in_chain=None, sample_rate=None,
                             capabilities=AudioOutputCapabilities(pause=True))
            self.queue: asyncio.Queue[tuple[int, rtc.AudioFrame | None]] = asyncio.Queue()
            self.segment = 0  # frames of an ended segment are never played
            self.playing = False  # a segment is playing (started, not finished)
            self.position = 0.0
            self.flushed = False
            self.resumed = asyncio.Event()
            self.resumed.set()
            self.task: asyncio.Task[None] | None = None

        async def capture_frame(self, frame: rtc.AudioFrame) -> None:
            await super().capture_frame(frame)
            if self.task is None:
                self.task = asyncio.create_task(self.play())
            if not self.playing:
                self.playing, self.position, self.flushed = True, 0.0, False
                self.segment += 1
                r.agent.append((round(now(), 3), float("inf"), False))
                r.played.append(bytearray())
                self.on_playback_started(created_at=asyncio.get_running_loop().time())
            n = int(frame.sample_rate * FRAME)  # played in 20 ms pieces, as a room's output
            data = np.frombuffer(bytes(frame.data), np.int16)
            for i in range(0, len(data), n):
                piece = data[i:i + n]
                self.queue.put_nowait((self.segment, rtc.AudioFrame(
                    data=piece.tobytes(), sample_rate=frame.sample_rate, num_channels=1,
                    samples_per_channel=len(piece))))

        def flush(self) -> None:
            super().flush()
            if self.playing:
                self.flushed = True
                self.queue.put_nowait((self.segment, None))  # the segment ends here

        async def play(self) -> None:
            while True:
                segment, frame = await self.queue.get()
                await self.resumed.wait()
                if not self.playing or segment != self.segment:
                    continue  # cleared
                if frame is None:
                    self.finish(False)
                    continue
                await asyncio.sleep(frame.duration)
                if self.playing and segment == self.segment:
                    self.position += frame.duration
                    r.played[-1] += bytes(frame.data)

        def pause(self) -> None:
            super().pause()
            if self.resumed.is_set() and self.playing:
                self.resumed.clear()
                r.pauses.append([round(now(), 3), float("inf")])

        def resume(self) -> None:
            super().resume()
            if not self.resumed.is_set():
                self.resumed.set()
                if r.pauses and r.pauses[-1][1] == float("inf"):
                    r.pauses[-1][1] = round(now(), 3)

        def clear_buffer(self) -> None:
            while not self.queue.empty():
                self.queue.get_nowait()
            if self.playing:
                self.finish(True)
            if r.pauses and r.pauses[-1][1] == float("inf"):
                r.pauses[-1][1] = round(now(), 3)  # silent from now on, paused or not

        def finish(self, interrupted: bool) -> None:
            self.playing = False
            if r.agent and r.agent[-1][1] == float("inf"):
                r.agent[-1] = (r.agent[-1][0], round(now(), 3), interrupted)
            self.on_playback_finished(playback_position=self.position, interrupted=interrupted)

    async def completed(new_message: llm.ChatMessage) -> None:
        r.commits.append((round(now(), 3), new_message.text_content or ""))

    class Counting(TurnfsmAgent):
        async def stt_node(self, audio: Any, model_settings: Any) -> Any:
            async for e in super().stt_node(_count(audio), model_settings):
                yield e

        async def on_user_turn_completed(self, turn_ctx: llm.ChatContext,
                                         new_message: llm.ChatMessage) -> None:
            await completed(new_message)

    class Plain(Agent):
        async def stt_node(self, audio: Any, model_settings: Any) -> Any:
            async for e in Agent.default.stt_node(self, _count(audio), model_settings):
                yield e

        async def on_user_turn_completed(self, turn_ctx: llm.ChatContext,
                                         new_message: llm.ChatMessage) -> None:
            await completed(new_message)

    async def _count(audio: Any) -> Any:
        async for f in audio:
            r.frames_seen += 1
            yield f

    async def main() -> None:
        loop = asyncio.get_running_loop()
        if not realtime:  # inference inline, on the virtual clock
            loop.set_default_executor(InlineExecutor(max_workers=1))
        vad = silero.VAD.load()
        kw: dict[str, Any] = {}
        if mode != "turnfsm":
            kw["turn_handling"] = {"turn_detection": "vad", "interruption": {"mode": "vad"}}
        session: AgentSession[None] = AgentSession(
            vad=vad, stt=STT(), llm=LLM(), tts=TTS(), user_away_timeout=None, **kw)
        session.input.audio = Mic()
        session.output.audio = Speaker()
        taking = None
        if mode == "turnfsm":
            taking = TurnfsmTurnTaking(session, hooks=_Collect(r.outputs), telemetry=False,
                                       **(taking_kw or {}))
            agent: Agent = Counting(instructions="a test agent")
        else:
            agent = Plain(instructions="a test agent")
        await session.start(agent)
        clock["t0"] = loop.time()  # the file starts now (the microphone's first frame: +20 ms)
        if taking is not None:
            r.origin = taking.fsm.now()
        for k in range(len(lab.agent)):
            await agent_turn_due(lab, k, r.commits, now)
            session.say(f"{k}: agent turn", add_to_chat_ctx=False)
        await asyncio.sleep(max(0.0, lab.duration + TAIL - now()))
        await session.aclose()
        if taking is not None:
            await taking.aclose()
    virtual(main, realtime)
    r.frames_seen = min(r.frames_seen, r.frames_in)  # frames are in order: a prefix
    return r
