"""One self-contained HTML page showing a coloured point set, highlighted masks and boxes (see docs/viewer.md).

The page needs no network: the points are embedded as base64 arrays (see :mod:`univlg.viz.payload`) and the
renderer (``render.js``: WebGL points with a 2D-canvas fallback; ``viewer.js``: camera, legend, controls) is
inlined from the package data.
"""

from __future__ import annotations

import html
import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from univlg.viz.payload import encode_array, subsample_indices

logger = logging.getLogger(__name__)

PAGE_FORMAT = "univlg-view/1"
VIEWER_SCRIPTS = ("render.js", "viewer.js")  # package data, inlined in this order
DEFAULT_POINT_COLOR = (160, 160, 160)
# Distinct colours for masks and boxes (Trubetskoy's list), cycled when there are more entries.
PALETTE = (
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)


@dataclass(frozen=True)
class PageSummary:
    """What a written page holds: its path, points shown of the total, entries and file size in bytes."""

    path: Path
    shown_points: int
    total_points: int
    highlights: int
    boxes: int
    size_bytes: int


def palette_color(index: int) -> tuple[int, int, int]:
    """The ``index``-th default colour (r, g, b), cycling through :data:`PALETTE`."""
    return PALETTE[index % len(PALETTE)]


def write_scene_html(
    path: str | Path,
    points: np.ndarray,
    colors: np.ndarray | None = None,
    *,
    highlights: Sequence[dict] = (),
    boxes: Sequence[dict] = (),
    title: str = "univlg scene",
    max_points: int = 200_000,
) -> PageSummary:
    """Write one HTML file that shows the points in 3D (orbit, zoom, pan) with toggleable masks and boxes.

    Args:
        path: the ``.html`` file to write (parent folders are created).
        points: (P, 3) float world coordinates; rows that are not finite are left out of the page.
        colors: (P, 3) uint8 (or integers in 0..255); None = grey.
        highlights: dicts ``{"mask": (P,) bool, "label": str, "color": (r, g, b), "score": float}``; only
            ``mask`` is required. The legend lists the labels (e.g. the grounded sentences).
        boxes: dicts ``{"box": (6,) float (xmin, ymin, zmin, xmax, ymax, zmax), "label", "color", "score"}``; a
            box with NaN entries is listed in the legend as empty and not drawn.
        title: shown as the page title and above the legend.
        max_points: when P is larger, a deterministic subset is embedded, highlighted points first (see
            :func:`univlg.viz.payload.subsample_indices`).

    Returns:
        a :class:`PageSummary`.
    """
    xyz = np.asarray(points, dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ValueError(f"points must be (P, 3), got {xyz.shape}")
    num_points = xyz.shape[0]
    rgb = _check_colors(colors, num_points)
    masks = [_check_mask(item, i, num_points) for i, item in enumerate(highlights)]
    finite = np.isfinite(xyz).all(axis=1)
    if not finite.all():
        logger.warning("%d of %d points are not finite and are left out of the page", (~finite).sum(), num_points)
    preferred = np.logical_or.reduce(masks) if masks else None
    keep = subsample_indices(num_points, max_points, preferred=preferred, candidates=finite)
    if keep.size < finite.sum():
        logger.info("embedding %d of %d points (highlighted points first)", keep.size, finite.sum())
    data = {
        "format": PAGE_FORMAT,
        "title": str(title),
        "total_points": int(num_points),
        "points": encode_array(xyz[keep], "float32"),
        "colors": encode_array(rgb[keep], "uint8"),
        "source_index": encode_array(keep, "uint32"),
        "highlights": [
            {
                **_entry_fields(item, i, "mask"),
                "total": int(mask.sum()),
                "indices": encode_array(np.flatnonzero(mask[keep]), "uint32"),
            }
            for i, (item, mask) in enumerate(zip(highlights, masks))
        ],
        "boxes": [{**_entry_fields(item, i, "box"), "box": _check_box(item, i)} for i, item in enumerate(boxes)],
    }
    page = _render_page(str(title), data)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return PageSummary(
        path=out,
        shown_points=int(keep.size),
        total_points=int(num_points),
        highlights=len(masks),
        boxes=len(boxes),
        size_bytes=out.stat().st_size,
    )


def _check_colors(colors: np.ndarray | None, num_points: int) -> np.ndarray:
    if colors is None:
        return np.tile(np.asarray(DEFAULT_POINT_COLOR, dtype=np.uint8), (num_points, 1))
    rgb = np.asarray(colors)
    if rgb.shape != (num_points, 3):
        raise ValueError(f"colors must be ({num_points}, 3) like points, got {rgb.shape}")
    if rgb.dtype != np.uint8:
        if rgb.dtype.kind not in "ui" or (rgb.size and (rgb.min() < 0 or rgb.max() > 255)):
            raise ValueError(f"colors must be uint8 or integers in 0..255, got {rgb.dtype}")
        rgb = rgb.astype(np.uint8)
    return rgb


def _check_mask(item: dict, index: int, num_points: int) -> np.ndarray:
    if "mask" not in item:
        raise ValueError(f"highlights[{index}]: no 'mask'")
    mask = np.asarray(item["mask"])
    if mask.shape != (num_points,):
        raise ValueError(f"highlights[{index}]: mask must be ({num_points},) over the points, got {mask.shape}")
    if mask.dtype != bool:
        if mask.size and not np.isin(mask, (0, 1)).all():
            raise ValueError(f"highlights[{index}]: mask must be bool (or 0/1), got {mask.dtype}")
        mask = mask.astype(bool)
    return mask


def _check_box(item: dict, index: int) -> list[float] | None:
    if "box" not in item:
        raise ValueError(f"boxes[{index}]: no 'box'")
    box = np.asarray(item["box"], dtype=np.float64)
    if box.shape != (6,):
        raise ValueError(f"boxes[{index}]: box must be (6,) xmin, ymin, zmin, xmax, ymax, zmax; got {box.shape}")
    if not np.isfinite(box).all():
        return None
    return [float(v) for v in box]


def _entry_fields(item: dict, index: int, kind: str) -> dict:
    """label, color and score of a highlight or box, with defaults; scores that are not finite become null."""
    color = item.get("color")
    color = palette_color(index) if color is None else tuple(int(c) for c in color)
    if len(color) != 3 or not all(0 <= c <= 255 for c in color):
        raise ValueError(f"{kind} {index}: color must be (r, g, b) in 0..255, got {item.get('color')}")
    score = item.get("score")
    score = float(score) if score is not None and math.isfinite(float(score)) else None
    label = item.get("label")
    return {"label": f"{kind} {index + 1}" if label is None else str(label), "color": list(color), "score": score}


def _render_page(title: str, data: dict) -> str:
    """The page template with the title, the JSON data and the viewer script filled in (in one pass)."""
    package = resources.files("univlg.viz")
    template = package.joinpath("page.html").read_text(encoding="utf-8")
    values = {
        "TITLE": html.escape(title),
        # Inside <script>, "</script>" in a label would end the element; JSON's \u003c escape cannot.
        "DATA": json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c"),
        "SCRIPT": "\n".join(package.joinpath(name).read_text(encoding="utf-8") for name in VIEWER_SCRIPTS),
    }
    return re.sub(r"\{\{(TITLE|DATA|SCRIPT)\}\}", lambda match: values[match.group(1)], template)
