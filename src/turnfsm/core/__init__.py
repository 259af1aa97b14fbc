"""The sans-I/O engine: timestamped events in, outputs and requests out.

:class:`Engine` is the facade; the chart's guards and actions are the rules in
:mod:`turnfsm.core.rules`, dispatched by :mod:`turnfsm.core.dispatch` (or, as a proven-equal
alternative, :mod:`turnfsm.core.machines` on ``transitions``).
"""

from .charts import default_chart, load_chart, read_chart
from .engine import MAX_INBOX, Engine, ObserverFailed, StepObserver, StepRecord
from .registry import RULES, Registry
from .timers import Timer, TimerKind

__all__ = ["MAX_INBOX", "RULES", "Engine", "ObserverFailed", "Registry",
           "StepObserver", "StepRecord", "Timer", "TimerKind", "default_chart", "load_chart",
           "read_chart"]
