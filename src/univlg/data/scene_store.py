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
