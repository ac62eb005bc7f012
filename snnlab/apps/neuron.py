"""App ``neuron``: One IF / LIF / Izhikevich neuron under a step, ramp or noisy current.

``snnlab serve neuron`` or ``panel serve snnlab/apps/neuron.py --inline``.
"""

from __future__ import annotations

from typing import Any

from snnlab.dashboards import Dashboard

TITLE = "Neuron explorer"


def create(*, period_ms: int = 33, window: int = 200, autorun: bool = True, **options: Any) -> Dashboard:
    """A :class:`Dashboard` over a new :class:`snnlab.lab.NeuronExplorer`.

    ``options`` go to the experiment's constructor; the rest to :class:`Dashboard`.
    """
    from snnlab.dashboards.server import configure_panel
    from snnlab.lab import NeuronExplorer

    configure_panel()
    experiment = NeuronExplorer(**options)
    return Dashboard(experiment, title=TITLE, period_ms=period_ms, window=window, autorun=autorun,
                     app_name="neuron")


if __name__.startswith("bokeh"):
    create().servable(title=f"snnlab · {TITLE}")
