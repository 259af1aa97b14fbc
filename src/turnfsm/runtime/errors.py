"""The errors a :class:`~turnfsm.runtime.session.Session` raises of its own."""

from __future__ import annotations

from ..errors import TurnFsmError


class SessionClosed(TurnFsmError):
    """The session is closed (by :meth:`Session.aclose` or after an engine failure)."""


class CommitCancelled(TurnFsmError):
    """A commit's decision was dropped before delivery (a clear, a mode change, close)."""
