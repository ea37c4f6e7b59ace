"""Axis-alignment matrices of all ScanNet scans in one JSON (ReferIt3D's ``scans_axis_alignment_matrices.json``).

``{scene_id: [16 floats]}``, each a row-major 4x4 matrix A that maps raw scan coordinates to the axis-aligned frame
the grounding benchmarks use: ``p_aligned = A @ [p_raw, 1]``. The same matrix is the ``axisAlignment`` line of
each scan's meta ``.txt``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from univlg.data.formats.fields import Where, as_float, read_json, write_json
from univlg.errors import FormatError
from univlg.geometry.affine import transform_points


def parse_axis_alignment(values, where: Where) -> np.ndarray:
    """16 numbers (or a 4x4 nested list) -> (4, 4) float64; the last row must be [0, 0, 0, 1]."""
    flat = np.asarray(values, dtype=object).reshape(-1) if isinstance(values, (list, tuple)) else None
    if flat is None or flat.size != 16:
        raise where.error("matrix", f"expected 16 numbers, got {values!r:.80}")
    matrix = np.array([as_float(v, where, f"matrix[{k}]") for k, v in enumerate(flat)]).reshape(4, 4)
    if not np.allclose(matrix[3], [0, 0, 0, 1], atol=1e-6):
        raise where.error("matrix", f"last row must be [0, 0, 0, 1], got {matrix[3].tolist()}")
    return matrix


def read_axis_alignments(path: str | Path) -> dict[str, np.ndarray]:
    """Scene id -> (4, 4) float64 axis-alignment matrix; FormatError names the scene of a bad matrix."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise FormatError(f"{path}: expected an object {{scene_id: [16 numbers]}}, got {type(data).__name__}")
    return {scene: parse_axis_alignment(values, Where(path, "scene", scene)) for scene, values in data.items()}


def write_axis_alignments(path: str | Path, matrices: dict[str, np.ndarray]) -> None:
    """Write scene id -> (4, 4) matrices as ``{scene_id: [16 floats, row-major]}``."""
    write_json(path, {scene: np.asarray(m, dtype=float).reshape(16).tolist() for scene, m in matrices.items()})


def apply_axis_alignment(xyz: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (P, 3) in the raw scan frame -> (P, 3) float32 in the axis-aligned frame (``A @ [p, 1]``)."""
    return transform_points(xyz, matrix).astype(np.float32)
