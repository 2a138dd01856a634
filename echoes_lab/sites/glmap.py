"""A map of up to millions of sites in the lab: one WebGL2 draw call, no internet.

:class:`PointsMap` is an ``anywidget`` (https://anywidget.dev/) whose few hundred lines of
JavaScript run in JupyterLab and in Voilà apps alike, with nothing to fetch or build: the
browser's own WebGL2 draws every site as a point in one ``drawArrays`` call. The sites travel
to the browser once, as binary buffers (ipywidgets' binary messages: 8 bytes of float32
longitude/latitude and 2 bytes of category and flag per site, 10 MB for a million sites,
against about 220 bytes a site as GeoJSON). While the map is dragged or zoomed the last frame
moves (a CSS transform; the layers are drawn 25 % beyond each edge of the view), and the
points are drawn again when the gesture ends, as Leaflet does its canvas: a view is two
uniforms of the vertex shader. A filter on a category is a 256-bit mask in eight uniforms (the
points are not sent again), a filter on any other condition one byte per site
(:meth:`PointsMap.select`).

The projection is Web Mercator (EPSG:3857), the one of web map tiles, in "world units" (the
world is the unit square; Snyder, *Map Projections: A Working Manual*, USGS Professional Paper
1395, 1987, eqs. 7-1 and 7-2, with the radius and origin of the square)::

    x = (longitude + 180°) / 360°
    y = 1/2 - ln(tan(π/4 + latitude/2)) / (2π)

with the latitude clamped to ±85.0511° (the square's edge) and a zoom level ``z`` drawing the
world 256 × 2^z pixels wide, as tile servers do. The basemap, hazard polygons, place
annotations and a deployment's own tiles (a URL template) are drawn on a 2D canvas under and
over the points. Where the browser's WebGL is software (no GPU: SwiftShader, llvmpipe, as in
headless browsers and many remote desktops), a point costs a primitive's setup, about 2 µs: there
(``renderer="auto"``) the script draws the points into an image instead, one disc per pixel that
a shown site falls on, the sites at risk on top. A click picks the nearest shown site within a
few pixels (a scan of the projected coordinates in the browser, a few milliseconds for a
million); its record comes from the kernel as the popup.
"""

from __future__ import annotations

import html

import anywidget
import numpy as np
import pandas as pd
import traitlets

from echoes_lab.errors import DataError

#: the most categories a map's filter takes (one byte a site)
MAX_CATEGORIES = 256

