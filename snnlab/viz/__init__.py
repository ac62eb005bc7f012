"""snnlab.viz: pure functions from recorded data to Plotly figures.

Every function takes numpy arrays (or torch tensors, or lists) in the layout
that :class:`snnlab.lab.Experiment` records and returns a
``plotly.graph_objects.Figure``. No server is needed: figures display in a
notebook (``fig.show()`` or as a cell's value), export to self-contained HTML
(:func:`export_html`) or, with ``kaleido``, to images (:func:`export_image`).

=============================  ==============================================
:func:`raster`                 spike events ``(steps, neurons)`` as a raster
:func:`raster_layers`          several layers' rasters sharing the time axis
:func:`membrane_traces`        membrane potentials with the threshold line
:func:`time_series`            any recorded series, one line per column
:func:`weight_heatmap`         a weight matrix ``[n_post, n_pre]``
:func:`receptive_fields`       each post neuron's weights as an image, in a grid
:func:`weight_snapshots`       weight matrices over time, with a slider
:func:`stdp_window`            measured ``(Δt, Δw)`` over the theoretical window
:func:`reward_history`         reward, its moving average, eligibility trace
:func:`firing_rate_histogram`  distribution of firing rates across neurons
:func:`fi_curve`               firing rate against input current
:func:`figure_from_frame`      any of the above from an ``Experiment.frame()``
:func:`export_html`            figure(s) to an offline HTML page
=============================  ==============================================

Invalid input raises ``ValueError`` / ``TypeError`` naming the argument.
This package imports plotly (and numpy) only.
"""

from __future__ import annotations

from .curves import fi_curve
from .export import PLOTLY_CONFIG, export_html, export_image, kaleido_available
from .frames import VIEW_KINDS, figure_from_experiment, figure_from_frame, merge_frames
from .raster import WEBGL_THRESHOLD, raster, raster_layers, spike_xy
from .rates import firing_rate_histogram, firing_rates
from .reward import moving_average, reward_history
from .stdp import stdp_window, theory_curve
from .style import COLORS, PALETTE
from .traces import membrane_traces, time_series
from .weights import (
    color_range,
    receptive_field_mosaic,
    receptive_fields,
    weight_heatmap,
    weight_snapshots,
)

__all__ = [
    "COLORS",
    "PALETTE",
    "PLOTLY_CONFIG",
    "VIEW_KINDS",
    "WEBGL_THRESHOLD",
    "color_range",
    "export_html",
    "export_image",
    "fi_curve",
    "figure_from_experiment",
    "figure_from_frame",
    "firing_rate_histogram",
    "firing_rates",
    "kaleido_available",
    "membrane_traces",
    "merge_frames",
    "moving_average",
    "raster",
    "raster_layers",
    "receptive_field_mosaic",
    "receptive_fields",
    "reward_history",
    "spike_xy",
    "stdp_window",
    "theory_curve",
    "time_series",
    "weight_heatmap",
    "weight_snapshots",
]
