/* univlg scene viewer: decodes the page's data, an orbit camera around a z-up world, masks recoloured on the points,
 * a legend with toggles; drawing is done by univlgRenderers (render.js, inlined before this file).
 * No dependencies and no network: the data comes from the <script id="univlg-data"> JSON of the page.
 * Add ?renderer=canvas to the page URL to force the 2D-canvas renderer. */
(function () {
  "use strict";

  var FOV = (50 * Math.PI) / 180;
  var BACKGROUND = [29, 31, 36];
  var COARSE_POINTS = 50000;

  // ------------------------------------------------------------------------------------------ decoding

  var LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

  function decodeArray(entry) {
    var text = atob(entry.base64);
    var bytes = new Uint8Array(text.length);
    for (var i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
    if (entry.dtype === "uint8") return bytes;
    if (!LITTLE_ENDIAN) {
      for (var j = 0; j < bytes.length; j += 4) {
        var a = bytes[j], b = bytes[j + 1];
        bytes[j] = bytes[j + 3]; bytes[j + 1] = bytes[j + 2]; bytes[j + 2] = b; bytes[j + 3] = a;
      }
    }
    return entry.dtype === "float32" ? new Float32Array(bytes.buffer) : new Uint32Array(bytes.buffer);
  }

  var DATA = JSON.parse(document.getElementById("univlg-data").textContent);
  var raw = decodeArray(DATA.points);
  var baseColors = decodeArray(DATA.colors);
  var count = raw.length / 3;

  // Centre the cloud at the origin so float32 keeps its precision on the GPU.
  var lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
  for (var p = 0; p < count; p++) {
    for (var c = 0; c < 3; c++) {
      var v = raw[3 * p + c];
      if (v < lo[c]) lo[c] = v;
      if (v > hi[c]) hi[c] = v;
    }
  }
  if (count === 0) { lo = [0, 0, 0]; hi = [0, 0, 0]; }
  var center = [0, 1, 2].map(function (k) { return (lo[k] + hi[k]) / 2; });
  var size = [0, 1, 2].map(function (k) { return hi[k] - lo[k]; });
  var radius = Math.max(0.5 * Math.hypot(size[0], size[1], size[2]), 1e-3);
  var positions = new Float32Array(count * 3);
  for (var q = 0; q < count * 3; q++) positions[q] = raw[q] - center[q % 3];
  // Typical spacing of the points, for the default point size: surface of the bounding box over the count.
  var area = 2 * (size[0] * size[1] + size[1] * size[2] + size[0] * size[2]);
  var spacing = count > 0 && area > 0 ? Math.sqrt(area / count) : radius / 50;

  /* Default of the height cut (0..1 of the z range): just below a ceiling, i.e. a dense slab at the top (one of the
   * top 5 of 50 height bins holding over 4% of the points), else 1 (nothing cut). */
  function defaultCut() {
    var bins = new Uint32Array(50);
    for (var i = 0; i < count; i++) {
      bins[Math.min(49, Math.floor(((positions[3 * i + 2] + size[2] / 2) / size[2]) * 50))]++;
    }
    for (var b = 45; b < 50; b++) if (size[2] > 0 && bins[b] > 0.04 * count) return (b - 0.5) / 50;
    return 1;
  }

  var highlights = DATA.highlights.map(function (h) {
    var indices = decodeArray(h.indices);
    var bmin = [Infinity, Infinity, Infinity], bmax = [-Infinity, -Infinity, -Infinity];
    for (var i = 0; i < indices.length; i++) {
      for (var k = 0; k < 3; k++) {
        var x = positions[3 * indices[i] + k];
        if (x < bmin[k]) bmin[k] = x;
        if (x > bmax[k]) bmax[k] = x;
      }
    }
    return { label: h.label, color: h.color, score: h.score, total: h.total, indices: indices, visible: true,
      bounds: indices.length ? [bmin, bmax] : null };
  });
  var boxes = DATA.boxes.map(function (b) {
    var bounds = b.box ? [[b.box[0] - center[0], b.box[1] - center[1], b.box[2] - center[2]],
      [b.box[3] - center[0], b.box[4] - center[1], b.box[5] - center[2]]] : null;
    return { label: b.label, color: b.color, score: b.score, visible: true, bounds: bounds };
  });

  // ------------------------------------------------------------------------------------------ camera

  var camera = {};
  function resetCamera() {
    camera.target = [0, 0, 0];
    camera.yaw = -Math.PI / 3;
    camera.pitch = 0.6;
    camera.distance = (radius / Math.tan(FOV / 2)) * 1.05;
  }
  resetCamera();

  function eyePosition() {
    var cp = Math.cos(camera.pitch);
    return [camera.target[0] + camera.distance * cp * Math.cos(camera.yaw),
      camera.target[1] + camera.distance * cp * Math.sin(camera.yaw),
      camera.target[2] + camera.distance * Math.sin(camera.pitch)];
  }
  function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
  function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
  function normalize(a) { var n = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / n, a[1] / n, a[2] / n]; }

  /* Camera axes in world coordinates: right, up, backward (from target to eye). */
  function cameraAxes() {
    var back = normalize(sub(eyePosition(), camera.target));
    var right = normalize(cross([0, 0, 1], back));
    return [right, cross(back, right), back];
  }
  function nearFar() {
    var near = Math.max(camera.distance * 0.01, radius * 1e-4);
    return [near, camera.distance + 3 * radius];
  }
  /* Horizontal shift of the image centre (normalized device units) so the scene sits beside the open panel. */
  function screenShift() {
    var panel = document.getElementById("panel"), width = canvas.clientWidth;
    if (panel.classList.contains("collapsed") || width < 2.5 * panel.offsetWidth) return 0;
    return (panel.offsetLeft + panel.offsetWidth) / width;
  }
  /* Column-major projection * view matrix for the current camera and the canvas aspect. */
  function viewProjection(aspect) {
    var nf = nearFar();
    return univlgRenderers.viewProjection(eyePosition(), cameraAxes(), FOV, aspect, nf[0], nf[1], screenShift());
  }
  function lookAt(bounds) {
    camera.target = [0, 1, 2].map(function (k) { return (bounds[0][k] + bounds[1][k]) / 2; });
    var extent = Math.hypot(bounds[1][0] - bounds[0][0], bounds[1][1] - bounds[0][1], bounds[1][2] - bounds[0][2]);
    camera.distance = Math.max(extent, spacing * 10) / Math.tan(FOV / 2);
    requestRender();
  }

  // ------------------------------------------------------------------------------------------ colours

  var displayColors = new Uint8Array(baseColors.length);
  function updateColors() {
    var dim = document.getElementById("dim").checked &&
      highlights.some(function (h) { return h.visible && h.indices.length; });
    for (var i = 0; i < baseColors.length; i++) {
      displayColors[i] = dim ? (baseColors[i] * 0.5 + BACKGROUND[i % 3] * 0.3) | 0 : baseColors[i];
    }
    highlights.forEach(function (h) {
      if (!h.visible) return;
      for (var j = 0; j < h.indices.length; j++) {
        var o = 3 * h.indices[j];
        for (var k = 0; k < 3; k++) displayColors[o + k] = (0.25 * baseColors[o + k] + 0.75 * h.color[k]) | 0;
      }
    });
    renderer.colorsChanged();
    requestRender();
  }

  // ------------------------------------------------------------------------------------------ renderer

  var canvas = document.getElementById("view");
  var overlay = document.getElementById("overlay");
  var overlayContext = overlay.getContext("2d");
  var scene = { positions: positions, count: count, colors: displayColors, boxes: boxes, background: BACKGROUND };

  function chooseRenderer() {
    if (!/[?&]renderer=canvas\b/.test(window.location.search)) {
      try {
        var gl = univlgRenderers.webgl(canvas, scene);
        if (gl) return gl;
      } catch (error) {
        document.getElementById("message").textContent = "WebGL failed (" + error.message + "); using the 2D canvas.";
      }
      var fresh = document.createElement("canvas"); // a canvas that held a WebGL context cannot give a 2D one
      fresh.id = "view";
      canvas.replaceWith(fresh);
      canvas = fresh;
    }
    return univlgRenderers.canvas2d(canvas, scene);
  }

  var renderer = chooseRenderer();
  document.body.setAttribute("data-renderer", renderer.kind);

  // ------------------------------------------------------------------------------------------ overlay

  function shortLabel(text) { return text.length > 48 ? text.slice(0, 47) + "\u2026" : text; }

  function drawOverlay(view) {
    var ctx = overlayContext, ratio = window.devicePixelRatio || 1;
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    renderer.drawBoxes(ctx, view, ratio);
    if (!document.getElementById("labels").checked) return;
    ctx.font = 12 * ratio + "px system-ui, sans-serif";
    ctx.textBaseline = "bottom";
    var placed = {};
    function label(entry, anchor) {
      var at = univlgRenderers.project(view.matrix, anchor, overlay.width, overlay.height, view.near);
      if (!at || placed[entry.label]) return;
      placed[entry.label] = true; // a mask and a box of the same sentence share one label
      var text = shortLabel(entry.label), width = ctx.measureText(text).width, pad = 3 * ratio;
      ctx.fillStyle = "rgba(20, 22, 26, 0.8)";
      ctx.fillRect(at[0] - width / 2 - pad, at[1] - 16 * ratio - pad, width + 2 * pad, 16 * ratio + pad);
      ctx.fillStyle = "rgb(" + entry.color.join(",") + ")";
      ctx.fillText(text, at[0] - width / 2, at[1] - pad / 2);
    }
    function topCenter(bounds) {
      return [(bounds[0][0] + bounds[1][0]) / 2, (bounds[0][1] + bounds[1][1]) / 2, bounds[1][2]];
    }
    boxes.forEach(function (b) { if (b.visible && b.bounds) label(b, topCenter(b.bounds)); });
    highlights.forEach(function (h) { if (h.visible && h.bounds) label(h, topCenter(h.bounds)); });
  }

  // ------------------------------------------------------------------------------------------ drawing

  function pointSizeWorld() { return parseFloat(document.getElementById("size").value) * spacing; }
  /* Centred z above which points are hidden (Infinity with the slider at its top). */
  function cutHeight() {
    var fraction = parseFloat(document.getElementById("cut").value) / 1000;
    return fraction >= 1 ? Infinity : -size[2] / 2 + fraction * size[2];
  }
  /* Device pixels per world unit at depth 1. */
  function pixelScale() { return canvas.height / (2 * Math.tan(FOV / 2)); }

  var pending = false;
  var wheelUntil = 0;
  /* While the camera moves, the 2D-canvas renderer draws about COARSE_POINTS points, then all of them. */
  function moving() { return pointers.size > 0 || performance.now() < wheelUntil; }
  function draw() {
    pending = false;
    var ratio = window.devicePixelRatio || 1;
    var width = Math.max(1, Math.round(canvas.clientWidth * ratio));
    var height = Math.max(1, Math.round(canvas.clientHeight * ratio));
    [canvas, overlay].forEach(function (c) {
      if (c.width !== width || c.height !== height) { c.width = width; c.height = height; }
    });
    var view = {
      matrix: viewProjection(width / height),
      sizeScale: pointSizeWorld() * pixelScale(),
      cutZ: cutHeight(),
      near: nearFar()[0],
      stride: moving() ? Math.max(1, Math.ceil(count / COARSE_POINTS)) : 1,
    };
    renderer.draw(view);
    drawOverlay(view);
  }
  function requestRender() {
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }

  // ------------------------------------------------------------------------------------------ interaction

  var pointers = new Map();
  var pinch = null;
  function pan(dx, dy) {
    var axes = cameraAxes();
    var perPixel = (2 * camera.distance * Math.tan(FOV / 2)) / Math.max(canvas.clientHeight, 1);
    for (var k = 0; k < 3; k++) camera.target[k] += (-dx * axes[0][k] + dy * axes[1][k]) * perPixel;
  }
  function zoom(factor) {
    camera.distance = Math.min(Math.max(camera.distance * factor, spacing), radius * 50);
  }
  function installControls() {
    canvas.addEventListener("contextmenu", function (event) { event.preventDefault(); });
    canvas.addEventListener("pointerdown", function (event) {
      canvas.setPointerCapture(event.pointerId);
      canvas.classList.add("dragging");
      pointers.set(event.pointerId, { x: event.clientX, y: event.clientY, pan: event.button === 2 || event.shiftKey });
      pinch = null;
    });
    canvas.addEventListener("pointermove", function (event) {
      var last = pointers.get(event.pointerId);
      if (!last) return;
      var dx = event.clientX - last.x, dy = event.clientY - last.y;
      if (pointers.size === 1) {
        if (last.pan) pan(dx, dy);
        else {
          camera.yaw -= dx * 0.008;
          camera.pitch = Math.min(Math.max(camera.pitch + dy * 0.008, -1.55), 1.55);
        }
      } else if (pointers.size === 2) {
        var others = Array.from(pointers.values());
        var gap = Math.hypot(others[0].x - others[1].x, others[0].y - others[1].y);
        if (pinch) zoom(pinch / Math.max(gap, 1));
        pinch = gap;
        pan(dx / 2, dy / 2);
      }
      last.x = event.clientX;
      last.y = event.clientY;
      requestRender();
    });
    function release(event) {
      pointers.delete(event.pointerId);
      pinch = null;
      if (!pointers.size) canvas.classList.remove("dragging");
      requestRender();
    }
    canvas.addEventListener("pointerup", release);
    canvas.addEventListener("pointercancel", release);
    canvas.addEventListener("wheel", function (event) {
      event.preventDefault();
      zoom(Math.exp(event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015)));
      wheelUntil = performance.now() + 200;
      window.setTimeout(requestRender, 250);
      requestRender();
    }, { passive: false });
    canvas.addEventListener("dblclick", function () { resetCamera(); requestRender(); });
    window.addEventListener("keydown", function (event) {
      if ((event.key === "r" || event.key === "R") && event.target === document.body) {
        resetCamera();
        requestRender();
      }
    });
    window.addEventListener("resize", requestRender);
  }

  // ------------------------------------------------------------------------------------------ panel

  function formatCount(n) { return n.toLocaleString("en-US"); }

  function legendRow(entry, meta, onToggle) {
    var row = document.createElement("li");
    var toggle = document.createElement("input");
    toggle.type = "checkbox";
    toggle.checked = entry.visible;
    toggle.title = "show or hide";
    toggle.addEventListener("change", function () { entry.visible = toggle.checked; onToggle(); });
    var swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = "rgb(" + entry.color.join(",") + ")";
    var text = document.createElement("span");
    text.className = "entry-text";
    text.textContent = entry.label;
    var details = document.createElement("span");
    details.className = "entry-meta";
    details.textContent = meta;
    text.appendChild(details);
    var focus = document.createElement("button");
    focus.type = "button";
    focus.textContent = "\u25ce";
    focus.title = "look at it";
    focus.disabled = !entry.bounds;
    focus.addEventListener("click", function () { lookAt(entry.bounds); });
    row.append(toggle, swatch, text, focus);
    return row;
  }

  function scoreText(score) {
    return score === null || score === undefined ? "" : "score " + score.toFixed(3) + " \u00b7 ";
  }

  function buildPanel() {
    document.getElementById("title").textContent = DATA.title;
    document.getElementById("stats").textContent = renderer.name + " \u00b7 " + formatCount(count) + " of " +
      formatCount(DATA.total_points) + " points shown";
    var list = document.getElementById("highlights");
    highlights.forEach(function (h) {
      var shown = h.indices.length === h.total ? formatCount(h.total)
        : formatCount(h.indices.length) + " of " + formatCount(h.total);
      list.appendChild(legendRow(h, scoreText(h.score) + shown + " points", updateColors));
    });
    var boxList = document.getElementById("boxes");
    boxes.forEach(function (b) {
      var dims = b.bounds && b.bounds[1].map(function (x, k) { return (x - b.bounds[0][k]).toFixed(2); });
      var meta = scoreText(b.score) + (dims ? dims.join(" \u00d7 ") + " m" : "empty (no box)");
      boxList.appendChild(legendRow(b, meta, function () { renderer.boxesChanged(); requestRender(); }));
    });
    document.getElementById("highlights-section").hidden = !highlights.length;
    document.getElementById("boxes-section").hidden = !boxes.length;
    document.getElementById("dim-control").hidden = !highlights.length;
    document.getElementById("labels-control").hidden = !highlights.length && !boxes.length;
    var sizeInput = document.getElementById("size");
    function showSize() {
      document.getElementById("size-value").textContent = "\u00d7" + parseFloat(sizeInput.value).toFixed(2);
    }
    sizeInput.addEventListener("input", function () { showSize(); requestRender(); });
    showSize();
    var cutInput = document.getElementById("cut");
    function showCut() {
      var z = cutHeight();
      var text = z === Infinity ? "off" : "z \u2264 " + (z + center[2]).toFixed(2);
      document.getElementById("cut-value").textContent = text;
    }
    cutInput.value = Math.round(defaultCut() * 1000);
    cutInput.addEventListener("input", function () { showCut(); requestRender(); });
    showCut();
    document.getElementById("dim").addEventListener("change", updateColors);
    document.getElementById("labels").addEventListener("change", requestRender);
    document.getElementById("reset").addEventListener("click", function () { resetCamera(); requestRender(); });
    document.getElementById("collapse").addEventListener("click", function () {
      document.getElementById("panel").classList.toggle("collapsed");
      requestRender();
    });
  }

  buildPanel();
  installControls();
  renderer.boxesChanged();
  updateColors();
})();
