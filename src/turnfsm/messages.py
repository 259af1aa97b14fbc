"""Errors as the commands print them: one line each."""

from __future__ import annotations

from .errors import ChartError, TurnFsmError


def one_line(error: TurnFsmError) -> str:
    """The error as one line: a chart or profile error gives its first problem and how
    many more there are (``turnfsm check`` lists them all)."""
    if isinstance(error, ChartError) and error.problems:
        first = " ".join(error.problems[0].split())
        more = len(error.problems) - 1
        if more:
            first += (f" (and {more} more problem{'s' if more > 1 else ''}: `turnfsm check` "
                      f"lists every one)")
        return first
    return " ".join(str(error).split())
