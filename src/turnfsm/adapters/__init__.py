"""Adapters that run turnfsm inside voice-agent frameworks. Each module imports its framework:
install the matching extra first (``turnfsm.adapters.livekit``: LiveKit Agents)."""
