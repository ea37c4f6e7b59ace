"""4x4 affine maps of point arrays (numpy): the one place where ``p' = A @ [p, 1]`` is written for points."""

from __future__ import annotations

import numpy as np

__all__ = ["transform_points"]


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map points by an affine matrix, in float64.

    Args:
        points: (P, 3) float.
        matrix: (4, 4) or (3, 4) affine map; p' = matrix[:3, :3] @ p + matrix[:3, 3].

    Returns:
        (P, 3) float64.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    return np.asarray(points, dtype=np.float64) @ matrix[:3, :3].T + matrix[:3, 3]
