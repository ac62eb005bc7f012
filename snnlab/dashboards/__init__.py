"""Panel dashboards for live experiments.

Components (each a ``pn.viewable.Viewer``): :class:`LiveRaster`,
:class:`MembraneTrace`, :class:`WeightHeatmap`, :class:`StdpWindow`,
:class:`SeriesHistory`, :class:`RewardControls`, :class:`ParameterControls`,
:class:`RunControls`, and :class:`Dashboard` composing them for one
:class:`snnlab.lab.Experiment`. The scrolling views (raster, traces,
histories) are canvas components that receive only what is new each frame
(:mod:`snnlab.dashboards.scope`); the weight heatmap and STDP window are Bokeh
figures. All changes of a frame travel as one message, with browser
acknowledgements for back-pressure (:mod:`snnlab.dashboards.streaming`).
:mod:`snnlab.dashboards.server` serves the apps of :mod:`snnlab.apps`
(``snnlab serve``).
"""

from __future__ import annotations

from .controls import ParameterControls, RewardControls, RunControls
from .dashboard import Dashboard
from .streaming import BackPressure, FrameAck, FrameClock
from .views import LiveRaster, MembraneTrace, SeriesHistory, StdpWindow, WeightHeatmap, receptive_field_grid

__all__ = [
    "BackPressure",
    "Dashboard",
    "FrameAck",
    "FrameClock",
    "LiveRaster",
    "MembraneTrace",
    "ParameterControls",
    "RewardControls",
    "RunControls",
    "SeriesHistory",
    "StdpWindow",
    "WeightHeatmap",
    "receptive_field_grid",
]
