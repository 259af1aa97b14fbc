"""Error types. Every error turnfsm raises on purpose derives from :class:`TurnFsmError`."""

from __future__ import annotations


class TurnFsmError(Exception):
    """Base class of every error turnfsm raises deliberately."""


class ChartError(TurnFsmError):
    """The state chart is malformed. ``problems`` lists every problem with its YAML location."""

    def __init__(self, problems: list[str], source: str = "states.yaml") -> None:
        self.problems = list(problems)
        self.source = source
        if len(self.problems) == 1:  # one problem: one line, naming where
            super().__init__(self.problems[0])
            return
        head = f"{source}: {len(problems)} problem(s) in the chart"
        super().__init__(head + "\n" + "\n".join(f"  {p}" for p in self.problems))


class TraceError(TurnFsmError):
    """A trace file is malformed: names the file, the line and the field."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None,
                 field: str | None = None) -> None:
        self.path = path
        self.line = line
        self.field = field
        where = path or "<trace>"
        if line is not None:
            where += f":{line}"
        if field is not None:
            where += f": field {field!r}"
        super().__init__(f"{where}: {message}")


class ConfigError(TurnFsmError):
    """An engine option is invalid (for example a negative backchannel boundary)."""


class InputError(TurnFsmError):
    """An input event is invalid (NaN, time going backwards, wrong type). Nothing is changed."""


class EngineFailed(TurnFsmError):
    """A step of the engine failed part-way (an exception inside a rule or hook it called).

    The step's outputs were discarded and the engine is in its terminal error state: every
    later call raises ``EngineFailed`` too. ``input`` names what the failed step processed
    (an input event, or the timer that fired); the original exception is ``__cause__``.
    """

    def __init__(self, message: str, *, input: object = None) -> None:
        self.input = input
        super().__init__(message)
