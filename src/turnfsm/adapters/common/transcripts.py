"""The framework's transcript events the engine holds back (see
:mod:`turnfsm.adapters.common`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from ... import outputs as out

T = TypeVar("T")


class HeldTranscripts(Generic[T]):
    """The framework's transcript events the engine has not let through yet, by ref (see
    the module). :meth:`push` before pushing the event into the session; every output goes
    to :meth:`on_output`, which calls ``send`` for each event to hand to the framework now,
    in order."""

    def __init__(self, send: Callable[[T], None]) -> None:
        self._send = send
        self._pending: dict[Any, tuple[T, bool]] = {}  # ref -> (event, is a final)
        self._held: set[Any] = set()  # refs the engine reported held

    def push(self, ref: Any, event: T, *, final: bool) -> None:
        """An event is about to be pushed into the session with ``ref``."""
        self._pending[ref] = (event, final)

    def pushed(self, ref: Any) -> None:
        """The push of ``ref`` returned: unless the engine holds it, it is settled (sent
        with its ``Transcript``, or ignored by the engine: forgotten)."""
        if ref not in self._held:
            self._pending.pop(ref, None)

    def on_output(self, o: out.Output) -> None:
        """Act on one engine output."""
        if isinstance(o, out.TranscriptHeld):
            if o.ref in self._pending:
                self._held.add(o.ref)
        elif isinstance(o, out.Transcript):
            item = self._pending.pop(o.ref, None)
            self._held.discard(o.ref)
            if item is not None:
                self._send(item[0])
            if o.type == "final":
                self._supersede(o.ref)
        elif isinstance(o, out.TranscriptDropped) and \
                self._pending.pop(o.ref, None) is not None:
            self._held.discard(o.ref)
            self._supersede(o.ref)

    def _supersede(self, ref: Any) -> None:
        """A final was settled: the held interims before it are stale (forgotten)."""
        for r in [r for r, (_, final) in self._pending.items() if not final and r != ref]:
            if r in self._held and (not isinstance(r, int) or not isinstance(ref, int)
                                    or r < ref):
                del self._pending[r]
                self._held.discard(r)

    def clear(self) -> None:
        """Forget everything (the turn was cleared; the session closed)."""
        self._pending.clear()
        self._held.clear()

    def __len__(self) -> int:
        return len(self._held)
