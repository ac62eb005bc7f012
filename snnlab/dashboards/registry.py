"""Which experiments the live dashboards of this process own (for status and tests).

Every :class:`~snnlab.dashboards.Dashboard` that starts registers itself;
:func:`snapshot` reports the live sessions and how many experiments still
have a running simulation thread. Experiments are held weakly, so a closed
and collected experiment disappears from the count by itself (a running
thread keeps its experiment alive, so it is never missed).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

__all__ = ["register", "running_experiments", "snapshot", "unregister"]

_lock = threading.Lock()
_dashboards: dict[int, Any] = {}
_experiments: weakref.WeakSet[Any] = weakref.WeakSet()


def register(dashboard: Any) -> None:
    """Record a started dashboard and its experiment."""
    with _lock:
        _dashboards[id(dashboard)] = dashboard
        _experiments.add(dashboard.experiment)


def unregister(dashboard: Any) -> None:
    """Forget a stopped dashboard (its experiment stays weakly tracked)."""
    with _lock:
        _dashboards.pop(id(dashboard), None)


def running_experiments() -> int:
    """Experiments (of any dashboard ever started here) that are running."""
    with _lock:
        experiments = list(_experiments)
    return sum(1 for e in experiments if bool(getattr(e, "running", False)))


def _plain(value: Any) -> Any:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return repr(value)


def _pressure(pressure: Any) -> dict[str, Any]:
    return {"acked": int(pressure.acked), "acks_received": int(pressure.acks_received),
            "skipped": int(pressure.skipped), "timeouts": int(pressure.timeouts),
            "acknowledging": pressure.acknowledging}


def snapshot() -> dict[str, Any]:
    """JSON-ready summary: live dashboards and running threads.

    Per dashboard: app name, ``t``, whether its experiment runs, frames sent,
    parameter values and, per weight heatmap, how often it was replaced and
    the sum of the weights it shows.
    """
    with _lock:
        dashboards = list(_dashboards.values())
    sessions = []
    for d in dashboards:
        exp = d.experiment
        names = [n for n in exp.param if n != "name"]
        sessions.append({
            "app": d.app_name,
            "t": int(getattr(exp, "t", 0)),
            "running": bool(getattr(exp, "running", False)),
            "frames_sent": int(d.clock.pressure.sent + 1),
            "pressure": _pressure(d.clock.pressure),
            "ack_channels": dict(d.clock.channels),
            "frame_channels": dict(d.clock.frames),
            "params": {n: _plain(getattr(exp, n)) for n in names},
            "weights": {h.key: {"replacements": h.replacements, "checksum": h.checksum}
                        for h in getattr(d, "heatmaps", [])},
        })
    return {"sessions": sessions, "live_sessions": len(sessions), "running_threads": running_experiments()}
