"""App ``raster``: Poisson inputs driving a LIF population (1,000 neurons by default).

``snnlab serve raster`` or ``panel serve snnlab/apps/raster.py`` (this module turns on inline
resources itself, so the page needs no internet).
"""

from __future__ import annotations

from typing import Any

import panel as pn

from snnlab.dashboards import Dashboard

# Panel's and Bokeh's JavaScript and CSS served by the server itself (no CDN), also under a
# plain `panel serve snnlab/apps/<app>.py`, which has no option for it
pn.config.inline = True

TITLE = "Population raster"


def create(*, period_ms: int = 30, window: int = 200, autorun: bool = True, **options: Any) -> Dashboard:
    """A :class:`Dashboard` over a new :class:`snnlab.lab.PopulationRaster`.

    ``options`` go to the experiment's constructor; the rest to :class:`Dashboard`.
    """
    from snnlab.dashboards.server import configure_panel
    from snnlab.lab import PopulationRaster

    configure_panel()
    experiment = PopulationRaster(**options)
    return Dashboard(experiment, title=TITLE, period_ms=period_ms, window=window, autorun=autorun,
                     app_name="raster")


if __name__.startswith("bokeh"):
    from snnlab.dashboards.server import limit_torch_threads

    limit_torch_threads()
    create().servable(title=f"snnlab · {TITLE}")
