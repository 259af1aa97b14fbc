"""Recorded sessions: the trace format, virtual-time replay, and the text timeline."""

from .replay import Replay, ScriptedModel, engine_options, replay_file, replay_trace
from .trace import Trace, TraceInput, dumps, output_line, parse_trace, read_trace

__all__ = ["Replay", "ScriptedModel", "Trace", "TraceInput", "dumps", "engine_options",
           "output_line", "parse_trace", "read_trace", "replay_file", "replay_trace"]
