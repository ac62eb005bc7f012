"""One Panel server for the snnlab apps (``snnlab serve``).

:func:`serve` starts a Panel/Bokeh server that

* binds to ``127.0.0.1`` unless told otherwise and accepts websocket
  connections only from the served ``address:port`` (plus ``localhost:port``
  for a loopback address);
* serves Panel's and Bokeh's JavaScript inline (``pn.config.inline``), with
  no template, so a page makes no request outside the server (classrooms
  without internet);
* runs one app per URL (``/neuron``, ``/raster``, ``/stdp-window``, ``/stdp``,
  ``/reward``); every browser tab calls the app's factory and so gets its own
  experiment, whose thread stops when the tab closes (sessions are reaped
  about one second after their websocket closes);
* serves a plain HTML gallery at ``/`` and a JSON status at
  ``/snnlab/status.json`` (live sessions, running simulation threads and
  their parameter values);
* turns on TCP_NODELAY for every websocket connection, so 30 Hz frames are
  not coalesced by Nagle's algorithm;
* takes the browsers' frame acknowledgements on a websocket of their own
  (:mod:`snnlab.dashboards.frame_socket`), outside Bokeh's document protocol.
"""

from __future__ import annotations

import html
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import panel as pn
from tornado.web import RequestHandler

from . import frame_socket, registry

__all__ = [
    "SESSION_REAP_MS",
    "configure_panel",
    "enable_tcp_nodelay",
    "free_port",
    "make_server",
    "serve",
    "wait_for_port",
]

#: how soon an unused (closed) session is discarded, in milliseconds
SESSION_REAP_MS = 1000

_nodelay_installed = False


def enable_tcp_nodelay() -> None:
    """Set TCP_NODELAY on the socket of every Bokeh/Panel websocket connection opened from now on."""
    global _nodelay_installed
    if _nodelay_installed:
        return
    from bokeh.server.views.ws import WSHandler as BkWSHandler
    from panel.io import server as pn_server

    classes = {BkWSHandler, pn_server.WSHandler}
    for cls in classes:
        original = cls.__dict__.get("open")
        if original is None or getattr(original, "_snnlab_nodelay", False):
            continue

        def open_nodelay(
            self: Any, *args: Any, _original: Callable[..., Any] = original, **kwargs: Any
        ) -> Any:
            try:
                self.set_nodelay(True)
            except Exception:  # pragma: no cover - a closed stream has no socket
                pass
            return _original(self, *args, **kwargs)

        open_nodelay._snnlab_nodelay = True  # type: ignore[attr-defined]
        cls.open = open_nodelay
    _nodelay_installed = True


def configure_panel() -> None:
    """Panel settings every snnlab page needs: inline JavaScript, notifications, TCP_NODELAY."""
    pn.config.inline = True
    pn.config.notifications = True
    enable_tcp_nodelay()


def limit_torch_threads(threads: int = 1) -> None:
    """Run torch's intra-op work on ``threads`` threads in this process (served sessions only).

    A server steps many small networks, one per browser tab; at these
    sizes splitting each operation over several threads costs more than it
    gains, and torch's worker threads then spin against everything else
    (a 1,000-neuron step measured 0.22 ms with one thread, 3.4 ms with two on
    a busy 2-core machine).
    """
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1, got {threads!r}")
    import torch

    torch.set_num_threads(threads)


