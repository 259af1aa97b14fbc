"""turnfsm: turn-taking for voice agents as an explicit, declared, testable state machine."""

from . import events, outputs
from .chart import Chart, default_chart, load_chart, read_chart
from .endpointing import EndpointingOptions
from .engine import Engine, EngineOptions, UserTurnLimit
from .errors import ChartError, ConfigError, InputError, TraceError, TurnFsmError

__all__ = [
    "Chart",
    "ChartError",
    "ConfigError",
    "EndpointingOptions",
    "Engine",
    "EngineOptions",
    "InputError",
    "TraceError",
    "TurnFsmError",
    "UserTurnLimit",
    "default_chart",
    "events",
    "load_chart",
    "outputs",
    "read_chart",
]
