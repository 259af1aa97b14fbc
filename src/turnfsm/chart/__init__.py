"""The state chart as data: the frozen model, the YAML loader and the diagram exporter.

Nothing here runs a chart or imports the engine; the engine's registry is passed to the
loader as a :class:`Vocabulary`.
"""

from .loader import Vocabulary, load_chart, packaged_chart_path, read_chart
from .model import Chart, EventSpec, Guard, Region, Transition

__all__ = ["Chart", "EventSpec", "Guard", "Region", "Transition", "Vocabulary", "load_chart",
           "packaged_chart_path", "read_chart"]
