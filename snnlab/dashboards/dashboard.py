"""``Dashboard(experiment)``: live views and controls composed from ``experiment.views()``.

Data flow per browser session::

    experiment thread  --(ring buffers, lock)-->  experiment.frame()
    periodic callback (period_ms)  -- drains one frame, then inside ONE pn.io.hold():
        every view .update(frame)  (only what is new: scope chunks, streamed rows)
        heatmap image replaced only if frame['weights'] has it
        status line (a DOM line: only its text travels), clock row (frame id)
        -> browser acknowledges after painting (under `snnlab serve` on a websocket
           of its own, see snnlab.dashboards.frame_socket)
    back-pressure: a tick is skipped while two frames are unacknowledged (1 s
    timeout); a browser that acknowledges nothing within ``ack_grace`` seconds
    of the first frame is streamed to unthrottled (the status line says so)

In a notebook there is no Bokeh session: the frame's changes collect on the
rendered document and are pushed through Panel's comm once per frame, and the
browser acknowledges on a dedicated comm (see :mod:`snnlab.dashboards.streaming`).

The periodic callback and the experiment's run are started by
``pn.state.onload`` (frames sent before the browser connects would be baked
into the first page and lost) and stopped by ``pn.state.on_session_destroyed``
(closing the tab stops its thread). Exceptions inside callbacks are shown as
notifications and the dashboard keeps running.
"""

from __future__ import annotations

import html
import logging
import sys
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

import panel as pn
from bokeh.models import Div

from . import registry
from .controls import ParameterControls, RewardControls, RunControls, default_notify
from .scope import Scope, StatusLine
from .streaming import BackPressure, FrameClock, RateMeter
from .views import LiveRaster, MembraneTrace, SeriesHistory, StdpWindow, WeightHeatmap

__all__ = ["Dashboard"]

log = logging.getLogger("snnlab.dashboards")


def _in_kernel() -> bool:
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:
        return False
    return ip is not None and getattr(ip, "kernel", None) is not None


def _frame_callback(tick: Any, period_ms: int) -> Any:
    """Start ``tick`` every ``period_ms`` on the current document, as a *background* callback.

    ``pn.state.add_periodic_callback`` would mark the page busy and idle again
    around every call (two watched parameter updates of Panel's global state,
    and a log record): at 30 frames/s in each of many tabs that costs more
    than the frame itself. The callback still runs on the session's event loop
    with the document locked.
    """
    from panel.io.callbacks import PeriodicCallback

    callback = PeriodicCallback(callback=tick, period=period_ms, background=True, log=False)
    callback.start()
    return callback


