"""Adapters to voice-agent frameworks. Each submodule imports its framework (an optional
dependency), so import the submodule you need: ``turnfsm.adapters.pipecat``."""
