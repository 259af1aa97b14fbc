"""turnfsm: turn-taking for voice agents as an explicit, declared, testable state machine."""

from . import _attrs_code

_attrs_code.install()  # attrs' generated methods from the bytecode cache (see the module)

from . import events, outputs  # noqa: E402
from .chart import Chart  # noqa: E402
from .core import Engine, ObserverFailed, StepRecord, default_chart, load_chart, read_chart  # noqa: E402
from .errors import ChartError, ConfigError, EngineFailed, InputError, TraceError, TurnFsmError  # noqa: E402
from .host import Scheduler  # noqa: E402
from .options import EndpointingOptions, EngineOptions, UserTurnLimit  # noqa: E402

_attrs_code.flush()

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
