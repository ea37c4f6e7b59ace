"""A small in-memory cache of scenes loaded from a folder of scan folders (``<root>/<scene_id>/...``)."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from univlg.data.scene import Scene, load_scene
from univlg.errors import SceneError
from univlg.geometry import unproject_depth


class SceneStore:
    """Loads each scene once (axis-aligned) and keeps the ``capacity`` most recently used in memory."""

    def __init__(self, root: str | Path, capacity: int = 64):
        self.root = Path(root)
        if not self.root.is_dir():
            raise SceneError(f"{self.root}: scans folder not found")
        self.capacity = capacity
        self._scenes: OrderedDict[str, Scene] = OrderedDict()

    def get(self, scene_id: str) -> Scene:
        """The scene ``scene_id`` in its axis-aligned frame."""
        if scene_id in self._scenes:
            self._scenes.move_to_end(scene_id)
            return self._scenes[scene_id]
        scene = load_scene(self.root / scene_id).aligned()
        self._scenes[scene_id] = scene
        if len(self._scenes) > self.capacity:
            self._scenes.popitem(last=False)
        return scene

    def camera_point_map(self, scene_id: str, frame_name: str, max_depth: float = 15.0) -> tuple[np.ndarray, ...]:
        """The camera-frame point map of one frame: (H, W, 3) float32 and its (H, W) bool validity."""
        scene = self.get(scene_id)
        if frame_name not in scene.frames.names:
            raise SceneError(f"{self.root / scene_id}: no frame named {frame_name!r}")
        v = scene.frames.names.index(frame_name)
        points, valid = unproject_depth(
            torch.from_numpy(scene.frames.depth[v : v + 1]),
            torch.from_numpy(scene.frames.intrinsics[v : v + 1]),
            torch.eye(4)[None],
            max_depth=max_depth,
        )
        return points[0].numpy(), valid[0].numpy()

    def image_point_map(
        self, file_name: str, image_size: tuple[int, int], max_depth: float = 15.0
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The camera-frame point map of an image named ``<scene>/color/<frame>.<ext>`` whose scene is in this
        store, for an image of ``image_size`` (H, W): ((H, W, 3) float32, (H, W) bool valid), resampled (nearest)
        from the depth grid when the colour image is larger or smaller (real ScanNet: 1296 x 968 colour, 640 x 480
        depth); None for any other image (it then takes the plain 2D path)."""
        parts = Path(file_name).parts
        if len(parts) != 3 or parts[1] != "color" or not (self.root / parts[0]).is_dir():
            return None
        points, valid = self.camera_point_map(parts[0], Path(parts[2]).stem, max_depth)
        height, width = image_size
        if points.shape[:2] != (height, width):
            rows = ((np.arange(height) + 0.5) * points.shape[0] / height).astype(np.int64)
            cols = ((np.arange(width) + 0.5) * points.shape[1] / width).astype(np.int64)
            points, valid = points[rows][:, cols], valid[rows][:, cols]
        return points, valid
