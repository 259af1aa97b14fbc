"""What every host around the engine shares: the scheduler that merges the engine's
deadlines with the host's own timers."""

from .scheduler import Scheduler

__all__ = ["Scheduler"]
