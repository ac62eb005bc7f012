// Live scopes: a spike raster and membrane traces drawn on a plain <canvas>.
//
// The server sends, once per frame, only what is new (a chunk: the steps and
// values of the frame, and the current step count `t`); the browser keeps the
// last `window` steps itself and redraws the visible window. A redraw costs
// O(spikes in view) array writes plus one scaled image copy (raster) or
// O(window x traces) path points (traces), so a frame stays well under a
// millisecond at 1,000 neurons, far below what a general plotting library
// spends on layout, text and glyph bookkeeping per frame.
//
// Time axis (both kinds): the visible steps are [x_end - window, x_end) with
// x_end = max(window, t); step s is drawn in column s - (x_end - window).

const MARGIN = { left: 52, right: 12, top: 22, bottom: 34 };
const FONT = "11px sans-serif";
const AXIS_COLOR = "#444444";
const GRID_COLOR = "#e5e5e5";

function registry() {
  if (typeof window === "undefined") { return []; }
  if (!window.snnlabScopes) { window.snnlabScopes = []; }
  return window.snnlabScopes;
}

function niceStep(span, target) {
  const raw = span / Math.max(1, target);
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  const m = raw / p;
  return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
}

function label(v, step) {
  const digits = Math.max(0, Math.min(6, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(digits);
}

// Chunks reach a scope as changes of its `chunk` property (the document path) or, on a page
// with a frame socket, from the socket's message handler, which looks the scope up by `key`
// in window.snnlabScopeInbox (see snnlab/dashboards/frame_socket.py).
function listen(model, receive) {
  model.on("chunk", () => receive(model.chunk));
  if (typeof window === "undefined" || !model.key) { return; }
  const inbox = (window.snnlabScopeInbox = window.snnlabScopeInbox || {});
  const list = (inbox[model.key] = inbox[model.key] || []);
  list.push(receive);
  model.on("remove", () => {
    const i = list.indexOf(receive);
    if (i >= 0) { list.splice(i, 1); }
    if (list.length === 0 && inbox[model.key] === list) { delete inbox[model.key]; }
  });
}

// A chunk array: base64 text of little-endian bytes (what the server sends) or any array-like.
function unpack(value, Type) {
  if (typeof value !== "string") { return value; }
  const text = atob(value);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) { bytes[i] = text.charCodeAt(i); }
  return new Type(bytes.buffer, 0, bytes.length / Type.BYTES_PER_ELEMENT);
}

function hexToRGBA(hex) {
  const h = hex.replace("#", "");
  const r = parseInt(h.slice(0, 2), 16), g = parseInt(h.slice(2, 4), 16), b = parseInt(h.slice(4, 6), 16);
  return (255 << 24) | (b << 16) | (g << 8) | r; // little-endian RGBA in a Uint32Array
}

// A canvas sized to its container, with a plot rectangle inside fixed margins.
class Surface {
  constructor(el, title) {
    this.box = document.createElement("div");
    this.box.style.cssText = "position:relative;width:100%;height:100%;";
    this.canvas = document.createElement("canvas");
    this.canvas.style.cssText = "display:block;width:100%;height:100%;";
    this.box.appendChild(this.canvas);
    el.appendChild(this.box);
    this.ctx = this.canvas.getContext("2d");
    this.title = title;
    this.w = 0; this.h = 0; this.dpr = 1;
  }
  fit() {
    const rect = this.box.getBoundingClientRect();
    const dpr = (typeof window !== "undefined" && window.devicePixelRatio) || 1;
    const w = Math.max(60, Math.round(rect.width)), h = Math.max(60, Math.round(rect.height));
    if (w !== this.w || h !== this.h || dpr !== this.dpr) {
      this.w = w; this.h = h; this.dpr = dpr;
      this.canvas.width = Math.round(w * dpr);
      this.canvas.height = Math.round(h * dpr);
      return true;
    }
    return false;
  }
  get plot() {
    return { x: MARGIN.left, y: MARGIN.top, w: Math.max(10, this.w - MARGIN.left - MARGIN.right),
             h: Math.max(10, this.h - MARGIN.top - MARGIN.bottom) };
  }
  begin() {
    const ctx = this.ctx;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.clearRect(0, 0, this.w, this.h);
    ctx.font = FONT;
    return ctx;
  }
  frame(xStart, window, yLo, yHi, xLabel, yLabel, yTicks) {
    const ctx = this.ctx, p = this.plot;
    ctx.fillStyle = AXIS_COLOR;
    ctx.textBaseline = "top"; ctx.textAlign = "left";
    ctx.font = "bold 12px sans-serif";
    ctx.fillText(this.title, p.x, 4);
    ctx.font = FONT;
    // x ticks: absolute steps
    const xs = niceStep(window, Math.max(2, Math.floor(p.w / 80)));
    ctx.strokeStyle = GRID_COLOR; ctx.lineWidth = 1;
    ctx.textAlign = "center"; ctx.textBaseline = "top";
    ctx.beginPath();
    for (let s = Math.ceil(xStart / xs) * xs; s <= xStart + window; s += xs) {
      const x = Math.round(p.x + (s - xStart) * p.w / window) + 0.5;
      ctx.moveTo(x, p.y); ctx.lineTo(x, p.y + p.h);
      ctx.fillText(String(s), x, p.y + p.h + 4);
    }
    // y ticks
    ctx.textAlign = "right"; ctx.textBaseline = "middle";
    for (const [v, text] of yTicks) {
      const y = Math.round(p.y + p.h - (v - yLo) * p.h / (yHi - yLo)) + 0.5;
      ctx.moveTo(p.x, y); ctx.lineTo(p.x + p.w, y);
      ctx.fillText(text, p.x - 5, y);
    }
    ctx.stroke();
    ctx.strokeStyle = AXIS_COLOR;
    ctx.strokeRect(p.x + 0.5, p.y + 0.5, p.w - 1, p.h - 1);
    ctx.textAlign = "center"; ctx.textBaseline = "bottom";
    ctx.fillText(xLabel, p.x + p.w / 2, this.h - 2);
    ctx.save();
    ctx.translate(11, p.y + p.h / 2); ctx.rotate(-Math.PI / 2);
    ctx.textBaseline = "middle";
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
  }
}

function yTicksLinear(lo, hi, target) {
  const step = niceStep(hi - lo, target);
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) { out.push([v, label(v, step)]); }
  return out;
}

