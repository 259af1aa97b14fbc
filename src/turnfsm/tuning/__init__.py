"""Offline tuning: replay labelled sessions under a grid of settings and score each
(``turnfsm tune``); see ``docs/tuning.md``."""

from .grid import OPTIONS, PROFILES, Grid, GridError, Setting, parse_grid, read_grid
from .plan import SweepResult, plan
from .report import pareto_front, recommend
from .sweep import sweep, sweep_pool, sweep_serial
from .tally import Tally

__all__ = ["OPTIONS", "PROFILES", "Grid", "GridError", "Setting", "SweepResult", "Tally",
           "pareto_front", "parse_grid", "plan", "read_grid", "recommend", "sweep",
           "sweep_pool", "sweep_serial"]
