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
stalls the stream for at most ``timeout`` seconds. A client that has not
acknowledged a single frame ``grace`` seconds after the first one was sent is
treated as not acknowledging at all: frames then go out at the normal rate
(unthrottled) until an acknowledgement does arrive.

How frames and acknowledgements travel:

* page served by ``snnlab serve``: once the page has opened the frame socket
  (:mod:`snnlab.dashboards.frame_socket`; ``FrameAck.socket_path`` and
  ``socket_token``), the live scopes' chunks go out as one message on it per
  frame, and each acknowledgement comes back as one short message, with no
  reply and no document lock;
* other served pages (``panel serve``), or when that socket closes: frames
  are document patches, and the browser's change of ``FrameAck.frame`` goes
  through Bokeh's websocket like any other property;
* notebook (JupyterLab, classic notebook): the browser sends ``{"frame": id}``
  on a dedicated Jupyter comm (``FrameAck.comm_id``), handled without touching
  the Bokeh document. Going through the document would mean Panel's notebook
  comm, which (Panel 1.9) also sends back to the kernel every change the kernel
  itself pushed -- every streamed frame -- and applies those patches on a
  kernel subshell thread while the frame callback edits the same document.
  The acknowledgement script also stops that echo (:data:`ECHO_FILTER_JS`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from bokeh.core.properties import Int, Nullable, String
from bokeh.model import DataModel
from bokeh.models import ColumnDataSource, CustomJS

__all__ = ["ECHO_FILTER_JS", "BackPressure", "FrameAck", "FrameClock", "RateMeter"]

log = logging.getLogger("snnlab.dashboards")


class FrameAck(DataModel):
    """A tiny model the browser writes the id of the last applied frame into."""

    __view_model__ = "SnnlabFrameAck"

    frame = Int(default=-1, help="id of the last frame the browser applied and painted")
    comm_id = Nullable(String, default=None, help="Jupyter comm that carries acknowledgements in a notebook")
    socket_path = Nullable(String, default=None, help="URL path of the frame socket")
    socket_token = Nullable(String, default=None, help="names this page's clock on the frame socket")


#: Installed once per page by the acknowledgement script: Panel's notebook
#: ``CommManager`` forwards every document change to the kernel, including the
#: changes it has just applied *from* the kernel (``event.sync === false``),
#: so each streamed frame would travel back. Bokeh's own websocket client
#: drops those events; this makes the notebook comm do the same.
ECHO_FILTER_JS = """
const snnlabFilterEcho = (doc) => {
  if (doc == null || doc.__snnlab_echo_checked) { return; }
  doc.__snnlab_echo_checked = true;
  for (const root of doc.roots()) {
    const proto = Object.getPrototypeOf(root);
    if (typeof proto._document_changed !== 'function' || !('plot_id' in root) || proto.__snnlab_no_echo) {
      continue;
    }
    const original = proto._document_changed;
    proto._document_changed = function (event) {
      if (event == null || event.sync === false) { return; }
      if (Array.isArray(event.events)) {
        for (const inner of event.events) { if (inner.sync !== false) { original.call(this, inner); } }
        return;
      }
      original.call(this, event);
    };
    proto.__snnlab_no_echo = true;
  }
};
"""

_ACK_JS = ECHO_FILTER_JS + """
const ids = source.data.frame;
if (ids == null || ids.length === 0) { return; }
const id = ids[ids.length - 1];
const doc = source.document;
snnlabFilterEcho(doc);
const send = () => {
  // server frames that reached an animation frame in this page (read by tests and benchmarks)
  if (typeof window !== 'undefined') { window.snnlabFramesShown = (window.snnlabFramesShown || 0) + 1; }
  if (ack.comm_id != null && typeof window !== 'undefined' && window.PyViz && window.PyViz.comm_manager) {
    if (ack.__snnlab_comm === undefined) {
      let plot = null;
      if (doc != null) { for (const root of doc.roots()) { if (root.plot_id) { plot = root.plot_id; } } }
      try {
        ack.__snnlab_comm = window.PyViz.comm_manager.get_client_comm(plot, ack.comm_id, () => {}) || null;
      } catch (err) { ack.__snnlab_comm = null; }
    }
    if (ack.__snnlab_comm) {
      if (!(id > (ack.__snnlab_sent ?? -1))) { return; }
      try { ack.__snnlab_comm.send({frame: id}); ack.__snnlab_sent = id; return; } catch (err) { }
    }
  }
  if (ack.socket_path != null && ack.socket_token != null && typeof WebSocket !== 'undefined') {
    let ws = ack.__snnlab_ws;
    if (ws === undefined) {  // the frame socket: opened once, by the first frame of the document
      ws = null;
      try {
        const url = new URL(ack.socket_path, window.location.href);
        url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
        url.searchParams.set('token', ack.socket_token);
        ws = new WebSocket(url.href);
        const acknowledge = (frame) => {
          if (frame > (ack.__snnlab_sent ?? -1) && ws.readyState === 1) {
            ws.send(String(frame));
            ack.__snnlab_sent = frame;
          }
        };
        ack.__snnlab_acknowledge = acknowledge;
        ws.onopen = () => {
          const pending = ack.__snnlab_pending;
          ack.__snnlab_pending = null;
          if (pending != null) { acknowledge(pending); }
        };
        ws.onmessage = (event) => {  // a frame: every scope's chunk, then the acknowledgement
          let msg = null;
          try { msg = JSON.parse(event.data); } catch (err) { return; }
          const inbox = window.snnlabScopeInbox || {};
          for (const [key, chunk] of (msg.scopes || [])) {
            for (const deliver of (inbox[key] || [])) {
              try { deliver(chunk); } catch (err) { console.warn('snnlab scope', key, err); }
            }
          }
          raf(() => {
            window.snnlabFramesShown = (window.snnlabFramesShown || 0) + 1;
            acknowledge(msg.frame);
          });
        };
        ws.onclose = () => {  // back to the document path, for frames and acknowledgements
          ack.__snnlab_ws = null;
          const pending = ack.__snnlab_pending;
          if (pending != null && pending > ack.frame) { ack.frame = pending; }
        };
      } catch (err) { ws = null; }
      ack.__snnlab_ws = ws;
    }
    if (ws != null && ws.readyState <= 1) {
      if (ws.readyState === 1) { ack.__snnlab_acknowledge(id); } else { ack.__snnlab_pending = id; }
      return;
    }
  }
  if (id > ack.frame) { ack.frame = id; }
};
const raf = (typeof window !== 'undefined' && window.requestAnimationFrame)
    ? window.requestAnimationFrame.bind(window) : ((f) => setTimeout(f, 0));
raf(send);
"""


def _check_seconds(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0 (seconds), got {value!r}")
    return float(value)


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
    grace : float
        Seconds after the first frame within which the client must
        acknowledge one frame; if none has arrived by then, the client is
        treated as not acknowledging (``acknowledging`` becomes False) and
        every tick may send, until an acknowledgement arrives (``> 0``).
    clock : callable
        Monotonic clock in seconds (injectable for tests).

    Acknowledgements may arrive on another thread (a notebook kernel handles
    comm messages on a subshell thread); the counters are updated under a lock.
    """

    def __init__(
        self,
        max_in_flight: int = 2,
        timeout: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        grace: float = 3.0,
    ) -> None:
        if isinstance(max_in_flight, bool) or not isinstance(max_in_flight, int) or max_in_flight < 1:
            raise ValueError(f"max_in_flight must be an integer >= 1, got {max_in_flight!r}")
        self.max_in_flight = max_in_flight
        self.timeout = _check_seconds("timeout", timeout)
        self.grace = _check_seconds("grace", grace)
        self.clock = clock
        self._lock = threading.Lock()
        self.sent = -1
        self.acked = -1
        self.skipped = 0
        self.timeouts = 0
        self.acks_received = 0
        #: None until decided, True once an acknowledgement arrived, False when
        #: none arrived within ``grace`` seconds of the first frame
        self.acknowledging: bool | None = None
        self._first_sent: float | None = None
        self._last_progress = clock()

    @property
    def in_flight(self) -> int:
        """Frames sent and not yet acknowledged."""
        return self.sent - self.acked

    @property
    def throttled(self) -> bool:
        """Whether acknowledgements gate the stream (False for a non-acknowledging client)."""
        return self.acknowledging is not False

    def may_send(self) -> bool:
        """Whether a frame may be sent now; counts a skipped tick when not."""
        with self._lock:
            now = self.clock()
            if (self.acknowledging is None and self._first_sent is not None
                    and now - self._first_sent >= self.grace):
                self.acknowledging = False
                log.info("no frame acknowledged %.1f s after the first one: streaming unthrottled",
                         self.grace)
            if self.acknowledging is False or self.in_flight < self.max_in_flight:
                return True
            if now - self._last_progress >= self.timeout:
                self.timeouts += 1
                return True
            self.skipped += 1
            return False

    def next_id(self) -> int:
        """Register a frame as sent and return its id (0, 1, 2, ...)."""
        with self._lock:
            if self.acknowledging is False:
                self.acked = self.sent  # nothing is waited for
            elif self.in_flight >= self.max_in_flight:
                # sending on a timeout: forget the frames presumed lost
                self.acked = self.sent
            self.sent += 1
            if self._first_sent is None:
                self._first_sent = self.clock()
            if self.in_flight == 1:
                self._last_progress = self.clock()
            return self.sent

    def ack(self, frame_id: int) -> None:
        """Record that the browser applied every frame up to ``frame_id``."""
        with self._lock:
            frame_id = min(int(frame_id), self.sent)
            if frame_id < 0:
                return
            self.acks_received += 1
            self.acknowledging = True
            if frame_id > self.acked:
                self.acked = frame_id
                self._last_progress = self.clock()

    def reset(self) -> None:
        """Forget all frames (a new browser connection starts from scratch)."""
        with self._lock:
            self.sent = self.acked = -1
            self.acknowledging = None
            self._first_sent = None
            self._last_progress = self.clock()


class FrameClock:
    """Frame ids, the clock source, and the acknowledgement wiring.

    A frame is :meth:`begin`, the views' updates, :meth:`mark`. Through the
    document, ``source`` holds one row ``{'frame': [id], 't': [step]}``;
    streaming into it (``rollover=1``) is the last change of each frame, and
    ``ack`` is the :class:`FrameAck` the browser writes back; its ``frame``
    value is fed to the :class:`BackPressure` ``pressure``.
    :meth:`connect_comm` makes a notebook browser send acknowledgements on a
    dedicated Jupyter comm instead; :meth:`connect_socket` makes a page of
    ``snnlab serve`` open the frame socket, which then carries the scopes'
    chunks (:meth:`take`) and the acknowledgements. ``acked`` (a
    :class:`RateMeter`) counts acknowledged frames.
    """

    def __init__(self, pressure: BackPressure | None = None) -> None:
        self.pressure = pressure or BackPressure()
        self.acked = RateMeter()
        self.ack = FrameAck()
        self.source = ColumnDataSource(data={"frame": [], "t": []})
        self.source.js_on_change("streaming", CustomJS(args={"source": self.source, "ack": self.ack},
                                                       code=_ACK_JS))
        self.ack.on_change("frame", self._on_ack)
        self.comm: Any = None
        #: acknowledgements received per channel ('document', 'comm', 'socket')
        self.channels: dict[str, int] = {}
        #: frames sent per channel ('document', 'socket')
        self.frames: dict[str, int] = {}
        #: the page's open frame socket (see :meth:`attach_socket`), or None
        self.socket: Any = None
        #: seconds to wait for in-flight document frames when a socket opens
        self.switch_wait = 1.0
        self._on_socket = False
        self._socket_since = 0.0
        self._outbox: list[tuple[Any, Mapping[str, Any]]] | None = None

    def _on_ack(self, attr: str, old: int, new: int) -> None:
        self.receive(new)

    def receive(self, frame_id: int, channel: str = "document") -> None:
        """An acknowledgement of every frame up to ``frame_id`` arrived (any thread).

        ``channel``: how it travelled (``'document'``, ``'comm'`` or
        ``'socket'``), counted in ``channels``.
        """
        self.pressure.ack(frame_id)
        self.acked.tick()
        self.channels[channel] = self.channels.get(channel, 0) + 1

    def on_comm_msg(self, msg: Mapping[str, Any]) -> None:
        """Handle ``{'frame': id}`` sent by the browser on the notebook comm; ignores anything else."""
        try:
            frame_id = int(msg["frame"])
        except (KeyError, TypeError, ValueError):
            log.debug("ignored acknowledgement message %r", msg)
            return
        self.receive(frame_id, channel="comm")

    def connect_comm(self) -> str | None:
        """Open the notebook acknowledgement comm (Panel's Jupyter comm manager); returns its id.

        Must run before the layout is rendered (the id travels in the
        document). Returns None, leaving the document path in place, where
        Panel has no Jupyter comm manager (not in a notebook kernel).
        """
        if self.comm is not None:
            return self.ack.comm_id
        try:
            from panel.io.state import state
            from pyviz_comms import JupyterCommManager

            manager = state._comm_manager
            if not (isinstance(manager, type) and issubclass(manager, JupyterCommManager)):
                return None
            self.comm = manager.get_client_comm(on_msg=self.on_comm_msg)
        except Exception:  # no kernel or an incompatible comm manager: keep the document path
            log.debug("acknowledgement comm not available", exc_info=True)
            return None
        self.ack.comm_id = self.comm.id
        return self.comm.id

    def connect_socket(self) -> str | None:
        """Have the page use the frame socket (:mod:`snnlab.dashboards.frame_socket`); returns the token.

        Only where a server of this process serves the socket
        (:func:`snnlab.dashboards.frame_socket.installed`); otherwise returns
        None and the document path stays in place. Must run before the
        layout is rendered (path and token travel in the document).
        """
        from . import frame_socket

        if self.ack.socket_token is not None:
            return self.ack.socket_token
        if not frame_socket.installed():
            return None
        token = frame_socket.register(self)
        self.ack.socket_path = frame_socket.FRAME_PATH
        self.ack.socket_token = token
        return token

    def disconnect_socket(self) -> None:
        """Ignore the frame socket from now on (the dashboard stopped)."""
        from . import frame_socket

        frame_socket.unregister(self.ack.socket_token)
        self.socket = None

    def attach_socket(self, socket: Any) -> None:
        """The page's frame socket opened (called on the server's event loop).

        ``socket`` needs ``send_frame(text) -> bool``. Frames switch to it
        once every frame sent through the document is acknowledged (or
        ``switch_wait`` seconds have passed), so the browser never applies
        an older frame after a newer one.
        """
        self.socket = socket
        self._on_socket = False
        self._socket_since = self.pressure.clock()

    def detach_socket(self, socket: Any) -> None:
        """The frame socket closed: frames take the document path again."""
        if self.socket is socket:
            self.socket = None
            self._on_socket = False

    def may_send(self) -> bool:
        """See :meth:`BackPressure.may_send`; also waits while frames switch to a new socket."""
        if (self.socket is not None and not self._on_socket and self.pressure.in_flight > 0
                and self.pressure.clock() - self._socket_since < self.switch_wait):
            return False
        return self.pressure.may_send()

    def begin(self) -> None:
        """Start a frame: its scope chunks collect for the socket when one is open."""
        self._outbox = [] if self.socket is not None else None

    def take(self, scope: Any, chunk: Mapping[str, Any]) -> bool:
        """Keep ``scope``'s packed ``chunk`` for this frame's socket message; False: send it yourself.

        ``scope`` needs ``key`` (its name in the page) and ``write_chunk(chunk)``
        (the document path, used if the socket fails).
        """
        if self._outbox is None:
            return False
        self._outbox.append((scope, chunk))
        return True

    def mark(self, t: int) -> int:
        """Close the frame for simulated step ``t``; returns the frame id.

        With the socket open: one JSON message ``{"frame", "t", "scopes":
        [[key, chunk], ...]}`` on it. Otherwise (or if that write fails): the
        clock row streamed into :attr:`source`, the last change of the
        frame's document message.
        """
        frame_id = self.pressure.next_id()
        outbox, self._outbox = self._outbox, None
        if outbox is not None:
            text = json.dumps({"frame": frame_id, "t": int(t), "scopes": [[s.key, c] for s, c in outbox]},
                              separators=(",", ":"))
            socket = self.socket
            if socket is not None and socket.send_frame(text):
                self._on_socket = True
                self.frames["socket"] = self.frames.get("socket", 0) + 1
                return frame_id
            for scope, chunk in outbox:  # the socket is gone: this frame goes through the document
                scope.write_chunk(chunk)
        self.source.stream({"frame": [frame_id], "t": [int(t)]}, rollover=1)
        self.frames["document"] = self.frames.get("document", 0) + 1
        return frame_id


class RateMeter:
    """Events per second over a sliding window of ``window`` seconds (thread-safe).

    ``rate = (k - 1) / (t_now - t_first)`` for the ``k`` events of the last
    ``window`` seconds (0 with fewer than two events).
    """

    def __init__(self, window: float = 2.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = float(window)
        self.clock = clock
        self._times: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self) -> None:
        """Record one event now."""
        with self._lock:
            now = self.clock()
            self._times.append(now)
            self._trim(now)

    def _trim(self, now: float) -> None:
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()

    @property
    def rate(self) -> float:
        """Events per second in the last ``window`` seconds."""
        with self._lock:
            now = self.clock()
            self._trim(now)
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], 1e-9)
            return (len(self._times) - 1) / span
