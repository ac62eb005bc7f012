"""Frame transport fixes: status line sends only text, acknowledgements degrade gracefully,
notebook acknowledgements on their own comm, labels every font can draw, offline app modules."""

from __future__ import annotations

import importlib
import shutil
import subprocess

import pytest
from conftest import FakeClock

pn = pytest.importorskip("panel")

from bokeh.document import Document  # noqa: E402
from bokeh.models import Div, ImportedStyleSheet, InlineStyleSheet  # noqa: E402

from snnlab.dashboards import BackPressure, Dashboard, RewardControls, RunControls  # noqa: E402
from snnlab.dashboards.scope import StatusLine  # noqa: E402
from snnlab.dashboards.streaming import ECHO_FILTER_JS, FrameClock  # noqa: E402


# ---------------------------------------------------------------- graceful degradation
def test_no_ack_within_grace_streams_unthrottled():
    clock = FakeClock()
    bp = BackPressure(max_in_flight=2, timeout=1.0, clock=clock, grace=3.0)
    sent = skipped = 0
    # a client that never acknowledges; one tick every 0.1 s for 6 s
    log = []
    for i in range(60):
        clock.now = i * 0.1
        if bp.may_send():
            bp.next_id()
            sent += 1
            log.append((clock.now, True))
        else:
            skipped += 1
            log.append((clock.now, False))
    # reference, written out: two frames at t=0 and 0.1, then one frame per 1 s timeout
    # (t = 1.1, 2.1) until 3 s after the first frame, then every tick
    expected = []
    in_flight, last_progress, first, unthrottled = 0, 0.0, None, False
    for i in range(60):
        now = i * 0.1
        if first is not None and now - first >= 3.0 - 1e-12:
            unthrottled = True
        if unthrottled or in_flight < 2:
            ok = True
        elif now - last_progress >= 1.0 - 1e-12:
            ok = True
            in_flight = 0  # frames presumed lost
        else:
            ok = False
        if ok:
            in_flight += 1
            if first is None:
                first = now
            if in_flight == 1:
                last_progress = now
        expected.append((now, ok))
    assert [ok for _, ok in log] == [ok for _, ok in expected]
    assert bp.acknowledging is False and not bp.throttled
    assert sent == sum(ok for _, ok in expected) and skipped == 60 - sent
    assert all(ok for now, ok in log if now >= 3.0)


def test_late_ack_restores_back_pressure():
    clock = FakeClock()
    bp = BackPressure(max_in_flight=2, timeout=1.0, clock=clock, grace=0.5)
    bp.next_id()
    clock.now = 0.6
    assert bp.may_send() and bp.acknowledging is False
    for _ in range(5):
        assert bp.may_send()
        bp.next_id()
    bp.ack(bp.sent)  # the browser does acknowledge after all
    assert bp.acknowledging is True and bp.throttled and bp.in_flight == 0
    bp.next_id()
    bp.next_id()
    assert not bp.may_send()  # two in flight again: throttled


def test_an_ack_before_grace_keeps_throttling():
    clock = FakeClock()
    bp = BackPressure(max_in_flight=2, timeout=1.0, clock=clock, grace=1.0)
    bp.next_id()
    bp.ack(0)
    bp.next_id()
    bp.next_id()
    clock.now = 0.9
    assert not bp.may_send()
    clock.now = 50.0  # long silence after an acknowledged start: timeouts, not unthrottled
    assert bp.may_send() and bp.timeouts == 1 and bp.acknowledging is True


@pytest.mark.parametrize("bad", [0, -1.0, "3", True])
def test_backpressure_rejects_bad_grace(bad):
    with pytest.raises(ValueError, match="grace"):
        BackPressure(grace=bad)


def test_dashboard_status_says_when_the_browser_does_not_acknowledge(toy):
    clock = FakeClock()
    dash = Dashboard(toy, autorun=False, ack_grace=2.0)
    dash.clock.pressure.clock = clock
    toy.step(3)
    assert dash.tick() and dash.tick()
    assert not dash.tick()  # two unacknowledged frames
    clock.now = 2.5
    sent_before = dash.frames
    for _ in range(5):
        toy.step(1)
        assert dash.tick()  # unthrottled: every tick sends
    assert dash.frames == sent_before + 5
    assert "not acknowledging" in dash.status.text and "unthrottled" in dash.status.text


# ---------------------------------------------------------------- status line: text only
def _stylesheets(doc: Document) -> int:
    return sum(isinstance(m, (InlineStyleSheet, ImportedStyleSheet)) for m in doc.models)


