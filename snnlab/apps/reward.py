"""App ``reward``: Reward-modulated STDP: teach a target output neuron to win.

``snnlab serve reward`` or ``panel serve snnlab/apps/reward.py --inline``.
"""

from __future__ import annotations

from typing import Any

from snnlab.dashboards import Dashboard

TITLE = "Reward learning"


def create(*, period_ms: int = 33, window: int = 200, autorun: bool = True, **options: Any) -> Dashboard:
    """A :class:`Dashboard` over a new :class:`snnlab.lab.RewardLearning`.

    ``options`` go to the experiment's constructor; the rest to :class:`Dashboard`.
    """
    from snnlab.dashboards.server import configure_panel
    from snnlab.lab import RewardLearning

    configure_panel()
    experiment = RewardLearning(**options)
    return Dashboard(experiment, title=TITLE, period_ms=period_ms, window=window, autorun=autorun,
                     app_name="reward")


if __name__.startswith("bokeh"):
    create().servable(title=f"snnlab · {TITLE}")
