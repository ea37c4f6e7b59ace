"""Scene records: posed RGB-D frames, an optional labelled point set, and the objects they contain.

A :class:`Scene` is what every 3D dataset loader, the synthetic world and a user's own capture turn into; the
model consumes it without knowing where it came from. Arrays are numpy; coordinates are metres in the scan's own
world frame (``axis_align`` maps them to the axis-aligned frame the benchmarks use, see :meth:`Scene.aligned`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from univlg.data.formats import scannet
from univlg.data.formats.fields import Where
from univlg.data.frames import uniform_frames
from univlg.errors import SceneError
from univlg.geometry.affine import transform_points
from univlg.geometry.camera import resize_intrinsics

logger = logging.getLogger(__name__)


@dataclass
class Frames:
    """Posed RGB-D frames of one scene.

    rgb: (V, H, W, 3) uint8; depth: (V, H, W) float32 metres, 0 where invalid; intrinsics: (V, 3, 3) float32 for
    the (H, W) grid, pixel centres at integer coordinates; cam_to_world: (V, 4, 4) float32, non-finite where the
    capture lost tracking; names: V frame names (the file stems).
    """

    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        v = len(self.names)
        if self.rgb.ndim != 4 or self.rgb.shape[-1] != 3 or self.rgb.dtype != np.uint8:
            raise SceneError(f"frames: rgb must be uint8 (V,H,W,3), got {self.rgb.dtype} {self.rgb.shape}")
        if self.depth.shape != self.rgb.shape[:3]:
            raise SceneError(f"frames: depth {self.depth.shape} does not match rgb {self.rgb.shape[:3]}")
        if self.intrinsics.shape != (v, 3, 3) or self.cam_to_world.shape != (v, 4, 4):
            raise SceneError(
                f"frames: expected intrinsics ({v},3,3) and cam_to_world ({v},4,4), "
                f"got {self.intrinsics.shape} and {self.cam_to_world.shape}"
            )
        if self.rgb.shape[0] != v:
            raise SceneError(f"frames: {self.rgb.shape[0]} images but {v} names")

    def __len__(self) -> int:
        return len(self.names)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every frame."""
        return int(self.rgb.shape[1]), int(self.rgb.shape[2])

    @property
    def valid_pose(self) -> np.ndarray:
        """(V,) bool: the frame's pose is finite."""
        return np.isfinite(self.cam_to_world).all(axis=(1, 2))

    def subset(self, indices) -> Frames:
        """The frames at ``indices`` (a sequence of ints or a bool mask), in that order."""
        idx = np.arange(len(self))[np.asarray(indices)]
        return Frames(
            rgb=self.rgb[idx],
            depth=self.depth[idx],
            intrinsics=self.intrinsics[idx],
            cam_to_world=self.cam_to_world[idx],
            names=tuple(self.names[i] for i in idx),
        )


@dataclass
class PointCloud:
    """The point set on which masks are reported (a mesh's vertices, or the lifted sensor cloud).

    xyz: (P, 3) float32; colors: (P, 3) uint8; instance_ids: (P,) int64, -1 = no object; semantic_ids: (P,) int64
    (dataset label ids, -1 = none); segment_ids: (P,) int64 over-segment ids. Optional fields may be None.
    """

    xyz: np.ndarray
    colors: np.ndarray | None = None
    instance_ids: np.ndarray | None = None
    semantic_ids: np.ndarray | None = None
    segment_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.xyz.ndim != 2 or self.xyz.shape[1] != 3:
            raise SceneError(f"points: xyz must be (P,3), got {self.xyz.shape}")
        p = self.xyz.shape[0]
        for name in ("colors", "instance_ids", "semantic_ids", "segment_ids"):
            value = getattr(self, name)
            if value is not None and value.shape[0] != p:
                raise SceneError(f"points: {name} has {value.shape[0]} rows for {p} points")

    def __len__(self) -> int:
        return int(self.xyz.shape[0])

    def transformed(self, matrix: np.ndarray) -> PointCloud:
        """A copy with xyz mapped by the 4x4 affine ``matrix`` (p' = M @ [p, 1]), computed in float64."""
        return replace(self, xyz=transform_points(self.xyz, matrix).astype(np.float32))


