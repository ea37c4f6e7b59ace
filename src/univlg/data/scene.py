"""Scene records: posed RGB-D frames, an optional labelled point set, and the objects they contain.

A :class:`Scene` is what every 3D dataset loader, the synthetic world and a user's own capture turn into; the
model consumes it without knowing where it came from. Arrays are numpy; coordinates are metres in the scan's own
world frame (``axis_align`` maps them to the axis-aligned frame the benchmarks use, see :meth:`Scene.aligned`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from univlg.errors import SceneError


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
        """A copy with xyz mapped by the 4x4 rigid ``matrix`` (p' = M @ [p, 1])."""
        xyz = self.xyz.astype(np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
        return replace(self, xyz=xyz.astype(np.float32))


@dataclass
class Scene:
    """One 3D scene: frames, an optional labelled point set, and ``objects`` (instance id -> class name)."""

    scene_id: str
    frames: Frames
    points: PointCloud | None = None
    objects: dict[int, str] = field(default_factory=dict)
    axis_align: np.ndarray = field(default_factory=lambda: np.eye(4))

    def aligned(self) -> Scene:
        """The scene in axis-aligned coordinates: poses and points left-multiplied by ``axis_align``."""
        align = np.asarray(self.axis_align, dtype=np.float64)
        if np.allclose(align, np.eye(4)):
            return self
        poses = (align @ self.frames.cam_to_world.astype(np.float64)).astype(np.float32)
        frames = replace(self.frames, cam_to_world=poses)
        points = self.points.transformed(align) if self.points is not None else None
        return replace(self, frames=frames, points=points, axis_align=np.eye(4))

    def object_mask(self, instance_id: int) -> np.ndarray:
        """(P,) bool: the points of object ``instance_id``."""
        if self.points is None or self.points.instance_ids is None:
            raise SceneError(f"scene {self.scene_id}: no instance labels on its points")
        return self.points.instance_ids == instance_id