_ESM = r"""
const VS = `#version 300 es
in vec2 a_pos;
in uint a_key;
in float a_flag;
in float a_vis;
uniform vec2 u_center;
uniform float u_scale;
uniform vec2 u_size;
uniform float u_radius;
uniform float u_only_flag;
uniform uint u_mask[8];
out float v_flag;
void main() {
  // the filter on categories: bit a_key of the 256 in eight uniforms
  float shown = float((u_mask[a_key >> 5u] >> (a_key & 31u)) & 1u) * a_vis;
  if (u_only_flag > 0.5 && a_flag < 0.5) shown = 0.0;
  vec2 px = (a_pos - u_center) * u_scale;
  // a filtered-out site is moved outside the clip space: it costs a vertex, not a fragment
  gl_Position = shown > 0.5 ? vec4(2.0 * px.x / u_size.x, -2.0 * px.y / u_size.y, 0.0, 1.0)
                            : vec4(2.0, 2.0, 2.0, 1.0);
  gl_PointSize = 2.0 * u_radius;
  v_flag = a_flag;
}`;
const FS = `#version 300 es
precision mediump float;
in float v_flag;
out vec4 color;
void main() {
  vec2 d = gl_PointCoord - vec2(0.5);
  float r = dot(d, d);
  if (r > 0.25) discard;
  vec3 c = v_flag > 0.5 ? vec3(0.69, 0.0, 0.0) : vec3(0.122, 0.306, 0.475);
  color = vec4(r > 0.12 ? c * 0.7 : c, 1.0);
}`;

const TAU = 2 * Math.PI;
function mercX(lon) { return (lon + 180) / 360; }
function mercY(lat) {
  const p = Math.max(-85.0511, Math.min(85.0511, lat)) * Math.PI / 180;
  return 0.5 - Math.log(Math.tan(Math.PI / 4 + p / 2)) / TAU;
}
function bytes(view) {
  if (!view || !view.byteLength) return new Uint8Array(0);
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}
function floats(view) {
  const b = bytes(view);
  // a Float32Array must start on a 4-byte boundary: copy when the message's does not
  if (b.byteOffset % 4) return new Float32Array(b.slice().buffer);
  return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
}
function compile(gl, type, src) {
  const s = gl.createShader(type);
  gl.shaderSource(s, src);
  gl.compileShader(s);
  if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
  return s;
}

function render({ model, el }) {
  el.classList.add("echoes-glmap");
  if (!el.style.height) el.style.height = model.get("height");
  // the layers are drawn on a stage larger than the view (PAD of its size on each side); while
  // the map is dragged or zoomed the stage only moves (a CSS transform, the compositor's
  // work), and the points are drawn again when the gesture ends, as Leaflet does its canvas
  const stage = document.createElement("div");
  stage.className = "echoes-glmap-stage";
  const base = document.createElement("canvas");
  const points = document.createElement("canvas");
  const cpu = document.createElement("canvas");
  const over = document.createElement("canvas");
  for (const c of [base, points, cpu, over]) c.className = "echoes-glmap-layer";
  points.classList.add("echoes-glmap-webgl");
  cpu.classList.add("echoes-glmap-cpu");
  stage.append(base, points, cpu, over);
  const events = document.createElement("div");
  events.className = "echoes-glmap-events";
  const popup = document.createElement("div");
  popup.className = "echoes-glmap-popup";
  popup.hidden = true;
  el.append(stage, events, popup);

  const gl = points.getContext("webgl2", { antialias: false, preserveDrawingBuffer: true,
                                           premultipliedAlpha: false });
  if (!gl) {
    el.textContent = "This browser has no WebGL2: the map of sites cannot be drawn.";
    el.dataset.error = "no-webgl2";
    return;
  }
  const prog = gl.createProgram();
  gl.attachShader(prog, compile(gl, gl.VERTEX_SHADER, VS));
  gl.attachShader(prog, compile(gl, gl.FRAGMENT_SHADER, FS));
  gl.linkProgram(prog);
  if (!gl.getProgramParameter(prog, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(prog));
  gl.useProgram(prog);
  const U = name => gl.getUniformLocation(prog, name);
  const vao = gl.createVertexArray();
  gl.bindVertexArray(vao);
  const buffers = {};
  function attribute(name, size, type, data, integer = false) {
    const loc = gl.getAttribLocation(prog, name);
    if (buffers[name]) gl.deleteBuffer(buffers[name]);
    const buf = gl.createBuffer();
    gl.bindVertexArray(vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, buf);
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(loc);
    if (integer) gl.vertexAttribIPointer(loc, size, type, 0, 0);
    else gl.vertexAttribPointer(loc, size, type, false, 0, 0);
    buffers[name] = buf;
  }

  let n = 0, xy = new Float32Array(0), keys = new Uint8Array(0), flags = new Uint8Array(0);
  let vis = new Uint8Array(0), maskBytes = new Uint8Array(256);
  function loadPoints() {
    const lonlat = floats(model.get("lonlat"));
    n = lonlat.length / 2;
    xy = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      xy[2 * i] = mercX(lonlat[2 * i]);
      xy[2 * i + 1] = mercY(lonlat[2 * i + 1]);
    }
    attribute("a_pos", 2, gl.FLOAT, xy);
    loadKeys(); loadFlags(); loadVisible();
  }
  function perSite(name) {
    const b = bytes(model.get(name));
    return b.length === n ? b : new Uint8Array(n).fill(name === "visible" ? 1 : 0);
  }
  function loadKeys() {
    keys = perSite("key");
    attribute("a_key", 1, gl.UNSIGNED_BYTE, keys, true);
  }
  function loadFlags() {
    flags = perSite("flag");
    attribute("a_flag", 1, gl.UNSIGNED_BYTE, flags);
  }
  function loadVisible() {
    vis = perSite("visible");
    attribute("a_vis", 1, gl.UNSIGNED_BYTE, vis);
  }
  function loadMask() {
    const shown = model.get("shown_keys");
    maskBytes = new Uint8Array(256);
    if (shown === null) maskBytes.fill(255);
    else for (const k of shown) maskBytes[k] = 255;
    const bits = new Uint32Array(8);
    maskBytes.forEach((m, k) => { if (m) bits[k >> 5] |= 1 << (k & 31); });
    gl.uniform1uiv(U("u_mask"), bits);
  }
  function isShown(i) {
    return maskBytes[keys[i]] && vis[i] && (!model.get("only_flagged") || flags[i]);
  }
  function countShown() {
    let c = 0;
    for (let i = 0; i < n; i++) if (isShown(i)) c++;
    return c;
  }

  // the view: centre in world units, scale in CSS pixels per world unit (256 * 2^zoom);
  // `drawn` is the view the stage was last drawn for
  const view = { x: mercX(model.get("center")[1]), y: mercY(model.get("center")[0]),
                 scale: 256 * 2 ** model.get("zoom") };
  let drawn = { ...view };
  let width = 1, height = 1, padX = 0, padY = 0, dpr = window.devicePixelRatio || 1;
  const PAD = 0.25;
  const ctxBase = base.getContext("2d"), ctxOver = over.getContext("2d");
  const ctxCpu = cpu.getContext("2d");
  // a software WebGL (no GPU: SwiftShader, llvmpipe; remote desktops, headless browsers) sets
  // up each point as a primitive, about 2 µs each: there the points are drawn by the script
  // into an image, which is much faster for a million (benchmarks/README.md)
  const info = gl.getExtension("WEBGL_debug_renderer_info");
  const software = /swiftshader|llvmpipe|software/i.test(
    String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER)));
  function onCpu() {
    const r = model.get("renderer");
    return r === "cpu" || (r === "auto" && software);
  }
  // 0xAABBGGRR (ImageData's bytes on little-endian machines): the sites' blue and the red of
  // those at risk, each with its darker rim, as the fragment shader draws them
  const COLOURS = [[0xff794e1f, 0xff553716], [0xff0000b0, 0xff00007b]];
  function disc(r) {
    const out = [], k = Math.ceil(r);
    for (let dy = -k; dy <= k; dy++) {
      for (let dx = -k; dx <= k; dx++) {
        const d = (dx * dx + dy * dy) / (r * r);
        if (d <= 1) out.push(dx, dy, d > 0.48 ? 1 : 0);
      }
    }
    return out;
  }
  let centres = new Uint8Array(0);
  function rasterize() {
    const W = cpu.width, H = cpu.height;
    const img = ctxCpu.createImageData(W, H);
    const buf = new Uint32Array(img.data.buffer);
    const s = drawn.scale * dpr, ox = W / 2 - drawn.x * s, oy = H / 2 - drawn.y * s;
    const only = model.get("only_flagged");
    // first the pixel each shown site falls on (1: a site, 2: a site at risk, which wins),
    // then one disc per such pixel: a million sites over a few hundred thousand pixels cost
    // a disc per pixel, not per site
    if (centres.length !== W * H) centres = new Uint8Array(W * H);
    else centres.fill(0);
    for (let i = 0; i < n; i++) {
      if (!maskBytes[keys[i]] || !vis[i] || (only && !flags[i])) continue;
      const px = Math.round(xy[2 * i] * s + ox), py = Math.round(xy[2 * i + 1] * s + oy);
      if (px < 0 || py < 0 || px >= W || py >= H) continue;
      const c = flags[i] ? 2 : 1, at = py * W + px;
      if (centres[at] < c) centres[at] = c;
    }
    const r = Math.max(0.5, model.get("radius") * dpr), st = disc(r), k = Math.ceil(r);
    const offsets = [], rims = [];
    for (let j = 0; j < st.length; j += 3) {
      offsets.push(st[j + 1] * W + st[j]);
      rims.push(st[j + 2]);
    }
    for (const c of [1, 2]) {  // the sites at risk over the others
      const colour = COLOURS[c - 1];
      for (let y = 0; y < H; y++) {
        const inside = y >= k && y < H - k;
        for (let x = 0, at = y * W; x < W; x++, at++) {
          if (centres[at] !== c) continue;
          if (inside && x >= k && x < W - k) {
            for (let j = 0; j < offsets.length; j++) buf[at + offsets[j]] = colour[rims[j]];
          } else {
            for (let j = 0; j < st.length; j += 3) {
              const xx = x + st[j], yy = y + st[j + 1];
              if (xx >= 0 && yy >= 0 && xx < W && yy < H) buf[yy * W + xx] = colour[st[j + 2]];
            }
          }
        }
      }
    }
    ctxCpu.putImageData(img, 0, 0);
  }
  const tiles = new Map();
  // world units to the stage's CSS pixels, for the view it is drawn for
  function toStage(x, y) {
    return [(x - drawn.x) * drawn.scale + width / 2 + padX,
            (y - drawn.y) * drawn.scale + height / 2 + padY];
  }
  function drawShapes(ctx, geojson, stroke, fill) {
    if (!geojson || !geojson.features) return;
    ctx.strokeStyle = stroke; ctx.fillStyle = fill; ctx.lineWidth = 1;
    const ring = r => r.forEach(([lon, lat], i) => {
      const [sx, sy] = toStage(mercX(lon), mercY(lat));
      if (i) ctx.lineTo(sx, sy); else ctx.moveTo(sx, sy);
    });
    for (const f of geojson.features) {
      const g = f.geometry;
      if (!g) continue;
      ctx.beginPath();
      if (g.type === "Polygon") g.coordinates.forEach(ring);
      else if (g.type === "MultiPolygon") g.coordinates.forEach(p => p.forEach(ring));
      else if (g.type === "LineString") ring(g.coordinates);
      else if (g.type === "MultiLineString") g.coordinates.forEach(ring);
      else continue;
      ctx.fill("evenodd"); ctx.stroke();
    }
  }
  function drawTiles() {
    const url = model.get("tiles");
    if (!url) return;
    const z = Math.max(0, Math.min(19, Math.round(Math.log2(drawn.scale / 256))));
    const count = 2 ** z, size = drawn.scale / count;
    const W = width + 2 * padX, H = height + 2 * padY;
    const x0 = drawn.x - W / 2 / drawn.scale, y0 = drawn.y - H / 2 / drawn.scale;
    const ty1 = Math.min(count, (y0 + H / drawn.scale) * count);
    for (let tx = Math.floor(x0 * count); tx < (x0 + W / drawn.scale) * count; tx++) {
      for (let ty = Math.max(0, Math.floor(y0 * count)); ty < ty1; ty++) {
        const wx = ((tx % count) + count) % count;
        const src = url.replace("{z}", z).replace("{x}", wx).replace("{y}", ty)
          .replace("{s}", "a");
        let img = tiles.get(src);
        if (!img) {
          img = new Image();
          img.onload = () => schedule();
          img.src = src;
          tiles.set(src, img);
        }
        if (img.complete && img.naturalWidth) {
          const [sx, sy] = toStage(tx / count, ty / count);
          ctxBase.drawImage(img, sx, sy, size + 0.5, size + 0.5);
        }
      }
    }
  }
  function drawNotes() {
    const notes = model.get("annotations");
    const features = (notes && notes.features) || [];
    ctxOver.strokeStyle = "#d98c00";
    ctxOver.fillStyle = "rgba(217,140,0,0.3)";
    ctxOver.lineWidth = 2;
    for (const f of features) {
      const g = f.geometry;
      if (!g || g.type !== "Point") continue;
      const [sx, sy] = toStage(mercX(g.coordinates[0]), mercY(g.coordinates[1]));
      ctxOver.beginPath(); ctxOver.arc(sx, sy, 8, 0, TAU); ctxOver.fill(); ctxOver.stroke();
    }
    const shapes = features.filter(f => f.geometry && f.geometry.type !== "Point");
    drawShapes(ctxOver, { features: shapes }, "#d98c00", "rgba(217,140,0,0.2)");
  }
  // the stage follows the view between draws; the popup follows it always
  function follow() {
    const k = view.scale / drawn.scale;
    const tx = (drawn.x - view.x) * view.scale + (1 - k) * (width / 2 + padX);
    const ty = (drawn.y - view.y) * view.scale + (1 - k) * (height / 2 + padY);
    stage.style.transform = `translate(${tx}px, ${ty}px) scale(${k})`;
    const p = model.get("popup");
    if (p && p.html) {
      popup.style.left = `${(mercX(p.lon) - view.x) * view.scale + width / 2}px`;
      popup.style.top = `${(mercY(p.lat) - view.y) * view.scale + height / 2}px`;
    }
  }
  let frames = 0, pending = false, shownCount = -1, filterAt = 0;
  function draw() {
    pending = false;
    const began = performance.now();
    drawn = { ...view };
    for (const ctx of [ctxBase, ctxOver]) {
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, width + 2 * padX, height + 2 * padY);
    }
    drawTiles();
    drawShapes(ctxBase, model.get("basemap"), "#888", "rgba(136,136,136,0.05)");
    drawShapes(ctxBase, model.get("hazards"), "#c33", "rgba(204,51,51,0.2)");
    gl.viewport(0, 0, points.width, points.height);
    gl.clearColor(0, 0, 0, 0);
    gl.clear(gl.COLOR_BUFFER_BIT);
    const renderer = onCpu() ? "cpu" : "webgl";
    el.dataset.renderer = renderer;
    if (renderer === "cpu") rasterize();
    else ctxCpu.clearRect(0, 0, cpu.width, cpu.height);
    gl.uniform2f(U("u_center"), drawn.x, drawn.y);
    gl.uniform1f(U("u_scale"), drawn.scale);
    gl.uniform2f(U("u_size"), width + 2 * padX, height + 2 * padY);
    gl.uniform1f(U("u_radius"), model.get("radius") * dpr);
    gl.uniform1f(U("u_only_flag"), model.get("only_flagged") ? 1 : 0);
    gl.bindVertexArray(vao);
    if (n && renderer === "webgl") gl.drawArrays(gl.POINTS, 0, n);
    drawNotes();
    follow();
    // what tests and benchmarks read, once the frame is presented (the next animation frame
    // comes when the GPU has drawn this one): frames drawn, sites shown by the filter, and the
    // milliseconds from a filter's arrival in the browser to its frame
    const shownNow = shownCount, since = filterAt, took = performance.now() - began;
    filterAt = 0;
    requestAnimationFrame(() => {
      el.dataset.frames = ++frames;
      el.dataset.drawMs = took.toFixed(1);  // the script's share of the frame
      el.dataset.shown = shownNow;
      if (since) el.dataset.filterMs = (performance.now() - since).toFixed(1);
    });
  }
  function schedule() { if (!pending) { pending = true; requestAnimationFrame(draw); } }
  function refilter() { shownCount = countShown(); schedule(); }

  function resize() {
    dpr = window.devicePixelRatio || 1;
    width = Math.max(1, el.clientWidth); height = Math.max(1, el.clientHeight);
    padX = Math.round(PAD * width); padY = Math.round(PAD * height);
    Object.assign(stage.style, { left: `${-padX}px`, top: `${-padY}px`,
                                 width: `${width + 2 * padX}px`,
                                 height: `${height + 2 * padY}px` });
    for (const c of [base, points, cpu, over]) {
      c.width = Math.round((width + 2 * padX) * dpr);
      c.height = Math.round((height + 2 * padY) * dpr);
    }
    schedule();
  }

  // pan with the pointer, zoom with the wheel about the pointer; draw when the gesture ends
  let drag = null, settle = 0;
  events.addEventListener("pointerdown", e => {
    drag = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: 0 };
    events.setPointerCapture(e.pointerId);
  });
  events.addEventListener("pointermove", e => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    drag.moved = Math.max(drag.moved, Math.abs(dx) + Math.abs(dy));
    view.x = drag.vx - dx / view.scale; view.y = drag.vy - dy / view.scale;
    follow();
  });
  events.addEventListener("pointerup", e => {
    const d = drag;
    drag = null;
    if (d && d.moved < 4) pick(e);
    else if (d) schedule();
  });
  events.addEventListener("wheel", e => {
    e.preventDefault();
    const r = events.getBoundingClientRect();
    const mx = e.clientX - r.left - width / 2, my = e.clientY - r.top - height / 2;
    const wx = view.x + mx / view.scale, wy = view.y + my / view.scale;
    view.scale = Math.max(256, Math.min(256 * 2 ** 20, view.scale * Math.exp(-e.deltaY / 300)));
    view.x = wx - mx / view.scale; view.y = wy - my / view.scale;
    follow();
    clearTimeout(settle);
    settle = setTimeout(schedule, 150);
  }, { passive: false });

  let clicks = 0;
  function pick(e) {
    const r = events.getBoundingClientRect();
    const cx = view.x + (e.clientX - r.left - width / 2) / view.scale;
    const cy = view.y + (e.clientY - r.top - height / 2) / view.scale;
    const reach = (model.get("radius") + 3) / view.scale;
    let best = -1, bestD = reach * reach, layer = "sites";
    const notes = model.get("annotations");
    ((notes && notes.features) || []).forEach((f, i) => {
      const g = f.geometry;
      if (!g || g.type !== "Point") return;
      const dx = mercX(g.coordinates[0]) - cx, dy = mercY(g.coordinates[1]) - cy;
      const d = dx * dx + dy * dy, r8 = 9 / view.scale;
      if (d < r8 * r8 && (layer === "sites" || d < bestD)) {
        best = i; bestD = d; layer = "annotations";
      }
    });
    if (layer === "sites") {
      // a scan of the projected coordinates: a few ms for a million sites, no index to keep
      for (let i = 0; i < n; i++) {
        const dx = xy[2 * i] - cx, dy = xy[2 * i + 1] - cy;
        const d = dx * dx + dy * dy;
        if (d < bestD && isShown(i)) { best = i; bestD = d; }
      }
    }
    if (best < 0) { popup.hidden = true; return; }
    model.set("clicked", { layer, index: best, click: ++clicks });
    model.save_changes();
  }
  function showPopup() {
    const p = model.get("popup");
    if (!p || !p.html) { popup.hidden = true; return; }
    popup.innerHTML = `<button class="echoes-glmap-close" title="Close">×</button>` +
      `<div class="echoes-glmap-popup-content">${p.html}</div>`;
    popup.querySelector("button").onclick = () => { popup.hidden = true; };
    popup.hidden = false;
    follow();
  }

  loadPoints(); loadMask(); refilter();
  model.on("change:lonlat", () => { loadPoints(); refilter(); });
  model.on("change:key", () => { loadKeys(); refilter(); });
  model.on("change:flag", () => { loadFlags(); refilter(); });
  model.on("change:visible", () => { loadVisible(); refilter(); });
  model.on("change:shown_keys", () => { filterAt = performance.now(); loadMask(); refilter(); });
  model.on("change:only_flagged", refilter);
  model.on("change:popup", showPopup);
  for (const t of ["basemap", "hazards", "annotations", "tiles", "radius", "renderer"]) {
    model.on(`change:${t}`, schedule);
  }
  let fitted = false;
  function applyView() {
    const [s, w, nn, e] = model.get("view");
    if (s === undefined || width < 2) return;
    fitted = true;
    view.x = (mercX(w) + mercX(e)) / 2; view.y = (mercY(s) + mercY(nn)) / 2;
    const span = Math.max((mercX(e) - mercX(w)) / Math.max(width, 1),
                          (mercY(s) - mercY(nn)) / Math.max(height, 1));
    view.scale = span > 0 ? Math.min(256 * 2 ** 18, 0.9 / span) : view.scale;
    schedule();
  }
  model.on("change:view", applyView);
  // the first fit waits for the element's size (it may not be in the page yet)
  new ResizeObserver(() => { resize(); if (!fitted) applyView(); }).observe(el);
  resize();
  applyView();
}
export default { render };
"""

