"""Live frames and acknowledgements on their own websocket (``snnlab.dashboards.frame_socket``).

A real tornado server on a loopback port and tornado's websocket client play
the page: it reads one JSON message per frame and answers with the frame id
as decimal text.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from conftest import FakeClock

pytest.importorskip("panel")

from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.web import Application
from tornado.websocket import websocket_connect

from snnlab.dashboards import BackPressure, Dashboard, frame_socket
from snnlab.dashboards.server import free_port
from snnlab.dashboards.streaming import FrameClock


def _clock() -> FrameClock:
    clock = FrameClock(BackPressure(2, 1.0, clock=FakeClock()))
    clock.mark(1)
    clock.mark(2)  # two frames sent (ids 0, 1), none acknowledged
    return clock


def _serve(body: Callable[[int], Awaitable[Any]], origins: tuple[str, ...] = ()) -> Any:
    """Run ``body(port)`` against an application serving only the acknowledgement socket."""

    async def main() -> Any:
        port = free_port()
        app = Application([frame_socket.route(origins or (f"127.0.0.1:{port}",), port)])
        server = app.listen(port, address="127.0.0.1")
        try:
            return await body(port)
        finally:
            server.stop()

    return asyncio.run(main())


async def _connect(port: int, token: str, origin: str | None = None) -> Any:
    url = f"ws://127.0.0.1:{port}{frame_socket.FRAME_PATH}?token={token}"
    headers = {"Origin": origin or f"http://127.0.0.1:{port}"}
    return await websocket_connect(HTTPRequest(url, headers=headers))


async def _until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.01)


@pytest.fixture(autouse=True)
def _keep_route_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    """``route()`` marks the socket as installed in this process: undo that after each test."""
    monkeypatch.setattr(frame_socket, "_installed", frame_socket._installed)


@pytest.fixture
def installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pretend a server of this process serves the socket (restored afterwards)."""
    monkeypatch.setattr(frame_socket, "_installed", True)


def test_socket_messages_acknowledge_frames():
    clock = _clock()
    token = frame_socket.register(clock)

    async def body(port: int) -> None:
        ws = await _connect(port, token)
        assert not clock.pressure.may_send()  # two frames in flight
        ws.write_message("0")
        await _until(lambda: clock.pressure.acked == 0)
        assert clock.pressure.may_send()
        ws.write_message("not a frame id")  # ignored
        ws.write_message("99")  # never beyond what was sent
        await _until(lambda: clock.pressure.acks_received == 2)
        assert clock.pressure.acked == 1
        ws.close()

    try:
        _serve(body)
    finally:
        frame_socket.unregister(token)
    assert clock.channels == {"socket": 2}


def test_unknown_token_is_closed_with_a_reason():
    async def body(port: int) -> tuple[Any, Any, Any]:
        ws = await _connect(port, "no-such-token")
        message = await ws.read_message()
        return message, ws.close_code, ws.close_reason

    message, code, reason = _serve(body)
    assert message is None and code == 4404 and "token" in reason


def test_foreign_origin_is_refused():
    clock = _clock()
    token = frame_socket.register(clock)

    async def body(port: int) -> None:
        with pytest.raises(HTTPClientError) as err:
            await _connect(port, token, origin="http://evil.example:5006")
        assert err.value.code == 403

    try:
        _serve(body)
    finally:
        frame_socket.unregister(token)
    assert clock.channels == {}


def test_oversized_message_closes_the_socket_without_an_ack():
    clock = _clock()
    token = frame_socket.register(clock)

    async def body(port: int) -> Any:
        ws = await _connect(port, token)
        ws.write_message("1" * (frame_socket.MAX_MESSAGE_BYTES + 1))
        assert await ws.read_message() is None  # the server closed the connection
        return ws.close_code

    try:
        code = _serve(body)
    finally:
        frame_socket.unregister(token)
    assert code == 1009  # "message too big"
    assert clock.pressure.acks_received == 0


def test_acks_after_unregister_are_ignored():
    clock = _clock()
    token = frame_socket.register(clock)

    async def body(port: int) -> None:
        ws = await _connect(port, token)
        ws.write_message("0")
        await _until(lambda: clock.pressure.acked == 0)
        frame_socket.unregister(token)  # the dashboard stopped
        ws.write_message("1")
        await asyncio.sleep(0.2)
        ws.close()

    _serve(body)
    assert clock.pressure.acked == 0 and clock.channels == {"socket": 1}
    assert frame_socket.lookup(token) is None


