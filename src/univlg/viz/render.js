/* univlg viewer renderers: WebGL points and box lines, or a software 2D-canvas point splatter when WebGL is missing.
 * Both draw the same `scene` ({positions: Float32Array (N*3) centred, count, colors: Uint8Array (N*3), boxes:
 * [{bounds: [[x, y, z] min, max] or null, color: [r, g, b], visible}], background: [r, g, b]}) for a `view`
 * ({matrix: column-major Float32Array(16) projection * view, sizeScale: point diameter in device pixels at depth 1,
 * near: near-plane depth, cutZ: points above this height are hidden, stride: draw every stride-th point}). */
var univlgRenderers = (function () {
  "use strict";

  var BOX_EDGES = [0, 1, 1, 3, 3, 2, 2, 0, 4, 5, 5, 7, 7, 6, 6, 4, 0, 4, 1, 5, 2, 6, 3, 7];
  var MAX_SOFT_POINT = 12;

  /* Corner `corner` (bits: x, y, z take the max) of an axis-aligned box given as [min, max]. */
  function boxCorner(bounds, corner) {
    return [bounds[corner & 1][0], bounds[(corner >> 1) & 1][1], bounds[(corner >> 2) & 1][2]];
  }

  /* Screen position (pixels of a width x height target) of a point, or null when nearer than `near`. */
  function project(matrix, point, width, height, near) {
    var m = matrix, x = point[0], y = point[1], z = point[2];
    var w = m[3] * x + m[7] * y + m[11] * z + m[15];
    if (w < near) return null;
    return [((m[0] * x + m[4] * y + m[8] * z + m[12]) / w * 0.5 + 0.5) * width,
      (0.5 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / w * 0.5) * height];
  }

  /* Column-major projection * view matrix (Float32Array(16)) of a camera at `eye` with axes [right, up, backward]
   * (unit vectors), vertical field of view `fov` (radians), clip planes `near`/`far`; the image centre is moved
   * right by `shift` normalized device units. */
  function viewProjection(eye, axes, fov, aspect, near, far, shift) {
    var f = 1 / Math.tan(fov / 2), r = 1 / (near - far);
    var proj = [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (near + far) * r, -1, 0, 0, 2 * near * far * r, 0];
    var x = axes[0], y = axes[1], z = axes[2];
    function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
    var view = [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0,
      -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
    var out = new Float32Array(16);
    for (var col = 0; col < 4; col++) {
      for (var row = 0; row < 4; row++) {
        var sum = 0;
        for (var k = 0; k < 4; k++) sum += proj[k * 4 + row] * view[col * 4 + k];
        out[col * 4 + row] = sum;
      }
    }
    for (var c = 0; c < 4; c++) out[c * 4] += shift * out[c * 4 + 3];
    return out;
  }

  function compile(gl, vertexSource, fragmentSource) {
    var program = gl.createProgram();
    [[gl.VERTEX_SHADER, vertexSource], [gl.FRAGMENT_SHADER, fragmentSource]].forEach(function (pair) {
      var shader = gl.createShader(pair[0]);
      gl.shaderSource(shader, pair[1]);
      gl.compileShader(shader);
      gl.attachShader(program, shader);
    });
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    return program;
  }

  function webgl(target, scene) {
    var gl = target.getContext("webgl", { antialias: true }) || target.getContext("experimental-webgl");
    if (!gl) return null;
    var pointProgram = compile(gl,
      "attribute vec3 aPosition; attribute vec3 aColor; uniform mat4 uMatrix; uniform float uSize;" +
      "uniform float uMaxSize; uniform float uCutZ; varying vec3 vColor;" +
      "void main() { gl_Position = aPosition.z > uCutZ ? vec4(2.0, 2.0, 2.0, 1.0) : uMatrix * vec4(aPosition, 1.0);" +
      " gl_PointSize = clamp(uSize / max(gl_Position.w, 1e-6), 1.0, uMaxSize); vColor = aColor; }",
      "precision mediump float; varying vec3 vColor;" +
      "void main() { vec2 d = gl_PointCoord - 0.5; if (dot(d, d) > 0.25) discard; gl_FragColor = vec4(vColor, 1.0); }");
    var lineProgram = compile(gl,
      "attribute vec3 aPosition; attribute vec3 aColor; uniform mat4 uMatrix; varying vec3 vColor;" +
      "void main() { gl_Position = uMatrix * vec4(aPosition, 1.0); vColor = aColor; }",
      "precision mediump float; varying vec3 vColor; void main() { gl_FragColor = vec4(vColor, 1.0); }");
    var maxSize = Math.min(gl.getParameter(gl.ALIASED_POINT_SIZE_RANGE)[1], 64);
    var buffers = { points: gl.createBuffer(), colors: gl.createBuffer(), lines: gl.createBuffer(),
      lineColors: gl.createBuffer() };
    gl.bindBuffer(gl.ARRAY_BUFFER, buffers.points);
    gl.bufferData(gl.ARRAY_BUFFER, scene.positions, gl.STATIC_DRAW);
    var lineCount = 0;

    function bindAttributes(program, positionBuffer, colorBuffer) {
      var position = gl.getAttribLocation(program, "aPosition"), color = gl.getAttribLocation(program, "aColor");
      gl.bindBuffer(gl.ARRAY_BUFFER, positionBuffer);
      gl.enableVertexAttribArray(position);
      gl.vertexAttribPointer(position, 3, gl.FLOAT, false, 0, 0);
      gl.bindBuffer(gl.ARRAY_BUFFER, colorBuffer);
      gl.enableVertexAttribArray(color);
      gl.vertexAttribPointer(color, 3, gl.UNSIGNED_BYTE, true, 0, 0);
    }
    return {
      name: "WebGL",
      kind: "webgl",
      colorsChanged: function () {
        gl.bindBuffer(gl.ARRAY_BUFFER, buffers.colors);
        gl.bufferData(gl.ARRAY_BUFFER, scene.colors, gl.DYNAMIC_DRAW);
      },
      boxesChanged: function () {
        var lines = [], colors = [];
        scene.boxes.forEach(function (b) {
          if (!b.visible || !b.bounds) return;
          BOX_EDGES.forEach(function (corner) {
            lines.push.apply(lines, boxCorner(b.bounds, corner));
            colors.push(b.color[0], b.color[1], b.color[2]);
          });
        });
        lineCount = lines.length / 3;
        gl.bindBuffer(gl.ARRAY_BUFFER, buffers.lines);
        gl.bufferData(gl.ARRAY_BUFFER, new Float32Array(lines), gl.DYNAMIC_DRAW);
        gl.bindBuffer(gl.ARRAY_BUFFER, buffers.lineColors);
        gl.bufferData(gl.ARRAY_BUFFER, new Uint8Array(colors), gl.DYNAMIC_DRAW);
      },
      draw: function (view) {
        var bg = scene.background;
        gl.viewport(0, 0, target.width, target.height);
        gl.clearColor(bg[0] / 255, bg[1] / 255, bg[2] / 255, 1);
        gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
        gl.enable(gl.DEPTH_TEST);
        gl.useProgram(pointProgram);
        bindAttributes(pointProgram, buffers.points, buffers.colors);
        gl.uniformMatrix4fv(gl.getUniformLocation(pointProgram, "uMatrix"), false, view.matrix);
        gl.uniform1f(gl.getUniformLocation(pointProgram, "uSize"), view.sizeScale);
        gl.uniform1f(gl.getUniformLocation(pointProgram, "uMaxSize"), maxSize);
        gl.uniform1f(gl.getUniformLocation(pointProgram, "uCutZ"), view.cutZ);
        gl.drawArrays(gl.POINTS, 0, scene.count);
        if (lineCount) {
          gl.disable(gl.DEPTH_TEST); // boxes stay visible through the points around them
          gl.useProgram(lineProgram);
          bindAttributes(lineProgram, buffers.lines, buffers.lineColors);
          gl.uniformMatrix4fv(gl.getUniformLocation(lineProgram, "uMatrix"), false, view.matrix);
          gl.drawArrays(gl.LINES, 0, lineCount);
        }
      },
      drawBoxes: function () {},
    };
  }

  /* Software splatting with a depth buffer: every point is a square of its projected size. */
  function canvas2d(target, scene) {
    var context = target.getContext("2d");
    var image = null, pixels = null, depth = null;
    var bg = scene.background, background = (255 << 24) | (bg[2] << 16) | (bg[1] << 8) | bg[0];
    return {
      name: "2D canvas (no WebGL)",
      kind: "canvas",
      colorsChanged: function () {},
      boxesChanged: function () {},
      draw: function (view) {
        var w = target.width, h = target.height, m = view.matrix, positions = scene.positions, colors = scene.colors;
        if (!image || image.width !== w || image.height !== h) {
          image = context.createImageData(w, h);
          pixels = new Uint32Array(image.data.buffer);
          depth = new Float32Array(w * h);
        }
        pixels.fill(background);
        depth.fill(Infinity);
        var stride = view.stride || 1, grow = Math.sqrt(stride); // sparser points drawn larger while moving
        for (var i = 0; i < scene.count; i += stride) {
          var x = positions[3 * i], y = positions[3 * i + 1], z = positions[3 * i + 2];
          var cw = m[3] * x + m[7] * y + m[11] * z + m[15];
          if (cw < view.near || z > view.cutZ) continue;
          var px = ((m[0] * x + m[4] * y + m[8] * z + m[12]) / cw * 0.5 + 0.5) * w;
          var py = (0.5 - (m[1] * x + m[5] * y + m[9] * z + m[13]) / cw * 0.5) * h;
          var s = Math.min(Math.max(Math.round((grow * view.sizeScale) / cw), 1), MAX_SOFT_POINT);
          var left = Math.round(px - s / 2), top = Math.round(py - s / 2);
          var x0 = Math.max(left, 0), x1 = Math.min(left + s, w), y0 = Math.max(top, 0), y1 = Math.min(top + s, h);
          if (x0 >= x1 || y0 >= y1) continue;
          var color = (255 << 24) | (colors[3 * i + 2] << 16) | (colors[3 * i + 1] << 8) | colors[3 * i];
          for (var row = y0; row < y1; row++) {
            for (var o = row * w + x0, end = row * w + x1; o < end; o++) {
              if (cw < depth[o]) { depth[o] = cw; pixels[o] = color; }
            }
          }
        }
        context.putImageData(image, 0, 0);
      },
      /* Box edges on a 2D context (the overlay): WebGL draws them itself. */
      drawBoxes: function (ctx, view, ratio) {
        ctx.lineWidth = ratio;
        scene.boxes.forEach(function (b) {
          if (!b.visible || !b.bounds) return;
          ctx.strokeStyle = "rgb(" + b.color.join(",") + ")";
          ctx.beginPath();
          for (var e = 0; e < BOX_EDGES.length; e += 2) {
            var w = ctx.canvas.width, h = ctx.canvas.height;
            var a = project(view.matrix, boxCorner(b.bounds, BOX_EDGES[e]), w, h, view.near);
            var c = project(view.matrix, boxCorner(b.bounds, BOX_EDGES[e + 1]), w, h, view.near);
            if (!a || !c) continue;
            ctx.moveTo(a[0], a[1]);
            ctx.lineTo(c[0], c[1]);
          }
          ctx.stroke();
        });
      },
    };
  }

  return { webgl: webgl, canvas2d: canvas2d, project: project, viewProjection: viewProjection };
})();
