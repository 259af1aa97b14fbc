"""What the Pipecat and LiveKit adapters share, one room each: the audio overlap detector
both ship on by default (:mod:`.overlap`), the pause of the agent's audio it drives
(:mod:`.pause`), the bookkeeping of transcripts the engine holds (:mod:`.transcripts`), the
adapter's options, detector and pause made from its arguments (:mod:`.setup`) and the call of
the app's hooks (:mod:`.hooks`).

**The overlap detector** (:class:`OverlapDetector`) is the rule ``turnfsm listen`` uses for
overlaps, run on the framework's own VAD, window by window: user speech that begins while
the agent speaks is an interruption as soon as a *voiced* window comes ``min_duration``
seconds (0.5 s) after the speech's onset; speech that stops sooner is no interruption
(the engine then judges its words: a backchannel is dropped). Only voiced windows count
(the VAD's per-window speech probability at or above ``threshold``), never the silence a
VAD waits through before it reports the end of speech: a 0.45 s "okay" followed by 0.55 s
of silence never reaches 0.5 s, while "wait, stop" does as soon as "stop" begins. An
overlap that opens within ``join`` seconds (0.5 s) of the last voiced window of the one
before (over the same agent speech, no verdict yet) goes on from that one's onset: a VAD
whose ``stop_secs`` is shorter than the pauses of "wait, ... stop, ... that's wrong" splits
it into segments, and each alone is too short; judged whole, it interrupts as it would with
a longer ``stop_secs``.

**The pause** (:class:`OutputPause`): no rule on speech duration stops a barge-in within
0.4 s and lets a backchannel through (backchannels last 0.45 s, barge-ins open with a 0.38 s
"wait,"), so the agent's audio is paused as soon as speech over it is credible (a voiced
window ``pause_after`` seconds after the overlap's onset), resumed when turnfsm judges the
utterance no interruption (dropped as a backchannel, ``resume_after`` seconds of unvoiced
windows after its last voiced one, or the overlap closed undecided) and stopped by the
framework on the interruption verdict, as LiveKit Agents' false-interruption handling does.

**Transcripts the engine holds** (:class:`HeldTranscripts`): a shell that forwards the
user's transcripts to its framework keeps each one back while the engine reports it held
(``TranscriptHeld``) and sends it when the engine releases it (``Transcript`` with the same
ref), or forgets it when the engine drops it (``TranscriptDropped``); a held interim that
a later transcript of the same speech supersedes is forgotten then. The shell decides from
these outputs only, never from the chart's region or state names (profiles rename them).
"""

from __future__ import annotations

from .hooks import call_hook
from .overlap import DEFAULT_JOIN, DEFAULT_MIN_DURATION, OverlapDetector
from .pause import (
    DEFAULT_PAUSE_AFTER,
    DEFAULT_RESUME_AFTER,
    MAX_PAUSE,
    OutputPause,
    PauseRecord,
    attach_pause,
)
from .setup import TurnTaking, turn_taking
from .transcripts import HeldTranscripts

__all__ = ["DEFAULT_JOIN", "DEFAULT_MIN_DURATION", "DEFAULT_PAUSE_AFTER",
           "DEFAULT_RESUME_AFTER", "MAX_PAUSE", "HeldTranscripts", "OutputPause",
           "OverlapDetector", "PauseRecord", "TurnTaking", "attach_pause", "call_hook",
           "turn_taking"]
