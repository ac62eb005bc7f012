"""``Scope``: the browser half of the live raster and trace views (a canvas drawn by ``scope.js``).

Once per frame the server sends (:meth:`Scope.send`) what is new -- for a
raster ``{'t', 'steps' int32[k], 'neurons' int32[k]}``, for traces
``{'t', 'steps' int32[k], 'values' float32[k * m]}`` (row-major ``[k, m]``),
plus ``'clear': True`` after a reset. Inside a frame's ``pn.io.hold()`` this
is one property change in the frame's single document message, or, on a
page with a frame socket (:mod:`snnlab.dashboards.frame_socket`), one entry
of the frame's socket message. The browser keeps the
last ``window`` steps and redraws them (see ``scope.js``), so neither side
holds more than a window of data, and the cost of a frame does not depend on
how long the simulation has run.

Every rendered scope registers a small record in ``window.snnlabScopes``
(``kind``, ``frames`` drawn, ``t`` shown, ``threshold`` drawn, ``shown``
spikes, ``thresholdChanges`` and ``thresholdAt``: how many new thresholds
reached the screen and the ``performance.now()`` of the last one), which
browser tests and ``benchmarks.dashboard`` read.
"""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from typing import Any

import numpy as np
import param
from panel.custom import JSComponent

__all__ = ["PALETTE", "SPIKE_COLOR", "THRESHOLD_COLOR", "Scope", "StatusLine", "pack", "write_now"]

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#000000")
SPIKE_COLOR = "#1a1a1a"
_KEYS = itertools.count()
THRESHOLD_COLOR = "#D55E00"


class Scope(JSComponent):
    """A scrolling canvas plot of the last ``window`` steps: a spike raster or membrane traces."""

    kind = param.Selector(default="traces", objects=["raster", "traces"], doc="what is drawn")
    title = param.String(default="", doc="heading drawn above the plot")
    window = param.Integer(default=200, bounds=(1, None), doc="steps shown")
    size = param.Integer(default=1, bounds=(1, None), doc="raster: neurons of the layer")
    color = param.String(default=SPIKE_COLOR, doc="raster: spike colour (#rrggbb)")
    labels = param.List(default=[], item_type=str, doc="traces: one label per line")
    colors = param.List(default=list(PALETTE), item_type=str, doc="traces: line colours, cycled")
    y_label = param.String(default="v", doc="traces: y axis label")
    threshold = param.Number(default=None, allow_None=True, doc="traces: dashed threshold line (None: none)")
    threshold_color = param.String(default=THRESHOLD_COLOR)
    chunk = param.Dict(default={}, doc="what is new since the last frame: written by :meth:`send`")
    key = param.String(default="", doc="names the scope in the page (frames on the frame socket)")

    _esm = Path(__file__).with_name("scope.js")

    def __init__(self, **params: Any) -> None:
        super().__init__(**params)
        if not self.key:
            self.key = f"scope-{next(_KEYS)}"
        #: the last chunk given to :meth:`send` (numpy arrays as given)
        self.sent: dict[str, Any] = {}
        #: the dashboard's :class:`~snnlab.dashboards.streaming.FrameClock` (frames on its socket), or None
        self.frame_clock: Any = None

    def send(self, chunk: dict[str, Any]) -> None:
        """Send ``chunk`` to every rendered copy of this scope, as part of the current frame.

        Arrays are packed (:func:`pack`). On a page with an open frame socket
        the chunk joins the frame's socket message (``frame_clock.take``);
        otherwise :meth:`write_chunk` puts it into the frame's document
        message. :attr:`sent` keeps the chunk as given.
        """
        self.sent = chunk
        packed = {k: pack(v) if isinstance(v, np.ndarray) else v for k, v in chunk.items()}
        if self.frame_clock is not None and self.frame_clock.take(self, packed):
            return
        self.write_chunk(packed)

    def write_chunk(self, packed: dict[str, Any]) -> None:
        """Write a packed chunk straight into the rendered Bokeh models (the document path).

        The server-side :attr:`chunk` parameter stays as it is: a new
        rendering must not replay an old delta.
        """
        write_now(self, keep=False, chunk=packed)


class StatusLine(JSComponent):
    """One line of HTML (the dashboard's status) replaced in place.

    A plain DOM update: unlike a Bokeh ``Div``, whose new text makes the
    browser lay out the whole page again, this costs the browser next to
    nothing, so the status can follow every frame.
    """

    text = param.String(default="", doc="HTML of the line")

    _esm = """
export function render({ model, el }) {
  const line = document.createElement("div");
  line.style.cssText = "white-space:nowrap;overflow:hidden;text-overflow:ellipsis;";
  const show = () => { line.innerHTML = model.text; };
  model.on("text", show);
  show();
  return line;
}
"""

    def show(self, text: str) -> None:
        """Set :attr:`text` for this frame (see :func:`write_now`)."""
        write_now(self, text=text)


def pack(values: np.ndarray) -> str:
    """An int32 / float32 array as the base64 text of its little-endian bytes (``scope.js`` unpacks it).

    Inside the frame's JSON: no binary buffers (each costs two more websocket
    messages) and no list that Bokeh would walk element by element looking
    for model references.
    """
    if values.dtype not in (np.int32, np.float32):
        raise TypeError(f"values must be an int32 or float32 array, got dtype {values.dtype}")
    return base64.b64encode(np.ascontiguousarray(values, values.dtype.newbyteorder("<")).tobytes()).decode()


def write_now(component: JSComponent, *, keep: bool = True, **values: Any) -> None:
    """Write parameter values straight into every rendered Bokeh model of ``component``.

    Like ``component.param.update(**values)`` but without Panel's
    per-parameter synchronisation, which in a notebook pushes each change as
    a message of its own: this way the changes join the frame's single
    message (served page: the held document; notebook: the frame's one push).
    ``keep=False`` leaves the Python-side parameters as they are (for deltas
    that a later rendering must not replay).

    Each write is marked as the server's own change, as Panel marks its own
    writes; otherwise Panel would take it for an edit made in the browser and
    copy it back into the parameter in a callback of its own.
    """
    if keep:
        with param.parameterized.discard_events(component):
            component.param.update(**values)
    for ref, (model, _) in list(component._models.items()):
        data = getattr(model, "data", None)
        if data is None:
            continue
        changed = {k: v for k, v in values.items()
                   if hasattr(data, k) and not data.lookup(k).property.matches(v, getattr(data, k))}
        # only real changes trigger Panel's handler, which then drops the mark
        component._changing.setdefault(ref, []).extend(changed)
        data.update(**changed)
