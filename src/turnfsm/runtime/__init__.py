"""The asyncio runtime: a :class:`Session` per conversation, the protocols it talks to, a
rule-based end-of-turn model, and a virtual-clock event loop for tests and replays."""

from .model import RuleBasedModel
from .protocols import EouModel, Hooks, InterruptionDetector, SttControl, TurnContext
from .session import CommitCancelled, Session, SessionClosed
from .virtual import VirtualClockLoop, run_virtual

__all__ = ["CommitCancelled", "EouModel", "Hooks", "InterruptionDetector", "RuleBasedModel",
           "Session", "SessionClosed", "SttControl", "TurnContext", "VirtualClockLoop",
           "run_virtual"]
