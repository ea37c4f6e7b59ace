"""3D training augmentation (UniVLG reference 3.8): one random affine map applied to a whole scene.

The map x' = S R (x - c) + c + t rotates about the vertical axis through the points' centre c by a multiple of 90
degrees, scales each axis by U(0.9, 1.1) and translates by t drawn per axis from U(-e, e) with e half the extent
of the centred points. It is applied to the camera poses (so lifted depth lands where the transformed points are)
and to the labelled points alike (:meth:`~univlg.data.scene.Scene.transformed`), which keeps every geometric
relation of the sentence true.
"""

from __future__ import annotations

import numpy as np


def random_scene_affine(
    points: np.ndarray,
    rng: np.random.Generator,
    rotate: bool = True,
    scale_range: tuple[float, float] = (0.9, 1.1),
    translate: bool = True,
) -> np.ndarray:
    """A random (4, 4) affine map for a scene whose labelled points are ``points`` (P, 3)."""
    centre = points.mean(axis=0) if len(points) else np.zeros(3)
    angle = np.pi / 2 * int(rng.integers(4)) if rotate else 0.0
    c, s = np.cos(angle), np.sin(angle)
    rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    scale = np.diag(rng.uniform(*scale_range, size=3))
    linear = scale @ rotation
    shift = np.zeros(3)
    if translate and len(points):
        half_extent = (points.max(axis=0) - points.min(axis=0)) / 2
        shift = rng.uniform(-half_extent, half_extent) / 2
    matrix = np.eye(4)
    matrix[:3, :3] = linear
    matrix[:3, 3] = centre - linear @ centre + shift
    return matrix
