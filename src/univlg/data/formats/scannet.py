"""The ScanNet scan folder: mesh ``.ply``, over-segments, instance aggregation, scene meta, posed frames.

Readers and writers for the files of one scan in the ScanNet export layout::

    <scene>/<scene>_vh_clean_2.ply              mesh; its vertices are the scene's point set
    <scene>/<scene>_vh_clean_2.0.010000.segs.json   {"sceneId", "segIndices": [segment id per vertex]}
    <scene>/<scene>.aggregation.json            {"sceneId", "segGroups": [{"objectId", "label", "segments"}]}
    <scene>/<scene>.txt                         "key = value" meta lines, incl. "axisAlignment = 16 numbers"
    <scene>/color/<i>.jpg  depth/<i>.png (uint16 mm)  pose/<i>.txt (4x4 camera-to-world)
    <scene>/intrinsic/intrinsic_color.txt, intrinsic_depth.txt (4x4)

Every reader raises :class:`~univlg.errors.SceneError` naming the file and the problem.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from plyfile import PlyData, PlyElement

from univlg.data.formats import fields
from univlg.data.formats.axis_alignment import parse_axis_alignment
from univlg.errors import FormatError, SceneError

MESH_SUFFIX = "_vh_clean_2.ply"
LABELS_MESH_SUFFIX = "_vh_clean_2.labels.ply"
SEGMENTS_SUFFIX = "_vh_clean_2.0.010000.segs.json"
AGGREGATION_SUFFIX = ".aggregation.json"
DEPTH_SCALE = 1000.0  # ScanNet depth pngs store millimetres


@dataclass(frozen=True)
class AggregatedObject:
    """One annotated object: ScanNet ``objectId``, its label and the over-segment ids it covers."""

    object_id: int
    label: str
    segments: tuple[int, ...]


# ----------------------------------------------------------------------------------------------- mesh


def read_mesh_vertices(path: str | Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Vertices of a ``.ply`` mesh: xyz (P, 3) float32 and colours (P, 3) uint8 (None without colour)."""
    path = Path(path)
    try:
        vertex = PlyData.read(str(path))["vertex"].data
        xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float32)
    except FileNotFoundError as error:
        raise SceneError(f"{path}: mesh file not found") from error
    except Exception as error:  # plyfile raises many types on corrupted input
        raise SceneError(f"{path}: not a readable PLY mesh with x/y/z vertices ({error})") from error
    names = vertex.dtype.names
    colors = None
    if all(c in names for c in ("red", "green", "blue")):
        colors = np.stack([vertex["red"], vertex["green"], vertex["blue"]], axis=1).astype(np.uint8)
    if not np.isfinite(xyz).all():
        raise SceneError(f"{path}: mesh has non-finite vertex coordinates")
    return xyz, colors


def read_mesh_labels(path: str | Path) -> np.ndarray:
    """Per-vertex semantic ``label`` of a ScanNet ``_vh_clean_2.labels.ply``: (P,) int64."""
    path = Path(path)
    try:
        vertex = PlyData.read(str(path))["vertex"].data
        return np.asarray(vertex["label"], dtype=np.int64)
    except Exception as error:
        raise SceneError(f"{path}: not a readable labels PLY with a 'label' vertex property ({error})") from error


def write_mesh_ply(path: str | Path, xyz: np.ndarray, colors: np.ndarray, faces: np.ndarray | None = None) -> None:
    """Write a binary little-endian PLY like ScanNet's: xyz (P, 3) float, colours (P, 3) uint8, faces (F, 3)."""
    vertex = np.empty(
        len(xyz),
        dtype=[
            ("x", "<f4"),
            ("y", "<f4"),
            ("z", "<f4"),
            ("red", "u1"),
            ("green", "u1"),
            ("blue", "u1"),
            ("alpha", "u1"),
        ],
    )
    vertex["x"], vertex["y"], vertex["z"] = (np.asarray(xyz, dtype=np.float32)[:, i] for i in range(3))
    colors = np.asarray(colors, dtype=np.uint8)
    vertex["red"], vertex["green"], vertex["blue"] = colors[:, 0], colors[:, 1], colors[:, 2]
    vertex["alpha"] = 255
    elements = [PlyElement.describe(vertex, "vertex")]
    if faces is not None:
        face = np.empty(len(faces), dtype=[("vertex_indices", "i4", (3,))])
        face["vertex_indices"] = np.asarray(faces, dtype=np.int32)
        elements.append(PlyElement.describe(face, "face"))
    PlyData(elements, text=False, byte_order="<").write(str(path))


# -------------------------------------------------------------------------------- segments and objects


def read_json(path: Path) -> dict:
    """A scan's JSON file whose top level is an object (:func:`~univlg.data.formats.fields.read_json`); SceneError
    naming the file otherwise."""
    try:
        data = fields.read_json(path)
    except FileNotFoundError as error:
        raise SceneError(f"{path}: file not found") from error
    except FormatError as error:
        raise SceneError(str(error)) from error
    if not isinstance(data, dict):
        raise SceneError(f"{path}: expected a JSON object at the top level")
    return data


