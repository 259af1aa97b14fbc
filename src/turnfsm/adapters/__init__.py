"""Adapters that run turnfsm inside voice-agent frameworks. Each submodule imports its
framework (an optional dependency), so install the matching extra and import the submodule
you need: ``turnfsm.adapters.livekit`` (LiveKit Agents, extra ``livekit``) or
``turnfsm.adapters.pipecat`` (Pipecat, extra ``pipecat``)."""