def free_port(address: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``address`` right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((address, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, address: str = "127.0.0.1", timeout: float = 30.0) -> None:
    """Block until ``address:port`` accepts TCP connections; ``TimeoutError`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((address, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {address}:{port} after {timeout} s") from None
            time.sleep(0.05)


_GALLERY = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>snnlab</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 46em; color: #222; }}
li {{ margin: 0.6em 0; }} a {{ font-size: 1.15em; }} .d {{ color: #555; }}
</style></head><body>
<h1>snnlab</h1>
<p>Live spiking-neural-network experiments. Every tab runs its own simulation.</p>
<ul>
{items}
</ul>
</body></html>
"""


class GalleryHandler(RequestHandler):
    """``/``: a plain page linking the served apps (no scripts, no external assets)."""

    def initialize(self, apps: Mapping[str, str]) -> None:
        self.apps = apps

    def get(self) -> None:
        items = "\n".join(
            f'<li><a href="/{html.escape(slug)}">{html.escape(slug)}</a> '
            f'<span class="d">— {html.escape(desc)}</span></li>'
            for slug, desc in self.apps.items()
        )
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(_GALLERY.format(items=items))


class StatusHandler(RequestHandler):
    """``/snnlab/status.json``: :func:`snnlab.dashboards.registry.snapshot`."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps(registry.snapshot()))


def _origins(address: str, port: int, extra: Sequence[str]) -> list[str]:
    origins = [f"{address}:{port}"]
    if address in ("127.0.0.1", "localhost", "::1"):
        origins += [f"127.0.0.1:{port}", f"localhost:{port}"]
    origins += list(extra)
    return list(dict.fromkeys(origins))


def make_server(
    apps: Sequence[str] | None = None,
    *,
    port: int = 5006,
    address: str = "127.0.0.1",
    allow_websocket_origin: Sequence[str] = (),
    show: bool = False,
    start: bool = False,
    threaded: bool = False,
    period_ms: int | None = None,
    torch_threads: int | None = 1,
) -> Any:
    """Create (and optionally start) the server; returns Bokeh's ``Server`` or Panel's server thread.

    ``apps``: names from :data:`snnlab.apps.APPS` (default: all). ``port=0``
    picks a free port. With ``threaded=True`` the server runs in a thread and
    this call returns once the port accepts connections. ``torch_threads``:
    see :func:`limit_torch_threads` (None leaves torch's setting alone).
    """
    from snnlab.apps import APPS, DESCRIPTIONS, factory

    names = list(APPS) if not apps else list(apps)
    unknown = [n for n in names if n not in APPS]
    if unknown:
        raise ValueError(f"apps must be among {sorted(APPS)}, got unknown {unknown}")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer in [0, 65535], got {port!r}")
    if port == 0:
        port = free_port(address)
    configure_panel()
    if torch_threads is not None:
        limit_torch_threads(torch_threads)
    options: dict[str, Any] = {} if period_ms is None else {"period_ms": int(period_ms)}

    def make(name: str) -> Callable[[], Any]:
        build = factory(name)

        def app() -> Any:
            configure_panel()
            return build(**options)

        return app

    origins = _origins(address, port, allow_websocket_origin)
    routes = {name: make(name) for name in names}
    titles = {name: f"snnlab · {name}" for name in names}
    kwargs: dict[str, Any] = dict(
        port=port,
        address=address,
        websocket_origin=origins,
        show=show,
        start=start,
        threaded=threaded,
        title=titles,
        location=False,
        check_unused_sessions_milliseconds=SESSION_REAP_MS,
        unused_session_lifetime_milliseconds=SESSION_REAP_MS,
        extra_patterns=[
            (r"/", GalleryHandler, {"apps": {n: DESCRIPTIONS.get(n, "") for n in names}}),
            (r"/snnlab/status\.json", StatusHandler),
            frame_socket.route(origins, port),
        ],
        verbose=False,
    )
    server = pn.serve(routes, **kwargs)
    server.snnlab_port = port  # type: ignore[attr-defined]
    if threaded:
        wait_for_port(port, "127.0.0.1" if address in ("0.0.0.0", "") else address)
    return server


def warm_up_kernels() -> threading.Thread | None:
    """Start compiling the fused STDP / mSTDP kernel (float32, the apps' layer sizes) on a daemon
    thread; ``None`` where numba is missing (the learners then keep their torch path)."""
    import torch

    from ..kernels import plasticity_cpu

    if not plasticity_cpu.available():
        return None
    return plasticity_cpu.warm_up((torch.float32,), background=True)


def serve(
    apps: Sequence[str] | None = None,
    *,
    port: int = 5006,
    address: str = "127.0.0.1",
    allow_websocket_origin: Sequence[str] = (),
    show: bool = False,
    torch_threads: int | None = 1,
) -> None:
    """Serve the apps until interrupted (what ``snnlab serve`` runs).

    The STDP / mSTDP kernel the learning apps step with is compiled (or loaded from numba's cache)
    on a background thread meanwhile, so their first steps do not wait for it.
    """
    if port == 0:
        port = free_port(address)
    warm_up_kernels()
    names = ", ".join(apps) if apps else "all apps"
    print(f"snnlab: serving {names} at http://{address}:{port}/  (Ctrl+C stops)", flush=True)
    make_server(apps, port=port, address=address, allow_websocket_origin=allow_websocket_origin,
                show=show, start=True, torch_threads=torch_threads)
