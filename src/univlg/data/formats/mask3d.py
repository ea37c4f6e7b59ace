"""Mask3D-style preprocessed mesh point files, as the official UniVLG code reads them.

``mask3d_processed/{scannet,scannet200}/{train,validation,test}/<NNNN_NN>.npy``: float32 (P, 12) for train/val,
(P, 10) for test. Columns: 0-2 xyz (raw scan frame, not axis-aligned), 3-5 RGB 0..255, 6-8 normals (ones in the
UniVLG release), 9 over-segment id (re-indexed 0..S-1), 10 semantic label (NYU40 id for ``scannet``, ScanNet200
id for ``scannet200``), 11 instance id (aggregation objectId, -1 = none). ``instance_gt/<split>/<scene>.txt``
holds one integer per point, ``semantic * 1000 + instance + 1`` (0 = no instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from univlg.errors import FormatError


@dataclass
class Mask3dPoints:
    """A Mask3D point file: xyz (P, 3) float32, colors (P, 3) uint8, normals (P, 3) float32, segment_ids (P,)
    int64; semantic_ids and instance_ids (P,) int64, or None in a 10-column test file."""

    xyz: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    segment_ids: np.ndarray
    semantic_ids: np.ndarray | None = None
    instance_ids: np.ndarray | None = None


def _integer_column(column: np.ndarray, path: Path, name: str, minimum: int) -> np.ndarray:
    bad = np.flatnonzero((column != np.round(column)) | (column < minimum))
    if bad.size:
        raise FormatError(
            f"{path}: point {bad[0]}: field {name!r}: expected an integer >= {minimum}, got {column[bad[0]]}"
        )
    return column.astype(np.int64)


def read_mask3d_points(path: str | Path) -> Mask3dPoints:
    """Read a (P, 12) or (P, 10) Mask3D ``.npy``; FormatError names the file and the first bad point and column."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError as error:
        raise FormatError(f"{path}: not a plain numeric .npy array ({error})") from None
    if data.ndim != 2 or data.shape[1] not in (10, 12) or not np.issubdtype(data.dtype, np.number):
        raise FormatError(f"{path}: expected a numeric (P, 12) or (P, 10) array, got {data.dtype} {data.shape}")
    data = data.astype(np.float64)
    finite = np.isfinite(data).all(axis=1)
    if not finite.all():
        raise FormatError(f"{path}: point {np.flatnonzero(~finite)[0]}: non-finite value")
    rgb = data[:, 3:6]
    if rgb.min(initial=0) < 0 or rgb.max(initial=0) > 255:
        raise FormatError(f"{path}: colours (columns 3-5) must lie in 0..255")
    labelled = data.shape[1] == 12
    return Mask3dPoints(
        xyz=data[:, 0:3].astype(np.float32),
        colors=np.round(rgb).astype(np.uint8),
        normals=data[:, 6:9].astype(np.float32),
        segment_ids=_integer_column(data[:, 9], path, "segment_id (column 9)", 0),
        semantic_ids=_integer_column(data[:, 10], path, "semantic label (column 10)", -1) if labelled else None,
        instance_ids=_integer_column(data[:, 11], path, "instance id (column 11)", -1) if labelled else None,
    )


def write_mask3d_points(path: str | Path, points: Mask3dPoints) -> None:
    """Write a Mask3D ``.npy``: (P, 12) float32 when semantic and instance ids are given, else (P, 10)."""
    columns = [points.xyz, points.colors, points.normals, points.segment_ids[:, None]]
    if (points.semantic_ids is None) != (points.instance_ids is None):
        raise ValueError("semantic_ids and instance_ids are given together or not at all")
    if points.semantic_ids is not None:
        columns += [points.semantic_ids[:, None], points.instance_ids[:, None]]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, np.concatenate([np.asarray(c, dtype=np.float32) for c in columns], axis=1))


def instance_gt_ids(semantic_ids: np.ndarray, instance_ids: np.ndarray) -> np.ndarray:
    """The benchmark's per-point GT code ``semantic * 1000 + instance + 1`` (0 where instance = -1): (P,) int64."""
    semantic_ids, instance_ids = np.asarray(semantic_ids, np.int64), np.asarray(instance_ids, np.int64)
    return np.where(instance_ids >= 0, semantic_ids * 1000 + instance_ids + 1, 0)


def read_instance_gt_txt(path: str | Path) -> np.ndarray:
    """Per-point GT codes of an ``instance_gt/<split>/<scene>.txt`` file (one integer a line): (P,) int64."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: file not found")
    lines = path.read_text().split()
    bad = next((k for k, v in enumerate(lines) if not v.isdigit()), None)
    if bad is not None:
        raise FormatError(f"{path}: line {bad + 1}: expected a non-negative integer, got {lines[bad]!r}")
    return np.asarray([int(v) for v in lines], dtype=np.int64)


def write_instance_gt_txt(path: str | Path, codes: np.ndarray) -> None:
    """Write per-point GT codes (P,) one per line."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{int(v)}\n" for v in codes))
