"""Live frames and their acknowledgements on a websocket of their own (``snnlab serve``).

Through Bokeh's document protocol every frame is a document patch of three
websocket messages (header, metadata, content) that the server builds with
Bokeh's serializer under the document lock and the browser decodes and
applies model by model; the browser's acknowledgement is another patch of
three messages, answered by three more (Bokeh's ``OK``). With many tabs on a
2-core machine that messaging costs more than the frames themselves. A page
served by ``snnlab serve`` therefore opens one plain websocket at
:data:`FRAME_PATH` that carries, per frame, one message each way::

    browser                                      server
    ws://host/snnlab/frames?token=<t>        ->  FrameSocketHandler.open: token -> FrameClock
                                             <-  {"frame": 17, "t": 510, "scopes": [[key, chunk], ...]}
    (scopes draw the chunks; next animation frame)
    "17"                                     ->  FrameClock.receive(17, channel="socket")

Only the live scopes' chunks travel here (see :class:`~snnlab.dashboards.scope.Scope`);
controls, the status line and the weight heatmap stay Bokeh models.

The token names one dashboard's :class:`~snnlab.dashboards.streaming.FrameClock`;
it is random (:func:`secrets.token_urlsafe`), travels in that page's
document, and is forgotten when the dashboard stops (clocks are also held
weakly). Origins are checked against the server's websocket allowlist, as for
Bokeh's own socket; a browser message longer than a frame id closes the socket.

Where the route is not installed (``panel serve app.py``, a notebook) frames
and acknowledgements take the document path (or the notebook comm) as
before; if this socket closes, both sides fall back to the document path.
"""

from __future__ import annotations

import logging
import secrets
import threading
import weakref
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from tornado.websocket import WebSocketClosedError, WebSocketHandler

__all__ = ["FRAME_PATH", "FrameSocketHandler", "installed", "lookup", "register", "route", "unregister"]

log = logging.getLogger("snnlab.dashboards")

#: URL path of the frame socket
FRAME_PATH = "/snnlab/frames"

#: longest message a browser may send (a frame id in decimal)
MAX_MESSAGE_BYTES = 32

_lock = threading.Lock()
_clocks: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
_installed = False


def register(clock: Any) -> str:
    """Give ``clock`` (a FrameClock) a fresh random token and return it."""
    token = secrets.token_urlsafe(18)
    with _lock:
        _clocks[token] = clock
    return token


def unregister(token: str | None) -> None:
    """Forget ``token`` (a socket opened or used with it from now on is ignored)."""
    if token is None:
        return
    with _lock:
        _clocks.pop(token, None)


def lookup(token: str | None) -> Any:
    """The clock registered under ``token``, or None."""
    if not token:
        return None
    with _lock:
        return _clocks.get(token)


def installed() -> bool:
    """Whether a server of this process serves :data:`FRAME_PATH` (see :func:`route`)."""
    return _installed


def route(origins: Iterable[str], port: int) -> tuple[str, type, dict[str, Any]]:
    """The ``extra_patterns`` entry of the socket; marks the route as installed in this process.

    ``origins``: allowed websocket origins (``host[:port]``, as given to the
    Bokeh server); ``port``: the served port (Bokeh's rule for origins given
    without a port applies: port 80).
    """
    from bokeh.server.util import create_hosts_allowlist

    global _installed
    allowlist = set(create_hosts_allowlist(list(origins), port))
    _installed = True
    return (FRAME_PATH, FrameSocketHandler, {"origins": allowlist})


def _retrieve(future: Any) -> None:
    """Done-callback of a write: a connection that closed mid-write is handled by ``on_close``."""
    if not future.cancelled():
        future.exception()


class FrameSocketHandler(WebSocketHandler):
    """One page's frame socket: frames out (JSON text), acknowledged frame ids in."""

    def initialize(self, origins: set[str]) -> None:
        self.origins = origins
        self.token: str | None = None

    def check_origin(self, origin: str) -> bool:
        from bokeh.server.util import check_allowlist

        host = urlparse(origin).netloc.lower()
        if check_allowlist(host, self.origins):
            return True
        log.warning("refused a frame socket from origin %r (allowed: %s)", origin, sorted(self.origins))
        return False

    @property
    def max_message_size(self) -> int:
        return MAX_MESSAGE_BYTES

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.token = self.get_query_argument("token", default=None)
        clock = lookup(self.token)
        if clock is None:
            self.close(4404, "unknown or expired dashboard token")
            return
        try:
            self.set_nodelay(True)
        except Exception:  # pragma: no cover - a closed stream has no socket
            pass
        clock.attach_socket(self)

    def on_message(self, message: str | bytes) -> None:
        clock = lookup(self.token)
        if clock is None:  # the dashboard stopped
            return
        try:
            frame_id = int(message)
        except (TypeError, ValueError):
            log.debug("ignored acknowledgement message %r", message)
            return
        clock.receive(frame_id, channel="socket")

    def on_close(self) -> None:
        clock = lookup(self.token)
        if clock is not None:
            clock.detach_socket(self)

    def send_frame(self, text: str) -> bool:
        """Write one frame (on the server's event loop); False when the connection is gone."""
        try:
            future = self.write_message(text)
        except WebSocketClosedError:
            return False
        future.add_done_callback(_retrieve)
        return True
