"""A :class:`~univlg.data.scene.Scene` and its grounding results as a viewer page.

Everything is shown in the scene's axis-aligned frame, the frame in which ``UniVLG.ground`` reports masks and boxes.
The points shown are the ones the masks index: the scene's point set (a mesh's vertices, with their colours) when
the masks are over it, otherwise the points the groundings carry (e.g. the model's lifted sensor cloud), coloured
from the nearest lifted RGB-D pixel. A scene without a point set and without groundings shows its sensor cloud:
depth of a subset of frames unprojected and coloured by the images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from univlg.data.frames import uniform_frames
from univlg.data.scene import Frames, Scene
from univlg.errors import SceneError
from univlg.geometry import knn, unproject_depth
from univlg.viz.grounding_file import grounding_field
from univlg.viz.html import DEFAULT_POINT_COLOR, PageSummary, palette_color, write_scene_html


def sensor_cloud(frames: Frames, max_frames: int = 60, max_points: int = 1_000_000) -> tuple[np.ndarray, np.ndarray]:
    """The coloured points of the depth maps: up to ``max_frames`` posed frames, pixels strided to ~``max_points``.

    Args:
        frames: the scene's frames (rgb (V, H, W, 3) uint8, depth (V, H, W) metres, intrinsics, cam_to_world).

    Returns:
        xyz: (N, 3) float32 world points of the valid pixels of the chosen frames (frames evenly spaced among those
        with a finite pose, every s-th row and column with s chosen so that N <= ``max_points``);
        colors: (N, 3) uint8, the colour of each point's pixel.
    """
    keep = np.flatnonzero(frames.valid_pose)
    keep = keep[uniform_frames(keep.size, max_frames)]
    if keep.size == 0:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    height, width = frames.image_size
    stride = max(1, math.ceil(math.sqrt(keep.size * height * width / max_points)))
    depth = torch.from_numpy(np.ascontiguousarray(frames.depth[keep, ::stride, ::stride], dtype=np.float32))
    # Pixel (v, u) of the strided grid is pixel (s v, s u) of the full one: fx, fy, cx, cy scale by 1 / s.
    intrinsics = frames.intrinsics[keep].astype(np.float64)
    intrinsics[:, :2, :] /= stride
    points, valid = unproject_depth(
        depth, torch.from_numpy(intrinsics).float(), torch.from_numpy(frames.cam_to_world[keep].astype(np.float32))
    )
    rgb = frames.rgb[keep, ::stride, ::stride]
    mask = valid.numpy()
    return points.numpy()[mask].astype(np.float32), rgb[mask]


def transfer_colors(xyz: np.ndarray, source_xyz: np.ndarray, source_colors: np.ndarray) -> np.ndarray:
    """Colour of the nearest source point for each point: xyz (N, 3), source (M, 3) + (M, 3) uint8 -> (N, 3) uint8.

    Grey when there is no source point.
    """
    if len(source_xyz) == 0:
        return np.tile(np.asarray(DEFAULT_POINT_COLOR, dtype=np.uint8), (len(xyz), 1))
    _, nearest = knn(torch.from_numpy(np.asarray(xyz, np.float32)), torch.from_numpy(source_xyz.astype(np.float32)), 1)
    return source_colors[nearest[:, 0].numpy()]


def grounding_fields(grounding, index: int) -> dict:
    """``label``, ``mask`` ((P,) bool or None), ``box`` ((6,) or None), ``score``, ``points`` ((P, 3) or None).

    ``grounding`` is an object with attributes (``UniVLG.ground``'s :class:`~univlg.model.grounding.Grounding`)
    or a dict with keys (:func:`univlg.viz.grounding_file.read_groundings`); the label is ``label`` or else
    ``sentence``.
    """
    label = grounding_field(grounding, "label")
    label = grounding_field(grounding, "sentence") if label is None else label
    fields = {"label": f"grounding {index + 1}" if label is None else str(label)}
    for name, shape in (("mask", None), ("box", (6,)), ("points", None)):
        value = grounding_field(grounding, name)
        fields[name] = None if value is None else np.asarray(value)
        if shape is not None and value is not None and fields[name].shape != shape:
            got = fields[name].shape
            raise SceneError(f"grounding {index} ({fields['label']!r}): {name} must be {shape}, got {got}")
    fields["score"] = grounding_field(grounding, "score")
    return fields


def _display_points(scene: Scene, items: list[dict], max_frames: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(P, 3) points the masks index and their (P, 3) uint8 colours (see the module docstring)."""
    lengths = {len(item["mask"]) for item in items if item["mask"] is not None}
    own = scene.points
    if own is not None and lengths <= {len(own)}:
        return own.xyz, own.colors
    carried = next((item["points"] for item in items if item["points"] is not None), None)
    if carried is None:
        if not lengths:
            return sensor_cloud(scene.frames, max_frames=max_frames)
        has = f"its {len(own)} points" if own is not None else "no point set"
        raise SceneError(
            f"scene {scene.scene_id}: masks over {sorted(lengths)} points but the scene has {has}, and no grounding "
            f"carries the points its mask refers to (Grounding.points, or points_file in the grounding JSON)"
        )
    carried = np.asarray(carried, dtype=np.float32)
    if own is not None and own.colors is not None:
        colors = transfer_colors(carried, own.xyz, own.colors)
    else:
        colors = transfer_colors(carried, *sensor_cloud(scene.frames, max_frames=max_frames))
    return carried, colors


def scene_html(
    path: str | Path,
    scene: Scene,
    groundings: Sequence | None = None,
    *,
    title: str | None = None,
    max_points: int = 200_000,
    max_frames: int = 60,
) -> PageSummary:
    """Write a viewer page of ``scene`` with one mask and one box per grounding (same colour, labelled).

    Args:
        scene: any scene; shown in its axis-aligned frame (``scene.aligned()``).
        groundings: objects or dicts with ``mask`` (P,) bool over the shown points, ``box`` (6,) (xmin, ymin, zmin,
            xmax, ymax, zmax; NaN = none), ``sentence`` or ``label``, ``score``, and optionally ``points`` (P, 3),
            the axis-aligned points the mask refers to (needed when the scene has no point set of that size).
        title: default: the scene id.
        max_points: most points embedded (highlighted ones kept first).
        max_frames: frames lifted when the sensor cloud is needed (for the points or their colours).

    Raises:
        SceneError: a mask's length matches neither the scene's points nor the points a grounding carries.
    """
    scene = scene.aligned()
    items = [grounding_fields(g, i) for i, g in enumerate(groundings or [])]
    xyz, colors = _display_points(scene, items, max_frames)
    for i, item in enumerate(items):
        if item["mask"] is not None and len(item["mask"]) != len(xyz):
            raise SceneError(
                f"grounding {i} ({item['label']!r}): mask has {len(item['mask'])} entries for {len(xyz)} points"
            )
    highlights = [
        {"mask": item["mask"], "label": item["label"], "color": palette_color(i), "score": item["score"]}
        for i, item in enumerate(items)
        if item["mask"] is not None
    ]
    boxes = [
        {"box": item["box"], "label": item["label"], "color": palette_color(i), "score": item["score"]}
        for i, item in enumerate(items)
        if item["box"] is not None
    ]
    return write_scene_html(
        path,
        xyz,
        colors,
        highlights=highlights,
        boxes=boxes,
        title=scene.scene_id if title is None else title,
        max_points=max_points,
    )
