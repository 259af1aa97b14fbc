"""Calling the app's hooks from an adapter: a hook that raises is logged, never propagated."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger("turnfsm.adapters")


def call_hook(hooks: object | None, name: str, arg: Any,
              spawn: Callable[[Awaitable[Any]], object] | None = None) -> Any:
    """Call the app's hook ``name`` (if it has one) with ``arg``; a hook that raises is
    logged, never propagated; an awaitable result is handed to ``spawn`` (or returned)."""
    fn = getattr(hooks, name, None)
    if fn is None:
        return None
    try:
        r = fn(arg)
    except Exception:
        log.exception("hook %s raised on %r", name, arg)
        return None
    if inspect.isawaitable(r) and spawn is not None:
        spawn(_logged(r, f"hook {name}"))
        return None
    return r


async def _logged(aw: Awaitable[Any], what: str) -> None:
    try:
        await aw
    except Exception:
        log.exception("%s raised", what)