def test_route_allows_the_given_origins_with_default_ports():
    path, handler, options = frame_socket.route(["127.0.0.1:6000", "lab.example"], 6000)
    assert path == frame_socket.FRAME_PATH and handler is frame_socket.FrameSocketHandler
    assert options == {"origins": {"127.0.0.1:6000", "lab.example:80"}}


def test_connect_socket_needs_the_route(monkeypatch):
    monkeypatch.setattr(frame_socket, "_installed", False)
    clock = FrameClock()
    assert clock.connect_socket() is None
    assert clock.ack.socket_path is None and clock.ack.socket_token is None


def test_connect_socket_registers_the_clock_once(installed):
    clock = FrameClock()
    token = clock.connect_socket()
    try:
        assert token and clock.ack.socket_token == token and clock.ack.socket_path == frame_socket.FRAME_PATH
        assert frame_socket.lookup(token) is clock
        assert clock.connect_socket() == token  # idempotent
    finally:
        clock.disconnect_socket()
    assert frame_socket.lookup(token) is None


def test_tokens_are_distinct_and_unguessable():
    clocks = [FrameClock() for _ in range(50)]
    tokens = [frame_socket.register(c) for c in clocks]
    try:
        assert len(set(tokens)) == 50 and min(len(t) for t in tokens) >= 24
    finally:
        for t in tokens:
            frame_socket.unregister(t)


def test_clocks_are_held_weakly():
    import gc

    token = frame_socket.register(FrameClock())
    gc.collect()
    assert frame_socket.lookup(token) is None


def test_ack_script_prefers_comm_then_socket_then_document():
    code = FrameClock().source.js_property_callbacks["streaming"][0].code
    comm, socket = code.index("ack.comm_id"), code.index("new WebSocket")
    assert comm < socket < code.rindex("ack.frame = id")
    assert "ack.socket_token" in code and "ws.onclose" in code  # a closed socket falls back
    # socket frames are handed to the scopes by key and acknowledged in the next animation frame
    assert "snnlabScopeInbox" in code and "acknowledge(msg.frame)" in code


def test_scopes_listen_on_the_inbox_by_key():
    from snnlab.dashboards.scope import Scope

    a, b = Scope(kind="raster"), Scope(kind="traces")
    assert a.key and b.key and a.key != b.key
    assert Scope(key="mine").key == "mine"
    source = Scope._esm.read_text()
    assert "window.snnlabScopeInbox" in source and "inbox[model.key]" in source


def test_served_dashboard_acknowledges_on_the_socket_and_stops_listening(toy, installed):
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    doc = Document()
    with set_curdoc(doc):
        dash = Dashboard(toy, autorun=False)
        dash.__panel__()  # a served page: schedules the start and connects the socket
    token = dash.clock.ack.socket_token
    assert token and frame_socket.lookup(token) is dash.clock
    dash.stop()
    assert frame_socket.lookup(token) is None


# ---------------------------------------------------------------- frames on the socket
def _unpack(text: str, dtype: str) -> list[Any]:
    import numpy as np

    return np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<")).tolist()


def _served_dashboard(toy: Any) -> Dashboard:
    from bokeh.document import Document
    from panel.io.state import set_curdoc

    with set_curdoc(Document()):
        dash = Dashboard(toy, autorun=False)
        dash.__panel__()
    assert dash.clock.ack.socket_token
    return dash


def test_frames_travel_on_the_socket_and_are_acknowledged_there(toy, installed):
    dash = _served_dashboard(toy)
    clock = dash.clock
    scopes = {dash.raster.scopes["out"].key: "raster", dash.traces[0].scope.key: "traces"}

    async def body(port: int) -> list[dict[str, Any]]:
        ws = await _connect(port, clock.ack.socket_token)
        await _until(lambda: clock.socket is not None)
        got = []
        for _ in range(3):
            before = toy.t
            toy.step(4)
            assert dash.tick()
            msg = json.loads(await ws.read_message())
            got.append(msg)
            # the page's chunks: exactly what the views sent, by scope key
            chunks = dict(msg["scopes"])
            assert set(chunks) >= set(scopes)
            raster = chunks[dash.raster.scopes["out"].key]
            sent = dash.raster.scopes["out"].sent
            assert raster["t"] == toy.t and _unpack(raster["steps"], "i4") == list(sent["steps"])
            assert _unpack(raster["neurons"], "i4") == list(sent["neurons"])
            trace = chunks[dash.traces[0].scope.key]
            assert _unpack(trace["steps"], "i4") == list(range(before, toy.t))
            assert _unpack(trace["values"], "f4") == list(dash.traces[0].scope.sent["values"])
            ws.write_message(str(msg["frame"]))
            await _until(lambda m=msg: clock.pressure.acked == m["frame"])
        ws.close()
        await _until(lambda: clock.socket is None)
        return got

    try:
        messages = _serve(body)
    finally:
        dash.stop()
    assert [m["frame"] for m in messages] == [0, 1, 2]
    assert [m["t"] for m in messages] == [4, 8, 12]
    assert clock.frames == {"socket": 3} and clock.channels == {"socket": 3}
    # nothing of those frames went through the document
    assert list(clock.source.data["frame"]) == []