_CSS = """
.echoes-glmap { position: relative; width: 100%; min-height: 200px; overflow: hidden;
                background: #f4f6f8; }
.echoes-glmap-stage { position: absolute; transform-origin: 0 0; will-change: transform; }
.echoes-glmap-layer { position: absolute; inset: 0; width: 100%; height: 100%; }
.echoes-glmap-events { position: absolute; inset: 0; cursor: grab; touch-action: none; }
.echoes-glmap-popup { position: absolute; transform: translate(-50%, calc(-100% - 10px));
                      background: white; border-radius: 6px; padding: 6px 22px 6px 10px;
                      box-shadow: 0 2px 8px rgba(0,0,0,.3); max-width: 320px; font-size: 13px; }
.echoes-glmap-close { position: absolute; top: 2px; right: 4px; border: 0; background: none;
                      cursor: pointer; font-size: 15px; }
"""


class PointsMap(anywidget.AnyWidget):
    """A WebGL map of sites (see the module's docstring); made by ``gdf.sites.map()`` above
    :data:`echoes_lab.sites.WEBGL_ABOVE` sites or with ``engine="webgl"``.

    ``categories`` are the values of the column the map was made with (``key=``);
    :meth:`show` keeps the sites of some of them, :meth:`select` any subset, ``only_flagged``
    the sites at risk. ``clicked`` is the site (or annotation) last clicked; ``popup`` the
    record shown for it.
    """

    _esm = _ESM
    _css = _CSS
    lonlat = traitlets.Bytes(b"").tag(sync=True)
    key = traitlets.Bytes(b"").tag(sync=True)
    flag = traitlets.Bytes(b"").tag(sync=True)
    visible = traitlets.Bytes(b"").tag(sync=True)
    shown_keys = traitlets.List(traitlets.Int(), allow_none=True, default_value=None).tag(sync=True)
    only_flagged = traitlets.Bool(False).tag(sync=True)
    categories = traitlets.List(traitlets.Unicode()).tag(sync=True)
    center = traitlets.Tuple(traitlets.Float(), traitlets.Float(),
                             default_value=(46.0, 2.0)).tag(sync=True)
    zoom = traitlets.Float(5.0).tag(sync=True)
    view = traitlets.Tuple().tag(sync=True)
    height = traitlets.Unicode("500px").tag(sync=True)
    radius = traitlets.Float(3.0).tag(sync=True)
    renderer = traitlets.Enum(["auto", "webgl", "cpu"], "auto").tag(sync=True)
    tiles = traitlets.Unicode("").tag(sync=True)
    basemap = traitlets.Dict().tag(sync=True)
    hazards = traitlets.Dict().tag(sync=True)
    annotations = traitlets.Dict().tag(sync=True)
    clicked = traitlets.Dict().tag(sync=True)
    popup = traitlets.Dict().tag(sync=True)

    def __init__(self, sites, *, records: pd.DataFrame | None = None, key: str | None = None,
                 flagged=None, **kwargs):
        super().__init__(**kwargs)
        geoms = sites.geometry
        if len(sites) and not bool((geoms.geom_type == "Point").all()):
            # polygons and lines are drawn at a representative point inside each
            geoms = geoms.representative_point()
        xs, ys = np.asarray(geoms.x, dtype="float32"), np.asarray(geoms.y, dtype="float32")
        self._records = (records if records is not None else sites).reset_index(drop=True)
        self._xy = np.column_stack([xs, ys])
        if key is not None:
            if key not in sites.columns:
                msg = (f"the map's key '{key}' is not a column of the sites; columns are "
                       f"{', '.join(map(str, sites.columns))}")
                raise DataError(msg)
            codes, uniques = pd.factorize(sites[key].astype("string").fillna(""), sort=True)
            if len(uniques) > MAX_CATEGORIES:
                msg = (f"the map's key '{key}' has {len(uniques)} values; a map filters on at "
                       f"most {MAX_CATEGORIES}: choose a coarser column")
                raise DataError(msg)
            self.categories = [str(u) for u in uniques]
            self.key = np.asarray(codes, dtype="uint8").tobytes()
        self._key_column = key
        self.set_flagged(flagged)
        self.lonlat = self._xy.tobytes()
        self.observe(self._on_click, "clicked")

    def __len__(self) -> int:
        return len(self._xy)

    def set_flagged(self, flagged=None) -> None:
        """Which sites are drawn red ("at risk"): a boolean per site, or ``None`` for none."""
        if flagged is None:
            self.flag = b""
            return
        flagged = np.asarray(flagged, dtype=bool)
        if flagged.shape != (len(self._xy),):
            msg = f"flagged has {flagged.size} values for {len(self._xy)} sites: give one a site"
            raise DataError(msg)
        self.flag = flagged.astype("uint8").tobytes()

    def show(self, values=None) -> None:
        """Keep the sites whose ``key`` column is one of ``values`` (all for ``None``): only a
        list of category numbers goes to the browser."""
        if values is None:
            self.shown_keys = None
            return
        if self._key_column is None:
            msg = "this map was made without key=: filter it with .select(mask)"
            raise DataError(msg)
        index = {c: i for i, c in enumerate(self.categories)}
        unknown = [v for v in values if str(v) not in index]
        if unknown:
            msg = (f"{unknown} are not values of '{self._key_column}'; it has "
                   f"{', '.join(self.categories[:20])}")
            raise DataError(msg)
        self.shown_keys = sorted(index[str(v)] for v in values)

    def select(self, mask=None) -> None:
        """Keep the sites where ``mask`` (a boolean per site) is true; ``None`` keeps all."""
        if mask is None:
            self.visible = b""
            return
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self._xy),):
            msg = f"the mask has {mask.size} values for {len(self._xy)} sites: give one a site"
            raise DataError(msg)
        self.visible = mask.astype("uint8").tobytes()

    def fit(self, bounds) -> None:
        """Show ``bounds`` = (west, south, east, north) in degrees."""
        west, south, east, north = map(float, bounds)
        self.view = (south, west, north, east)

    def _on_click(self, change) -> None:
        what = change["new"] or {}
        i = int(what.get("index", -1))
        if what.get("layer") == "annotations":
            features = self.annotations.get("features", [])
            if not 0 <= i < len(features):
                return
            props = features[i]["properties"]
            lon, lat = features[i]["geometry"]["coordinates"][:2]
        elif 0 <= i < len(self._records):
            row = self._records.iloc[i]
            props = {k: row[k] for k in self._records.columns
                     if k not in ("geometry", "original") and _shown(row[k])}
            lon, lat = map(float, self._xy[i])
        else:
            return
        body = "<br>".join(f"<b>{html.escape(str(k))}</b>: {html.escape(str(v))}"
                           for k, v in props.items() if _shown(v))
        self.popup = {"html": body, "lon": float(lon), "lat": float(lat), "index": i,
                      "layer": what.get("layer", "sites")}


def _shown(value) -> bool:
    if value is None or isinstance(value, (dict, list)):
        return False
    try:
        return not bool(pd.isna(value)) and str(value) != ""
    except (TypeError, ValueError):
        return True
