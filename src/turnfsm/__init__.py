"""turnfsm: turn-taking for voice agents as an explicit, declared, testable state machine."""

import gc as _gc

# Importing the package makes some 19,000 objects (with the modules it imports) that live as
# long as the process: the cyclic collector's passes over them while they are made find
# nothing (about 5% of the import's CPU), so it pauses until they are made, then resumes as
# it was.
_gc_was_on = _gc.isenabled()
_gc.disable()
try:
    from . import events, outputs
    from .chart import Chart
    from .core import Engine, ObserverFailed, StepRecord, default_chart, load_chart, read_chart
    from .errors import ChartError, ConfigError, EngineFailed, InputError, TraceError, TurnFsmError
    from .host import Scheduler
    from .options import EndpointingOptions, EngineOptions, UserTurnLimit
finally:
    if _gc_was_on:
        _gc.enable()

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