class FakeSocket:
    def __init__(self, ok: bool = True) -> None:
        self.ok = ok
        self.sent: list[dict[str, Any]] = []

    def send_frame(self, text: str) -> bool:
        if self.ok:
            self.sent.append(json.loads(text))
        return self.ok


def test_frames_switch_to_a_new_socket_only_after_document_frames_are_acknowledged(toy):
    dash = Dashboard(toy, autorun=False)
    dash.clock.pressure.clock = fake = FakeClock()
    toy.step(2)
    assert dash.tick()  # through the document (no socket yet)
    assert dash.clock.frames == {"document": 1} and list(dash.clock.source.data["frame"]) == [0]
    socket = FakeSocket()
    dash.clock.attach_socket(socket)
    toy.step(2)
    assert not dash.tick()  # frame 0 still travels through the document: wait for it
    fake.now += 0.5
    assert not dash.tick()
    dash.clock.ack.frame = 0  # the browser acknowledges it
    assert dash.tick()
    assert [m["frame"] for m in socket.sent] == [1] and dash.clock.frames == {"document": 1, "socket": 1}
    assert list(dash.clock.source.data["frame"]) == [0]


def test_switch_does_not_wait_forever_for_a_lost_acknowledgement(toy):
    dash = Dashboard(toy, autorun=False)
    dash.clock.pressure.clock = fake = FakeClock()
    toy.step(1)
    assert dash.tick()
    socket = FakeSocket()
    dash.clock.attach_socket(socket)
    assert not dash.tick()
    fake.now += dash.clock.switch_wait
    assert dash.tick() and [m["frame"] for m in socket.sent] == [1]


def test_a_failed_socket_write_sends_the_frame_through_the_document(toy, monkeypatch):
    dash = Dashboard(toy, autorun=False)
    scope = dash.traces[0].scope
    written: list[dict[str, Any]] = []
    monkeypatch.setattr(scope, "write_chunk", written.append)
    dash.clock.attach_socket(FakeSocket(ok=False))
    toy.step(3)
    assert dash.tick()
    assert dash.clock.frames == {"document": 1}
    assert list(dash.clock.source.data["frame"]) == [0]
    assert len(written) == 1 and _unpack(written[0]["steps"], "i4") == [0, 1, 2]


def test_a_closed_socket_returns_frames_to_the_document(toy):
    dash = Dashboard(toy, autorun=False)
    socket = FakeSocket()
    dash.clock.attach_socket(socket)
    toy.step(1)
    assert dash.tick() and len(socket.sent) == 1
    dash.clock.detach_socket(socket)
    dash.clock.ack.frame = 0
    toy.step(1)
    assert dash.tick()
    assert dash.clock.frames == {"socket": 1, "document": 1}
    assert list(dash.clock.source.data["frame"]) == [1]


def test_detaching_another_socket_changes_nothing(toy):
    dash = Dashboard(toy, autorun=False)
    socket = FakeSocket()
    dash.clock.attach_socket(socket)
    dash.clock.detach_socket(FakeSocket())
    assert dash.clock.socket is socket


def test_a_reset_clear_reaches_the_browser_on_the_socket(toy):
    dash = Dashboard(toy, autorun=False)
    socket = FakeSocket()
    dash.clock.attach_socket(socket)
    toy.step(3)
    assert dash.tick()
    dash.clock.ack.frame = 0
    toy.reset()
    dash.clear_views()
    toy.step(2)
    assert dash.tick()
    chunks = dict(socket.sent[-1]["scopes"])
    assert chunks[dash.raster.scopes["out"].key].get("clear") is True
    assert chunks[dash.traces[0].scope.key].get("clear") is True