@dataclass
class Scene:
    """One 3D scene: frames, an optional labelled point set, and ``objects`` (instance id -> class name)."""

    scene_id: str
    frames: Frames
    points: PointCloud | None = None
    objects: dict[int, str] = field(default_factory=dict)
    axis_align: np.ndarray = field(default_factory=lambda: np.eye(4))

    def transformed(self, matrix: np.ndarray) -> Scene:
        """A copy with camera poses and points mapped by the (4, 4) affine ``matrix`` (x' = M @ [x, 1], in float64),
        so that lifted depth still lands on the points; ``axis_align`` is kept."""
        matrix = np.asarray(matrix, dtype=np.float64)
        poses = (matrix @ self.frames.cam_to_world.astype(np.float64)).astype(np.float32)
        points = self.points.transformed(matrix) if self.points is not None else None
        return replace(self, frames=replace(self.frames, cam_to_world=poses), points=points)

    def aligned(self) -> Scene:
        """The scene in axis-aligned coordinates: poses and points left-multiplied by ``axis_align``."""
        align = np.asarray(self.axis_align, dtype=np.float64)
        if np.allclose(align, np.eye(4)):
            return self
        return replace(self.transformed(align), axis_align=np.eye(4))

    def object_mask(self, instance_id: int) -> np.ndarray:
        """(P,) bool: the points of object ``instance_id``."""
        if self.points is None or self.points.instance_ids is None:
            raise SceneError(f"scene {self.scene_id}: no instance labels on its points")
        return self.points.instance_ids == instance_id


# ------------------------------------------------------------------------------------------------ loading

COLOR_SUFFIXES = (".jpg", ".jpeg", ".png")
DEPTH_SUFFIXES = (".png", ".npy")


def load_scene(
    path: str | Path,
    *,
    frame_skip: int = 1,
    max_frames: int | None = None,
    image_size: tuple[int, int] | None = None,
    depth_scale: float = scannet.DEPTH_SCALE,
    strict: bool = True,
    load_points: bool = True,
) -> Scene:
    """Read a scene folder: the ScanNet export layout or a generic posed RGB-D folder.

    Frames live in ``path`` or ``path/frames``: ``color/<i>.jpg|png``, ``depth/<i>.png`` (uint16, ``depth_scale``
    units per metre) or ``depth/<i>.npy`` (float metres), ``pose/<i>.txt`` (4x4 camera-to-world). Intrinsics, first
    found wins: per-frame ``intrinsic/<i>.txt``; ``intrinsic/intrinsic_depth.txt`` (for the depth grid);
    ``intrinsics.txt``, ``intrinsic/intrinsic_color.txt`` or ``intrinsic_color.txt`` (for the colour image,
    rescaled to the depth grid). Colour is resized to the depth grid when sizes differ. The mesh
    ``<scene>_vh_clean_2.ply`` (with ``.segs.json``, ``.aggregation.json``, ``_vh_clean_2.labels.ply``) and the
    meta ``<scene>.txt`` (axis alignment) are looked up in ``path`` and ``path/scan``.

    Frames are matched by name: with ``strict`` a frame missing from one folder is an error, otherwise only frames
    present in all three are kept (and the rest reported in the log). ``frame_skip`` keeps every n-th frame,
    ``max_frames`` then subsamples uniformly; ``image_size`` (H, W) resizes colour (bilinear) and depth (nearest).
    Bad input raises :class:`SceneError` naming the file and the problem.
    """
    root = Path(path)
    if not root.is_dir():
        raise SceneError(f"{root}: scene folder not found")
    frames_root = root if (root / "color").is_dir() else root / "frames"
    missing = [d for d in ("color", "depth", "pose") if not (frames_root / d).is_dir()]
    if missing:
        raise SceneError(f"{root}: missing frame folder(s) {missing} (looked in {root} and {root / 'frames'})")
    if frame_skip < 1 or (max_frames is not None and max_frames < 1):
        raise SceneError(f"{root}: frame_skip and max_frames must be positive")
    names, files = _match_frames(frames_root, strict)
    names = _select_frames(names[::frame_skip], max_frames)
    frames = _read_frames(frames_root, names, files, depth_scale, image_size)
    scan_dirs = [d for d in (root, root / "scan") if d.is_dir()]
    mesh = _find_one(scan_dirs, "*" + scannet.MESH_SUFFIX)
    scene_id = mesh.name[: -len(scannet.MESH_SUFFIX)] if mesh is not None else root.name
    points, objects = (None, {})
    if load_points and mesh is not None:
        points, objects = _read_points(mesh, scene_id)
    return Scene(
        scene_id=scene_id,
        frames=frames,
        points=points,
        objects=objects,
        axis_align=_read_axis_alignment(scan_dirs, scene_id),
    )


