"""turnfsm: turn-taking for voice agents as an explicit, declared, testable state machine."""

from . import events, outputs
from .chart import Chart
from .core import Engine, ObserverFailed, StepRecord, default_chart, load_chart, read_chart
from .errors import ChartError, ConfigError, EngineFailed, InputError, TraceError, TurnFsmError
from .host import Scheduler
from .options import EndpointingOptions, EngineOptions, UserTurnLimit

#: The package's version (pyproject.toml's; ``turnfsm --version``)
__version__ = "0.1.0"

__all__ = [
    "Chart",
    "ChartError",
    "ConfigError",
    "EndpointingOptions",
    "Engine",
    "EngineFailed",
    "EngineOptions",
    "InputError",
    "ObserverFailed",
    "Scheduler",
    "StepRecord",
    "TraceError",
    "TurnFsmError",
    "UserTurnLimit",
    "default_chart",
    "events",
    "load_chart",
    "outputs",
    "read_chart",
]