def read_segments(path: str | Path) -> np.ndarray:
    """Over-segment id of every mesh vertex from a ``.segs.json``: (P,) int64."""
    path = Path(path)
    data = read_json(path)
    if not isinstance(data.get("segIndices"), list):
        raise SceneError(f"{path}: missing the 'segIndices' list")
    try:
        return np.asarray(data["segIndices"], dtype=np.int64)
    except (TypeError, ValueError) as error:
        raise SceneError(f"{path}: 'segIndices' must hold integers ({error})") from error


def write_segments(path: str | Path, scene_id: str, segment_ids: np.ndarray) -> None:
    """Write a ScanNet ``.segs.json`` with one segment id per vertex (``segment_ids``: (P,) int)."""
    indices = np.asarray(segment_ids, dtype=np.int64).tolist()
    data = {"params": {"segMinVerts": "20"}, "sceneId": scene_id, "segIndices": indices}
    Path(path).write_text(json.dumps(data))


def read_aggregation(path: str | Path) -> list[AggregatedObject]:
    """The annotated objects of a ScanNet ``.aggregation.json``, in file order."""
    path = Path(path)
    groups = read_json(path).get("segGroups")
    if not isinstance(groups, list):
        raise SceneError(f"{path}: missing the 'segGroups' list")
    objects = []
    for index, group in enumerate(groups):
        try:
            objects.append(
                AggregatedObject(
                    object_id=int(group["objectId"]),
                    label=str(group["label"]),
                    segments=tuple(int(s) for s in group["segments"]),
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise SceneError(f"{path}: segGroups[{index}] lacks a valid objectId/label/segments ({error})") from error
    return objects


def write_aggregation(path: str | Path, scene_id: str, objects: list[AggregatedObject]) -> None:
    """Write a ScanNet ``.aggregation.json`` for ``objects``."""
    groups = [
        {"id": i, "objectId": o.object_id, "segments": list(o.segments), "label": o.label}
        for i, o in enumerate(objects)
    ]
    data = {"sceneId": scene_id, "appId": "univlg", "segGroups": groups, "segmentsFile": f"{scene_id}{SEGMENTS_SUFFIX}"}
    Path(path).write_text(json.dumps(data, indent=1))


def instance_ids_from_aggregation(segment_ids: np.ndarray, objects: list[AggregatedObject]) -> np.ndarray:
    """Per-vertex object id (P,) int64, -1 where no object covers the vertex's segment.

    ``segment_ids``: (P,) over-segment id of every vertex. A segment claimed by several objects goes to the last.
    """
    lookup = {}
    for obj in objects:
        for segment in obj.segments:
            lookup[segment] = obj.object_id
    if not lookup:
        return np.full(len(segment_ids), -1, dtype=np.int64)
    keys = np.fromiter(lookup.keys(), dtype=np.int64)
    values = np.fromiter(lookup.values(), dtype=np.int64)
    order = np.argsort(keys)
    keys, values = keys[order], values[order]
    position = np.clip(np.searchsorted(keys, segment_ids), 0, len(keys) - 1)
    return np.where(keys[position] == segment_ids, values[position], -1).astype(np.int64)


# ------------------------------------------------------------------------------------------ scene meta


def read_scene_meta(path: str | Path) -> dict[str, str]:
    """The ``key = value`` lines of a ScanNet scene ``.txt`` meta file."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise SceneError(f"{path}: cannot read scene meta file ({error})") from error
    meta = {}
    for line in lines:
        key, sep, value = line.partition("=")
        if sep:
            meta[key.strip()] = value.strip()
    return meta


def parse_alignment(values, where: fields.Where) -> np.ndarray:
    """:func:`~univlg.data.formats.axis_alignment.parse_axis_alignment` (16 numbers, last row [0, 0, 0, 1]) for a
    scan's own files: SceneError naming ``where``."""
    try:
        return parse_axis_alignment(values, where)
    except FormatError as error:
        raise SceneError(str(error)) from error


def axis_alignment_from_meta(meta: dict[str, str], where: str = "meta") -> np.ndarray:
    """The 4x4 ``axisAlignment`` matrix of a scene meta dict (identity when the line is absent)."""
    if "axisAlignment" not in meta:
        return np.eye(4)
    return parse_alignment(meta["axisAlignment"].split(), fields.Where(where, "key", "axisAlignment"))


def write_scene_meta(path: str | Path, axis_align: np.ndarray, extra: dict[str, str] | None = None) -> None:
    """Write a scene meta ``.txt`` with the ``axisAlignment`` line (``axis_align``: (4, 4)) and ``extra`` lines."""
    entries = {"axisAlignment": " ".join(f"{v:.6f}" for v in np.asarray(axis_align).reshape(-1))}
    entries.update(extra or {})
    Path(path).write_text("".join(f"{k} = {v}\n" for k, v in sorted(entries.items())))


def parse_matrix(values: list[str] | list[float], where: str, shape: tuple[int, int] = (4, 4)) -> np.ndarray:
    """A float64 matrix of ``shape`` from a flat list of numbers; SceneError naming ``where`` otherwise."""
    try:
        matrix = np.asarray([float(v) for v in values], dtype=np.float64)
    except ValueError as error:
        raise SceneError(f"{where}: non-numeric matrix entry ({error})") from error
    if matrix.size != shape[0] * shape[1]:
        raise SceneError(f"{where}: expected {shape[0] * shape[1]} numbers, found {matrix.size}")
    return matrix.reshape(shape)


# ---------------------------------------------------------------------------------------------- frames


def read_matrix_txt(path: str | Path) -> np.ndarray:
    """A whitespace-separated matrix file (a 4x4 pose, or a 3x3/4x4 intrinsic) as float64."""
    path = Path(path)
    try:
        rows = [line.split() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError as error:
        raise SceneError(f"{path}: file not found") from error
    except (OSError, UnicodeDecodeError) as error:
        raise SceneError(f"{path}: cannot read matrix file ({error})") from error
    n = len(rows)
    if n not in (3, 4) or any(len(r) != n for r in rows):
        raise SceneError(f"{path}: expected a 3x3 or 4x4 matrix, found rows of lengths {[len(r) for r in rows]}")
    return parse_matrix([v for r in rows for v in r], where=str(path), shape=(n, n))


def read_pose(path: str | Path) -> np.ndarray:
    """A 4x4 camera-to-world pose (float64; may hold inf/NaN where tracking was lost)."""
    pose = read_matrix_txt(path)
    if pose.shape != (4, 4):
        raise SceneError(f"{path}: a pose must be a 4x4 matrix, found {pose.shape}")
    return pose


def read_intrinsic(path: str | Path) -> np.ndarray:
    """A pinhole intrinsic matrix from a 3x3 or 4x4 text file, returned as (3, 3) float64."""
    matrix = read_matrix_txt(path)[:3, :3]
    if not (np.isfinite(matrix).all() and matrix[0, 0] > 0 and matrix[1, 1] > 0):
        raise SceneError(f"{path}: intrinsic matrix needs finite, positive focal lengths")
    return matrix


def write_matrix_txt(path: str | Path, matrix: np.ndarray) -> None:
    """Write a matrix as whitespace-separated rows (ScanNet's pose/intrinsic text layout)."""
    rows = np.atleast_2d(np.asarray(matrix, dtype=np.float64))
    Path(path).write_text("".join(" ".join(f"{v:.6f}" for v in row) + "\n" for row in rows))


def write_intrinsic(path: str | Path, intrinsic: np.ndarray) -> None:
    """Write a (3, 3) intrinsic as ScanNet's 4x4 text file."""
    matrix = np.eye(4)
    matrix[:3, :3] = intrinsic
    write_matrix_txt(path, matrix)


def read_color(path: str | Path) -> np.ndarray:
    """An RGB image as (H, W, 3) uint8."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            return np.array(image.convert("RGB"))
    except FileNotFoundError as error:
        raise SceneError(f"{path}: image not found") from error
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise SceneError(f"{path}: unreadable image ({error})") from error


def _read_integer_image(path: str | Path, what: str) -> np.ndarray:
    """A single-channel integer png as stored (H, W); SceneError naming ``what`` when missing, unreadable or not
    single-channel integers."""
    path = Path(path)
    try:
        with Image.open(path) as image:
            raw = np.asarray(image)
    except FileNotFoundError as error:
        raise SceneError(f"{path}: {what} not found") from error
    except (OSError, ValueError) as error:
        raise SceneError(f"{path}: unreadable {what} ({error})") from error
    if raw.ndim != 2 or raw.dtype.kind not in "ui":
        raise SceneError(f"{path}: {what} must be a single-channel integer image, got {raw.dtype} {raw.shape}")
    return raw


def read_depth(path: str | Path, depth_scale: float = DEPTH_SCALE) -> np.ndarray:
    """A 16-bit depth png as metres: (H, W) float32, 0 where the sensor had no reading."""
    raw = _read_integer_image(path, "depth image")
    return (raw.astype(np.float32) / depth_scale).astype(np.float32)


def read_instance_image(path: str | Path) -> np.ndarray:
    """A ScanNet ``instance-filt`` png (object id + 1 per pixel, 0 = no object) as (H, W) int64 ids, -1 = none."""
    return _read_integer_image(path, "instance image").astype(np.int64) - 1


def write_color(path: str | Path, rgb: np.ndarray, quality: int = 95) -> None:
    """Write an (H, W, 3) uint8 image; JPEG for ``.jpg``, lossless otherwise."""
    Image.fromarray(np.asarray(rgb, dtype=np.uint8)).save(path, quality=quality)


def write_depth(path: str | Path, depth: np.ndarray, depth_scale: float = DEPTH_SCALE) -> None:
    """Write (H, W) metres as a uint16 png (millimetres by default); invalid (non-finite, <= 0) becomes 0."""
    depth = np.asarray(depth, dtype=np.float64)
    depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0.0)
    raw = np.clip(np.round(depth * depth_scale), 0, 65535).astype(np.uint16)
    Image.fromarray(raw).save(path)