def test_status_update_sends_only_the_text(toy):
    dash = Dashboard(toy, autorun=False)
    doc = Document()
    doc.add_root(dash.layout.get_root(doc))
    toy.step(2)
    dash.tick()
    before = _stylesheets(doc)
    events = []
    doc.on_change(lambda event: events.append(event))
    for _ in range(4):
        toy.step(2)
        dash.clock.ack.frame = dash.clock.pressure.sent
        assert dash.tick()
    assert _stylesheets(doc) == before  # no new stylesheet models per frame
    assert isinstance(dash.status, StatusLine)
    rendered = {id(model.data) for model, _ in dash.status._models.values()}
    status_events = [e for e in events if id(getattr(e, "model", None)) in rendered]
    assert status_events and {e.attr for e in status_events} == {"text"}
    layout_models = {id(m) for m in doc.models if isinstance(m, Div)}
    assert not [e for e in events if id(getattr(e, "model", None)) in layout_models]  # no Div changes
    assert "t = <span class='snnlab-t'>10</span>" in dash.status.text


# ---------------------------------------------------------------- notebook acknowledgements
def test_comm_acknowledgement_messages_feed_backpressure():
    clock = FrameClock(BackPressure(2, 1.0, clock=FakeClock()))
    clock.mark(1)
    clock.mark(2)
    assert not clock.may_send()
    clock.on_comm_msg({"frame": 1})
    assert clock.pressure.acked == 1 and clock.may_send()
    clock.on_comm_msg({"nonsense": True})  # ignored, no exception
    clock.on_comm_msg({"frame": "x"})
    assert clock.pressure.acked == 1 and clock.pressure.acks_received == 1


def test_connect_comm_outside_a_kernel_keeps_the_document_path():
    clock = FrameClock()
    assert clock.connect_comm() is None
    assert clock.ack.comm_id is None


def test_ack_script_filters_echoed_events_and_prefers_the_comm():
    clock = FrameClock()
    code = clock.source.js_property_callbacks["streaming"][0].code
    assert ECHO_FILTER_JS in code
    assert "event.sync === false" in ECHO_FILTER_JS  # events applied from the kernel are not sent back
    assert "ack.comm_id" in code and "ack.frame = id" in code


def test_notebook_frame_is_pushed_once_through_the_comm(toy, monkeypatch):
    from panel.io import notebook
    from panel.io.state import state

    class FakeComm:
        id = "c"
        _comm = object()

    dash = Dashboard(toy, autorun=False)
    doc = Document()
    comm = FakeComm()
    root = dash.layout.get_root(doc, comm)
    doc.add_root(root)
    doc.hold("combine")
    state._views[root.ref["id"]] = (dash.layout, root, doc, comm)
    pushed = []
    monkeypatch.setattr(notebook, "send", lambda c, msg: pushed.append((c, msg)))
    dash._notebook = True
    try:
        toy.step(4)
        assert dash.tick()
    finally:
        del state._views[root.ref["id"]]
    assert len(pushed) == 1 and pushed[0][0] is comm
    assert doc.callbacks._held_events == []  # everything of the frame went out


# ---------------------------------------------------------------- labels and offline apps
def _labels(*widgets):
    return [getattr(w, "label", None) or w.name for w in widgets]


def test_button_labels_use_glyphs_fonts_have(toy):
    run = RunControls(toy)
    reward = RewardControls(toy)
    labels = _labels(run.run_button, run.pause_button, run.step_button, run.reset_button,
                     reward.plus, reward.minus, reward.auto)
    assert "Pause" in labels and "Run" in labels
    odd = {ch for label in labels for ch in label if ord(ch) > 0x7E}
    assert odd <= {"−"}, odd  # U+2212 MINUS SIGN is in DejaVu Sans
    if shutil.which("fc-list"):
        for ch in odd:
            families = subprocess.run(["fc-list", f":charset={ord(ch):x}", "family"], capture_output=True,
                                      text=True, check=False).stdout
            assert "DejaVu Sans" in families, ch


@pytest.mark.parametrize("module", ["neuron", "raster", "stdp_window", "stdp", "reward"])
def test_app_modules_turn_on_inline_resources(module, monkeypatch):
    monkeypatch.setattr(pn.config, "inline", False)
    mod = importlib.import_module(f"snnlab.apps.{module}")
    importlib.reload(mod)
    assert pn.config.inline is True
    assert "--inline" not in (mod.__doc__ or "")


# ---------------------------------------------------------------- ranges set by the server
def test_live_views_send_only_what_is_new(toy):
    """Each frame carries the new rows of every live view, never the whole window again."""
    dash = Dashboard(toy, autorun=False, window=50)
    for _ in range(4):
        before = toy.t
        toy.step(5)
        dash.clock.ack.frame = dash.clock.pressure.sent
        assert dash.tick()
        chunk = dash.traces[0].scope.sent
        assert list(chunk["steps"]) == list(range(before, toy.t))
        assert len(chunk["values"]) == 5 * len(dash.traces[0].columns)
        assert all(int(s) >= before for s in dash.raster.scopes["out"].sent["steps"])