def _frame_sort_key(name: str):
    return (0, int(name), name) if name.isdigit() else (1, 0, name)


def _list_frames(folder: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    found = {}
    for file in folder.iterdir():
        if file.suffix.lower() in suffixes and file.stem not in found:
            found[file.stem] = file
    return found


def _match_frames(frames_root: Path, strict: bool) -> tuple[list[str], dict[str, dict[str, Path]]]:
    files = {
        "color": _list_frames(frames_root / "color", COLOR_SUFFIXES),
        "depth": _list_frames(frames_root / "depth", DEPTH_SUFFIXES),
        "pose": _list_frames(frames_root / "pose", (".txt",)),
    }
    common = set.intersection(*(set(f) for f in files.values()))
    problems = []
    for kind, found in files.items():
        lacking = sorted(set().union(*(set(f) for f in files.values())) - set(found), key=_frame_sort_key)
        if lacking:
            shown = ", ".join(lacking[:5]) + (" ..." if len(lacking) > 5 else "")
            problems.append(f"{len(lacking)} frame(s) have no {kind} file in {frames_root / kind}: {shown}")
    if problems and strict:
        raise SceneError(f"{frames_root}: frames do not match by name: " + "; ".join(problems))
    for problem in problems:
        logger.warning("%s: %s (those frames are skipped)", frames_root, problem)
    if not common:
        raise SceneError(f"{frames_root}: no frame has colour, depth and pose files")
    return sorted(common, key=_frame_sort_key), files


def _select_frames(names: list[str], max_frames: int | None) -> list[str]:
    if max_frames is None:
        return names
    return [names[i] for i in uniform_frames(len(names), max_frames)]


def _read_depth_file(file: Path, depth_scale: float) -> np.ndarray:
    if file.suffix.lower() != ".npy":
        return scannet.read_depth(file, depth_scale)
    try:
        depth = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SceneError(f"{file}: unreadable depth array ({error})") from error
    if depth.ndim != 2:
        raise SceneError(f"{file}: depth array must be (H, W), got {depth.shape}")
    return depth.astype(np.float32)


def _read_frames(
    frames_root: Path,
    names: list[str],
    files: dict[str, dict[str, Path]],
    depth_scale: float,
    image_size: tuple[int, int] | None,
) -> Frames:
    with ThreadPoolExecutor(max_workers=4) as pool:
        colors = list(pool.map(scannet.read_color, [files["color"][n] for n in names]))
        depths = list(pool.map(lambda n: _read_depth_file(files["depth"][n], depth_scale), names))
    poses = np.stack([scannet.read_pose(files["pose"][n]) for n in names])
    depth_hw = depths[0].shape
    for name, depth in zip(names, depths):
        if depth.shape != depth_hw:
            raise SceneError(f"{files['depth'][name]}: depth size {depth.shape} differs from {depth_hw} of the others")
    intrinsics = _read_intrinsics(frames_root, names, colors, depth_hw)
    target_hw = tuple(image_size) if image_size is not None else depth_hw
    rgb = np.stack([_resize_image(c, target_hw, Image.BILINEAR) for c in colors])
    depth = np.stack([_resize_image(d, target_hw, Image.NEAREST) for d in depths])
    intrinsics = np.stack([_rescale_intrinsic(k, depth_hw, target_hw) for k in intrinsics])
    return Frames(
        rgb=rgb,
        depth=depth.astype(np.float32),
        intrinsics=intrinsics.astype(np.float32),
        cam_to_world=poses.astype(np.float32),
        names=tuple(names),
    )


def _read_intrinsics(
    frames_root: Path, names: list[str], colors: list[np.ndarray], depth_hw: tuple[int, int]
) -> list[np.ndarray]:
    """One (3, 3) intrinsic per frame, expressed for the depth grid."""
    per_frame = frames_root / "intrinsic"
    if per_frame.is_dir() and all((per_frame / f"{n}.txt").is_file() for n in names):
        ks = [scannet.read_intrinsic(per_frame / f"{n}.txt") for n in names]
        return [_rescale_intrinsic(k, c.shape[:2], depth_hw) for k, c in zip(ks, colors)]
    if (per_frame / "intrinsic_depth.txt").is_file():
        return [scannet.read_intrinsic(per_frame / "intrinsic_depth.txt")] * len(names)
    for candidate in (
        frames_root / "intrinsics.txt",
        per_frame / "intrinsic_color.txt",
        frames_root / "intrinsic_color.txt",
    ):
        if candidate.is_file():
            k = scannet.read_intrinsic(candidate)
            return [_rescale_intrinsic(k, c.shape[:2], depth_hw) for c in colors]
    raise SceneError(
        f"{frames_root}: no intrinsics found (expected intrinsics.txt, intrinsic/intrinsic_depth.txt, "
        f"intrinsic/intrinsic_color.txt or per-frame intrinsic/<frame>.txt)"
    )


def _rescale_intrinsic(k: np.ndarray, old_hw: tuple[int, int], new_hw: tuple[int, int]) -> np.ndarray:
    """(3, 3) intrinsic of an image resized from ``old_hw`` to ``new_hw`` (pixel centres at integers)."""
    k = np.asarray(k, dtype=np.float64)
    if tuple(old_hw) == tuple(new_hw):
        return k
    return resize_intrinsics(torch.from_numpy(k), tuple(old_hw), tuple(new_hw)).numpy()


def _resize_image(image: np.ndarray, hw: tuple[int, int], resample: int) -> np.ndarray:
    if image.shape[:2] == tuple(hw):
        return image
    mode = "F" if image.dtype == np.float32 else None
    return np.asarray(Image.fromarray(image, mode=mode).resize((hw[1], hw[0]), resample))


def _find_one(folders: list[Path], pattern: str) -> Path | None:
    for folder in folders:
        matches = sorted(folder.glob(pattern))
        if matches:
            return matches[0]
    return None


def _read_points(mesh: Path, scene_id: str) -> tuple[PointCloud, dict[int, str]]:
    xyz, colors = scannet.read_mesh_vertices(mesh)
    folder = mesh.parent
    segments_file = folder / f"{scene_id}{scannet.SEGMENTS_SUFFIX}"
    aggregation_file = folder / f"{scene_id}{scannet.AGGREGATION_SUFFIX}"
    labels_file = folder / f"{scene_id}{scannet.LABELS_MESH_SUFFIX}"
    segment_ids = instance_ids = semantic_ids = None
    objects: dict[int, str] = {}
    if segments_file.is_file():
        segment_ids = scannet.read_segments(segments_file)
        if len(segment_ids) != len(xyz):
            raise SceneError(f"{segments_file}: {len(segment_ids)} segment ids for {len(xyz)} mesh vertices in {mesh}")
        if aggregation_file.is_file():
            aggregated = scannet.read_aggregation(aggregation_file)
            instance_ids = scannet.instance_ids_from_aggregation(segment_ids, aggregated)
            objects = {o.object_id: o.label for o in aggregated}
    if labels_file.is_file():
        semantic_ids = scannet.read_mesh_labels(labels_file)
        if len(semantic_ids) != len(xyz):
            raise SceneError(f"{labels_file}: {len(semantic_ids)} labels for {len(xyz)} mesh vertices in {mesh}")
    points = PointCloud(
        xyz=xyz, colors=colors, instance_ids=instance_ids, semantic_ids=semantic_ids, segment_ids=segment_ids
    )
    return points, objects


def _read_axis_alignment(folders: list[Path], scene_id: str) -> np.ndarray:
    """From ``<scene>.txt`` (axisAlignment line) or ``<scene>_axis_align_matrix.json``; identity when absent."""
    for folder in folders:
        meta = folder / f"{scene_id}.txt"
        if meta.is_file():
            matrix = scannet.axis_alignment_from_meta(scannet.read_scene_meta(meta), where=str(meta))
            if not np.allclose(matrix, np.eye(4)):
                return matrix
        matrix_json = folder / f"{scene_id}_axis_align_matrix.json"
        if matrix_json.is_file():
            data = scannet.read_json(matrix_json)
            key = scene_id if scene_id in data else "axis_align_matrix"
            if key not in data:
                raise SceneError(f"{matrix_json}: no matrix under key {scene_id!r}")
            return scannet.parse_alignment(data[key], Where(matrix_json, "key", key))
    return np.eye(4)
