"""App ``stdp-window``: Pre/post pairing protocol: measured weight change against the rule's window.

``snnlab serve stdp-window`` or ``panel serve snnlab/apps/stdp_window.py`` (this module turns on inline
resources itself, so the page needs no internet).
"""

from __future__ import annotations

from typing import Any

import panel as pn

from snnlab.dashboards import Dashboard

# Panel's and Bokeh's JavaScript and CSS served by the server itself (no CDN), also under a
# plain `panel serve snnlab/apps/<app>.py`, which has no option for it
pn.config.inline = True

TITLE = "STDP window"


def create(*, period_ms: int = 30, window: int = 200, autorun: bool = True, **options: Any) -> Dashboard:
    """A :class:`Dashboard` over a new :class:`snnlab.lab.STDPWindow`.

    ``options`` go to the experiment's constructor; the rest to :class:`Dashboard`.
    """
    from snnlab.dashboards.server import configure_panel
    from snnlab.lab import STDPWindow

    configure_panel()
    experiment = STDPWindow(**options)
    return Dashboard(experiment, title=TITLE, period_ms=period_ms, window=window, autorun=autorun,
                     app_name="stdp-window")


if __name__.startswith("bokeh"):
    from snnlab.dashboards.server import limit_torch_threads

    limit_torch_threads()
    create().servable(title=f"snnlab · {TITLE}")
