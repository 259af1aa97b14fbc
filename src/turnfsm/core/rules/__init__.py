"""The guards and actions the chart names, grouped by the regions they serve.

Importing this package registers every rule with :data:`turnfsm.core.registry.RULES`.
Each module's functions see only the :class:`~turnfsm.core.context.Context` and the payload
of the event being dispatched.

* :mod:`.session`: lifecycle and mode (close, option changes, leaving stt mode);
* :mod:`.streams`: the VAD, STT and detector streams (attach, detach, intake, data events);
* :mod:`.agent`: agent speech, the start backchannel boundary, overlaps and their markers;
* :mod:`.speech`: the VAD segment and user speech (onset, start/end reports, feedback);
* :mod:`.transcripts`: what a final, preflight, interim or STT start/end does;
* :mod:`.gate`: holding STT events while the agent speaks, trimming and releasing them;
* :mod:`.turn`: the end-of-turn decision: wait, model, delivery, answers, clear;
* :mod:`.commit`: commit requests and their results;
* :mod:`.settle`: the final wait of the ``default`` profile (no orphaned transcripts);
* :mod:`.backchannel`: backchannels of the ``default`` profile (neither turns nor
  interruptions);
* :mod:`.pauses`: the session's own mid-turn pauses lengthen later waits (``default``).
"""

from . import (
               agent,
               backchannel,
               commit,
               gate,
               pauses,
               session,
               settle,
               speech,
               streams,
               transcripts,
               turn,
)

__all__ = ["agent", "backchannel", "commit", "gate", "pauses", "session", "settle", "speech",
           "streams", "transcripts", "turn"]