// ---------------------------------------------------------------- raster
function renderRaster(model, el, info) {
  const surface = new Surface(el, model.title);
  const color = hexToRGBA(model.color || "#1a1a1a");
  let steps = [], neurons = [], head = 0, t = 0;
  const image = document.createElement("canvas");
  const imageCtx = image.getContext("2d");
  let pixels = null, imageData = null;

  function drop() {
    const first = Math.max(model.window, t) - model.window;
    while (head < steps.length && steps[head] < first) { head++; }
    if (head > 4096 && head * 2 > steps.length) {
      steps = steps.slice(head); neurons = neurons.slice(head); head = 0;
    }
  }
  function draw() {
    const window = model.window, size = Math.max(1, model.size);
    const xEnd = Math.max(window, t), xStart = xEnd - window;
    const ctx = surface.begin(), p = surface.plot;
    const rows = Math.max(1, Math.round(p.h * surface.dpr));
    if (image.width !== window || image.height !== rows) {
      image.width = window; image.height = rows;
      imageData = imageCtx.createImageData(window, rows);
      pixels = new Uint32Array(imageData.data.buffer);
    }
    pixels.fill(0);
    const per = rows / size; // pixel rows per neuron
    const gap = per >= 4 ? Math.floor(per * 0.2) : 0;
    let shown = 0;
    for (let i = head; i < steps.length; i++) {
      const col = steps[i] - xStart;
      if (col < 0 || col >= window) { continue; }
      const n = neurons[i];
      if (n < 0 || n >= size) { continue; }
      // neuron 0 at the bottom
      const r0 = Math.min(rows - 1, Math.floor((size - 1 - n) * per));
      const r1 = Math.max(r0 + 1, Math.floor((size - n) * per) - gap);
      for (let r = r0; r < r1 && r < rows; r++) { pixels[r * window + col] = color; }
      shown++;
    }
    imageCtx.putImageData(imageData, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(image, p.x, p.y, p.w, p.h);
    const yStep = Math.max(1, Math.round(niceStep(size, Math.max(2, Math.floor(p.h / 40)))));
    const ticks = [];
    for (let v = 0; v < size; v += yStep) { ticks.push([v + 0.5, String(v)]); }
    surface.frame(xStart, window, 0, size, "step", "neuron", ticks);
    info.shown = shown;
    info.t = t;
    info.frames += 1;
  }
  function receive(c) {
    if (c == null || c.t == null) { return; }
    if (c.clear) { steps = []; neurons = []; head = 0; }
    const s = unpack(c.steps, Int32Array), n = unpack(c.neurons, Int32Array);
    if (s != null) { for (let i = 0; i < s.length; i++) { steps.push(Number(s[i])); neurons.push(Number(n[i])); } }
    t = Number(c.t);
    drop();
    draw();
  }
  const relayout = () => { surface.fit(); draw(); };
  listen(model, receive);
  model.on(["window", "size", "title"], () => { surface.title = model.title; drop(); draw(); });
  model.on("after_layout", relayout);
  model.on("resize", relayout);
  receive(model.chunk);
  return surface.box;
}

// ---------------------------------------------------------------- traces
function renderTraces(model, el, info) {
  const surface = new Surface(el, model.title);
  let steps = [], values = [], t = 0;
  let lo = null, hi = null;

  function trim() {
    const extra = steps.length - model.window;
    if (extra > 0) { steps.splice(0, extra); for (const col of values) { col.splice(0, extra); } }
  }
  function fitY() {
    // follow the data and the threshold: [c - h, c + h], h = 0.55 * max(span, 0.1), only when the
    // data leaves the range or fills less than a quarter of it
    let a = Infinity, b = -Infinity;
    for (const col of values) { for (const v of col) { if (Number.isFinite(v)) { if (v < a) a = v; if (v > b) b = v; } } }
    const th = model.threshold;
    if (th != null && Number.isFinite(th)) { a = Math.min(a, th); b = Math.max(b, th); }
    if (!Number.isFinite(a)) { a = 0; b = 1; }
    const span = Math.max(b - a, 0.1);
    if (lo === null || a < lo || b > hi || span < 0.25 * (hi - lo)) {
      const c = (a + b) / 2, h = 0.55 * span;
      lo = c - h; hi = c + h;
    }
  }
  // One line as per-pixel-column bars: column c spans [min, max] of the samples drawn in it,
  // widened to the previous column's last sample so that consecutive columns join.
  function envelope(ctx, col, xStart, sx, sy, p, color) {
    ctx.fillStyle = color;
    const yOf = (v) => p.y + p.h - (v - lo) * sy;
    let c0 = -1, top = 0, bottom = 0, last = NaN;
    const flush = () => {
      if (c0 < 0) { return; }
      const y0 = Math.floor(top - 0.75), y1 = Math.ceil(bottom + 0.75);
      ctx.fillRect(p.x + c0, y0, 1, Math.max(1, y1 - y0));
    };
    for (let i = 0; i < steps.length; i++) {
      const v = col[i];
      if (!Number.isFinite(v)) { flush(); c0 = -1; last = NaN; continue; }
      const c = Math.floor((steps[i] - xStart + 0.5) * sx), y = yOf(v);
      if (c !== c0) {
        flush();
        c0 = c; top = bottom = y;
        if (Number.isFinite(last)) { top = Math.min(top, last); bottom = Math.max(bottom, last); }
      } else {
        if (y < top) { top = y; }
        if (y > bottom) { bottom = y; }
      }
      last = y;
    }
    flush();
  }
  function draw() {
    const window = model.window;
    const xEnd = Math.max(window, t), xStart = xEnd - window;
    fitY();
    const ctx = surface.begin(), p = surface.plot;
    surface.frame(xStart, window, lo, hi, "step", model.y_label, yTicksLinear(lo, hi, Math.max(2, Math.floor(p.h / 40))));
    const sx = p.w / window, sy = p.h / (hi - lo);
    ctx.save();
    ctx.beginPath(); ctx.rect(p.x, p.y, p.w, p.h); ctx.clip();
    const th = model.threshold;
    if (th != null && Number.isFinite(th)) {
      const y = p.y + p.h - (th - lo) * sy;
      ctx.strokeStyle = model.threshold_color; ctx.lineWidth = 1.5; ctx.setLineDash([6, 4]);
      ctx.beginPath(); ctx.moveTo(p.x, y); ctx.lineTo(p.x + p.w, y); ctx.stroke();
      ctx.setLineDash([]);
    }
    if (th !== info.threshold) {
      // when a new threshold reaches the screen: the animation frame after this draw
      requestAnimationFrame(() => { info.thresholdChanges += 1; info.thresholdAt = performance.now(); });
    }
    info.threshold = th;
    ctx.lineWidth = 1.5;
    // more than ~one step per pixel column: draw each column's min-max envelope as a bar (what
    // the line would cover anyway); stroking thousands of antialiased zig-zag segments costs a
    // software-rendered canvas tens of milliseconds per frame
    const dense = window > 1.5 * p.w;
    values.forEach((col, j) => {
      const color = model.colors[j % model.colors.length];
      if (dense) { envelope(ctx, col, xStart, sx, sy, p, color); return; }
      ctx.strokeStyle = color;
      ctx.beginPath();
      let pen = false;
      for (let i = 0; i < steps.length; i++) {
        const v = col[i];
        if (!Number.isFinite(v)) { pen = false; continue; }
        const x = p.x + (steps[i] - xStart + 0.5) * sx, y = p.y + p.h - (v - lo) * sy;
        if (pen) { ctx.lineTo(x, y); } else { ctx.moveTo(x, y); pen = true; }
      }
      ctx.stroke();
    });
    ctx.restore();
    // legend: in the top margin, right-aligned, so it never hides a line
    ctx.textAlign = "left"; ctx.textBaseline = "middle";
    let width = 0;
    for (const name of model.labels) { width += 26 + ctx.measureText(name).width; }
    let lx = Math.max(p.x + ctx.measureText(surface.title).width + 40, p.x + p.w - width);
    const ly = Math.round(MARGIN.top / 2) + 1;
    model.labels.forEach((name, j) => {
      ctx.strokeStyle = model.colors[j % model.colors.length]; ctx.lineWidth = 2;
      ctx.beginPath(); ctx.moveTo(lx, ly); ctx.lineTo(lx + 14, ly); ctx.stroke();
      ctx.fillStyle = AXIS_COLOR; ctx.fillText(name, lx + 18, ly);
      lx += 26 + ctx.measureText(name).width;
    });
    info.t = t;
    info.frames += 1;
  }
  function receive(c) {
    if (c == null || c.t == null) { return; }
    const m = model.labels.length;
    if (c.clear || values.length !== m) { steps = []; values = Array.from({ length: m }, () => []); lo = hi = null; }
    const s = unpack(c.steps, Int32Array), v = unpack(c.values, Float32Array);
    if (s != null && v != null) {
      const width = s.length > 0 ? Math.round(v.length / s.length) : m;
      for (let i = 0; i < s.length; i++) {
        steps.push(Number(s[i]));
        for (let j = 0; j < m; j++) { values[j].push(j < width ? Number(v[i * width + j]) : NaN); }
      }
    }
    t = Number(c.t);
    trim();
    draw();
  }
  const relayout = () => { surface.fit(); draw(); };
  listen(model, receive);
  model.on(["threshold", "window", "title", "labels"], () => { surface.title = model.title; trim(); draw(); });
  model.on("after_layout", relayout);
  model.on("resize", relayout);
  receive(model.chunk);
  return surface.box;
}

export function render({ model, el }) {
  const info = { kind: model.kind, name: model.title, frames: 0, t: 0, threshold: null, shown: 0,
                 thresholdChanges: 0, thresholdAt: null };
  const scopes = registry();
  scopes.push(info);
  model.on("remove", () => { const i = scopes.indexOf(info); if (i >= 0) { scopes.splice(i, 1); } });
  return model.kind === "raster" ? renderRaster(model, el, info) : renderTraces(model, el, info);
}
