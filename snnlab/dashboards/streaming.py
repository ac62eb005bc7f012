"""Frame transport: browser acknowledgements and back-pressure.

Every frame the server sends ends with one row streamed into a small *clock*
source (``frame`` id and simulated ``t``). A ``CustomJS`` callback on that
source's ``streaming`` event waits for the next animation frame in the browser
and then writes the frame id into a :class:`FrameAck` model, which Bokeh syncs
back to the server. :class:`BackPressure` decides, before each tick, whether a
new frame may be sent:

.. math::

    \\text{send} \\iff (\\text{sent} - \\text{acked}) < \\text{max\\_in\\_flight}
    \\;\\lor\\; (t_\\text{now} - t_\\text{last progress}) \\ge \\text{timeout}

so a slow browser never accumulates a backlog, and a lost acknowledgement
stalls the stream for at most ``timeout`` seconds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bokeh.core.properties import Int
from bokeh.model import DataModel
from bokeh.models import ColumnDataSource, CustomJS

__all__ = ["BackPressure", "FrameAck", "FrameClock", "RateMeter"]


class FrameAck(DataModel):
    """A tiny model the browser writes the id of the last applied frame into."""

    __view_model__ = "SnnlabFrameAck"

    frame = Int(default=-1, help="id of the last frame the browser applied and painted")


_ACK_JS = """
const ids = source.data.frame;
if (ids == null || ids.length === 0) { return; }
const id = ids[ids.length - 1];
const raf = (typeof window !== 'undefined' && window.requestAnimationFrame)
    ? window.requestAnimationFrame.bind(window) : ((f) => setTimeout(f, 0));
raf(() => { if (id > ack.frame) { ack.frame = id; } });
"""


class BackPressure:
    """Allow at most ``max_in_flight`` unacknowledged frames, with a timeout.

    Parameters
    ----------
    max_in_flight : int
        Frames that may be sent but not yet acknowledged (``>= 1``; two keeps
        the throughput of a fast link while bounding the backlog).
    timeout : float
        Seconds without an acknowledgement after which one more frame is sent
        anyway (``> 0``).
    clock : callable
        Monotonic clock in seconds (injectable for tests).
    """

    def __init__(
        self, max_in_flight: int = 2, timeout: float = 1.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an integer >= 1, got {max_in_flight!r}")
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a number > 0 (seconds), got {timeout!r}")
        self.max_in_flight = max_in_flight
        self.timeout = float(timeout)
        self.clock = clock
        self.sent = -1
        self.acked = -1
        self.skipped = 0
        self.timeouts = 0
        self._last_progress = clock()

    @property
    def in_flight(self) -> int:
        """Frames sent and not yet acknowledged."""
        return self.sent - self.acked

    def may_send(self) -> bool:
        """Whether a frame may be sent now; counts a skipped tick when not."""
        if self.in_flight < self.max_in_flight:
            return True
        if self.clock() - self._last_progress >= self.timeout:
            self.timeouts += 1
            return True
        self.skipped += 1
        return False

    def next_id(self) -> int:
        """Register a frame as sent and return its id (0, 1, 2, ...)."""
        if self.in_flight >= self.max_in_flight:
            # sending on a timeout: forget the frames presumed lost
            self.acked = self.sent
        self.sent += 1
        if self.in_flight == 1:
            self._last_progress = self.clock()
        return self.sent

    def ack(self, frame_id: int) -> None:
        """Record that the browser applied every frame up to ``frame_id``."""
        frame_id = min(int(frame_id), self.sent)
        if frame_id > self.acked:
            self.acked = frame_id
            self._last_progress = self.clock()

    def reset(self) -> None:
        """Forget all frames (a new browser connection starts from scratch)."""
        self.sent = self.acked = -1
        self._last_progress = self.clock()


class FrameClock:
    """The clock source and its acknowledgement wiring.

    ``source`` holds one row ``{'frame': [id], 't': [step]}``; streaming into it
    (``rollover=1``) is the last change of each frame. ``ack`` is the
    :class:`FrameAck` the browser writes back; its ``frame`` value is fed to
    the :class:`BackPressure` ``pressure``.
    """

    def __init__(self, pressure: BackPressure | None = None) -> None:
        self.pressure = pressure or BackPressure()
        self.ack = FrameAck()
        self.source = ColumnDataSource(data={"frame": [], "t": []})
        self.source.js_on_change("streaming", CustomJS(args={"source": self.source, "ack": self.ack},
                                                       code=_ACK_JS))
        self.ack.on_change("frame", self._on_ack)

    def _on_ack(self, attr: str, old: int, new: int) -> None:
        self.pressure.ack(new)

    def may_send(self) -> bool:
        """See :meth:`BackPressure.may_send`."""
        return self.pressure.may_send()

    def mark(self, t: int) -> int:
        """Stream the closing row of a frame for simulated step ``t``; returns the frame id."""
        frame_id = self.pressure.next_id()
        self.source.stream({"frame": [frame_id], "t": [int(t)]}, rollover=1)
        return frame_id


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds."""

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = float(window)
        self.clock = clock
        self._times: deque[float] = deque()

    def tick(self) -> None:
        """Record one event now."""
        now = self.clock()
        self._times.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    @property
    def rate(self) -> float:
        """Events per second in the last ``window`` seconds."""
        now = self.clock()
        self._trim(now)
        if len(self._times) < 2:
            return 0.0
        span = max(now - self._times[0], 1e-9)
        return (len(self._times) - 1) / span if span > 0 else 0.0