class Dashboard(pn.viewable.Viewer):
    """A live dashboard for one experiment.

    Parameters
    ----------
    experiment : snnlab.lab.Experiment
        What to show and steer (one per browser session).
    title : str, optional
        Heading; defaults to the experiment's class name.
    window : int
        Steps shown in raster and trace views.
    period_ms : int
        Frame period of the periodic callback (30 ms: up to 33 frames/s).
    autorun : bool
        Start running the experiment when the page loads.
    max_in_flight, ack_timeout : int, float
        Back-pressure: unacknowledged frames allowed, and seconds before one
        more frame is sent without an acknowledgement.
    ack_grace : float
        Seconds after the first frame within which the browser must
        acknowledge one; otherwise it is treated as not acknowledging and
        frames go out every period (unthrottled).
    status_interval : float
        While the simulation runs, the status line is rewritten at most this
        often (seconds).
    app_name : str
        Name reported by :func:`snnlab.dashboards.registry.snapshot`.
    """

    def __init__(
        self,
        experiment: Any,
        *,
        title: str | None = None,
        window: int = 200,
        period_ms: int = 30,
        autorun: bool = True,
        max_in_flight: int = 2,
        ack_timeout: float = 1.0,
        ack_grace: float = 3.0,
        app_name: str = "",
        status_interval: float = 0.25,
    ) -> None:
        super().__init__()
        for attr in ("frame", "views", "run", "pause", "step", "reset", "lock"):
            if not hasattr(experiment, attr):
                raise TypeError(
                    f"experiment must follow the snnlab.lab.Experiment contract (missing {attr!r}), "
                    f"got {type(experiment).__name__}"
                )
        if isinstance(period_ms, bool) or not isinstance(period_ms, int) or period_ms < 1:
            raise ValueError(f"period_ms must be an integer >= 1 (milliseconds), got {period_ms!r}")
        self.experiment = experiment
        self.title = title or type(experiment).__name__
        self.app_name = app_name or type(experiment).__name__
        self.period_ms = period_ms
        if isinstance(status_interval, bool) or not isinstance(status_interval, (int, float)) \
                or not status_interval >= 0:
            raise ValueError(f"status_interval must be a number >= 0 (seconds), got {status_interval!r}")
        self.status_interval = float(status_interval)
        self.autorun = bool(autorun)
        self.messages: deque[tuple[str, str]] = deque(maxlen=100)
        self.clock = FrameClock(BackPressure(max_in_flight, ack_timeout, grace=ack_grace))
        self.sent_rate = RateMeter()
        self.frames = 0
        self.last_frame: dict[str, Any] | None = None
        self.callback: Any = None
        self.started = False
        self.stopped = False
        self._last_error: str | None = None
        self._params_changed = False
        self._dropped = 0
        #: seconds a tick waits for the experiment's lock before skipping the frame (ten times
        #: as long right after a skip: longer than the runner holds the lock in one go)
        self.lock_wait = 0.002
        self._skipped_last = False
        #: ticks skipped because the runner held the experiment's lock
        self.lock_skips = 0

        spec = experiment.views()
        self.spec = spec
        self.window = window
        self.views: list[Any] = []
        raster = spec.get("raster") or {}
        self.raster = LiveRaster({n: m["size"] for n, m in raster.items()}, window=window) if raster else None
        self.traces = [
            MembraneTrace(n, m["labels"], threshold=m.get("threshold"), window=window,
                          title=m.get("label") or n)
            for n, m in (spec.get("traces") or {}).items()
        ]
        self.heatmaps = [
            WeightHeatmap(n, m["shape"], image_shape=m.get("rf_shape"), title=m.get("label") or n,
                          vmin=m.get("vmin"), vmax=m.get("vmax"))
            for n, m in (spec.get("weights") or {}).items()
        ]
        theory = getattr(experiment, "theoretical_window", None)
        self.windows = [
            StdpWindow(n, theory=theory if callable(theory) else None, title=m.get("label") or n,
                       x_label=m.get("x_label"), y_label=m.get("y_label"))
            for n, m in (spec.get("points") or {}).items()
        ]
        series = spec.get("series") or {}
        self.history = SeriesHistory({n: len(m.get("labels") or [n]) for n, m in series.items()},
                                     labels={n: m.get("labels") for n, m in series.items()},
                                     title="history") if series else None
        for v in (self.raster, *self.traces, *self.heatmaps, *self.windows, self.history):
            if v is not None:
                self.views.append(v)

        exclude = {"speed", "seed", "auto_reward"}
        self.run_controls = RunControls(experiment, notify=self.notify, on_reset=self.clear_views)
        self.parameters = ParameterControls(experiment, exclude=exclude, notify=self.notify)
        self.reward = RewardControls(experiment, notify=self.notify) if callable(
            getattr(experiment, "give_reward", None)) else None
        # a DOM line replaced in place (a new Bokeh Div text would make the browser lay out the
        # whole page again); the clock source (and through its callback the acknowledgement
        # model) joins the document as a tag of a hidden Div that never changes, so no
        # plot has to be repainted for it every frame
        self.status = StatusLine(text=self._status_html(0, 0.0, 0.0, False), sizing_mode="stretch_width",
                                 height=22, margin=(0, 10, 0, 10))
        self._clock_holder = Div(text="", visible=False, tags=[self.clock.source])
        self._status_text = ""
        self._status_at = -float("inf")
        self._status_running = False
        self._notebook = False
        experiment.param.watch(self._on_param, [n for n in experiment.param if n != "name"])
        self.layout = self._build_layout()
        for scope in self.layout.select(Scope):  # their chunks follow the frame's channel
            scope.frame_clock = self.clock

    # ------------------------------------------------------------------ layout
    def _build_layout(self) -> pn.viewable.Viewable:
        side: list[Any] = [self.run_controls, self.parameters]
        if self.reward is not None:
            side.append(self.reward)
        main: list[Any] = []
        if self.raster is not None:
            main.append(self.raster)
        main.extend(self.traces)
        right: list[Any] = [*self.heatmaps, *self.windows]
        if self.history is not None:
            right.append(self.history)
        columns: list[Any] = [pn.Column(*main, sizing_mode="stretch_width", min_width=420)]
        if right:
            columns.append(pn.Column(*right, sizing_mode="stretch_width", min_width=320))
        body = pn.Row(*columns, sizing_mode="stretch_width")
        return pn.Column(
            pn.pane.HTML(f"<h2 style='margin:4px 0'>{html.escape(self.title)}</h2>", margin=(0, 10)),
            self.status,
            pn.pane.Bokeh(self._clock_holder, visible=False, margin=0),
            pn.Row(pn.Column(*side, width=370), body, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        self._schedule_start()
        return self.layout

    def servable(self, title: str | None = None, **kwargs: Any) -> pn.viewable.Viewable:
        """Mark the dashboard servable (``panel serve``) and start it when the page loads."""
        self._schedule_start()
        return self.layout.servable(title=title or self.title, **kwargs)

    # ------------------------------------------------------------------ lifecycle
    def _schedule_start(self) -> None:
        if self.started:
            return
        if pn.state.curdoc is not None:  # a served page: start when the browser has loaded it
            self.started = True
            self.clock.connect_socket()  # under `snnlab serve`; before rendering: the token travels
            pn.state.onload(self._on_load)
            pn.state.on_session_destroyed(self._on_session_destroyed)
        elif _in_kernel():  # a notebook: frames go out through Panel's comm as soon as it shows
            self._notebook = True
            self.clock.connect_comm()  # before rendering: the comm id travels in the document
            self.start(periodic=True)

    def _on_load(self) -> None:
        self.start()

    def _on_session_destroyed(self, session_context: Any) -> None:
        self.stop()

    def start(self, periodic: bool | None = None) -> None:
        """Start the periodic frame callback and (with ``autorun``) the experiment's run.

        ``periodic``: schedule the frame callback (default: only when there is
        a Bokeh document, i.e. in a served page).
        """
        self.started = True
        self.stopped = False
        registry.register(self)
        if self.autorun:
            try:
                self.experiment.run()
            except Exception as err:
                self.notify(f"run failed: {err}", "error")
        if periodic is None:
            periodic = pn.state.curdoc is not None
        if self.callback is None and periodic:
            self.callback = _frame_callback(self.tick, self.period_ms)
        self.run_controls.sync()

    def stop(self) -> None:
        """Stop the frame callback and the experiment's thread (idempotent)."""
        if self.stopped:
            return
        self.stopped = True
        if self.callback is not None:
            try:
                self.callback.stop()
            except Exception:
                log.debug("periodic callback already stopped", exc_info=True)
            self.callback = None
        self.clock.disconnect_socket()
        try:
            close = getattr(self.experiment, "close", None) or self.experiment.pause
            close()
        finally:
            registry.unregister(self)

    # ------------------------------------------------------------------ per-frame work
    def notify(self, message: str, level: str = "error") -> None:
        """Show a message to the person (notification + log) and keep it in ``messages``."""
        self.messages.append((level, message))
        default_notify(message, level)

    def _on_param(self, *events: Any) -> None:
        self._params_changed = True

    def clear_views(self) -> None:
        """Empty the streaming views (after a reset)."""
        with pn.io.hold():
            for view in self.views:
                view.clear()

    def tick(self) -> bool:
        """One periodic-callback tick: send one frame unless back-pressure says wait.

        Returns True when a frame was sent. Exceptions are shown, never raised.
        """
        try:
            if not self.clock.may_send():
                return False
            # the event loop serves every session of the server: never wait for a runner
            # that is mid-batch; try again on the next tick instead
            # (a tick after a skipped one waits long enough to be sure to get it)
            lock = self.experiment.lock
            if not lock.acquire(timeout=self.lock_wait if not self._skipped_last else 10 * self.lock_wait):
                self.lock_skips += 1
                self._skipped_last = True
                return False
            self._skipped_last = False
            try:
                frame = self.experiment.frame()
            finally:
                lock.release()
            self.apply(frame)
            return True
        except Exception as err:
            message = f"{type(err).__name__}: {err}"
            if message != self._last_error:
                self.notify(f"dashboard update failed: {message}", "error")
                self._last_error = message
            log.debug("tick failed", exc_info=True)
            return False

    def apply(self, frame: Mapping[str, Any]) -> None:
        """Push one frame to every view as one batched message."""
        stats = frame.get("stats") or {}
        error = stats.get("error")
        if error and error != self._last_error:
            self._last_error = error
            self.notify(f"simulation stopped: {error}", "error")
        self._dropped += int(stats.get("dropped", 0))
        t = int(frame.get("t", 0))
        with pn.io.hold():
            self.clock.begin()
            for view in self.views:
                view.update(frame)
            if self._params_changed:
                self._params_changed = False
                self._refresh_from_params()
            self.run_controls.sync()
            running = bool(stats.get("running", False))
            now = time.monotonic()
            # while the simulation runs, at most every `status_interval` seconds (a
            # person cannot read faster, and each change is a message)
            due = now - self._status_at >= self.status_interval
            if not running or running != self._status_running or due:
                text = self._status_html(
                    t, float(frame.get("time_ms", t)), float(stats.get("steps_per_second", 0.0)), running
                )
                if text != self._status_text:
                    self.status.show(text)
                    self._status_text = text
                self._status_at, self._status_running = now, running
            self.clock.mark(t)
        if self._notebook:
            self._push_notebook()
        self.sent_rate.tick()
        self.frames += 1
        self.last_frame = dict(frame)

    def _refresh_from_params(self) -> None:
        self.parameters.sync()
        if self.reward is not None:
            self.reward.sync()
        try:
            spec = self.experiment.views()
        except Exception:
            spec = self.spec
        for view in self.traces:
            meta = (spec.get("traces") or {}).get(view.key) or {}
            view.set_threshold(meta.get("threshold"))
        for view in self.windows:
            view.refresh_theory()

    def _push_notebook(self) -> None:
        """Send the frame's changes through Panel's comm (one message per rendered copy)."""
        from panel.io.notebook import push
        from panel.io.state import state

        for ref in list(self.layout._models):
            view = state._views.get(ref)
            if view is None:
                continue
            _, root, doc, comm = view
            if comm is not None and "embedded" not in root.tags:
                push(doc, comm)

    @property
    def frame_rate(self) -> float:
        """Frames per second reaching the browser: acknowledged frames, or sent ones
        when the browser does not acknowledge."""
        if self.clock.pressure.throttled:
            return self.clock.acked.rate
        return self.sent_rate.rate

    def _status_html(self, t: int, time_ms: float, sps: float, running: bool) -> str:
        state = "running" if running else "paused"
        pressure = self.clock.pressure
        if pressure.throttled:
            frames = f"{self.frame_rate:.1f} frames/s · skipped {pressure.skipped} frames"
        else:
            frames = f"{self.frame_rate:.1f} frames/s sent (browser not acknowledging: unthrottled)"
        return (
            "<div class='snnlab-status' style='font-family:monospace'>"
            f"t = <span class='snnlab-t'>{t}</span> steps ({time_ms / 1000.0:.3f} s simulated) · "
            f"{sps:.0f} steps/s · {frames} · dropped {self._dropped} events · {state}</div>"
        )
