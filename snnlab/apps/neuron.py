"""App ``neuron``: One IF / LIF / Izhikevich neuron under a step, ramp or noisy current.

``snnlab serve neuron`` or ``panel serve snnlab/apps/neuron.py`` (this module turns on inline
resources itself, so the page needs no internet).
"""

from __future__ import annotations

from typing import Any

import panel as pn

from snnlab.dashboards import Dashboard

# Panel's and Bokeh's JavaScript and CSS served by the server itself (no CDN), also under a
# plain `panel serve snnlab/apps/<app>.py`, which has no option for it
pn.config.inline = True

TITLE = "Neuron explorer"


def create(*, period_ms: int = 30, window: int = 200, autorun: bool = True, **options: Any) -> Dashboard:
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
    from snnlab.dashboards.server import limit_torch_threads

    limit_torch_threads()
    create().servable(title=f"snnlab · {TITLE}")
