"""Helpers for testing hosts and charts: a virtual-time host that drives an engine."""

from .host import ScriptedAnswers, VirtualHost

__all__ = ["ScriptedAnswers", "VirtualHost"]
