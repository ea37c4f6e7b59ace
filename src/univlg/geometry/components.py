"""Connected parts of a point mask: which masked points touch one another at a given cell size.

A predicted mask is a union of units (voxels or over-segments); a few units far from the object (a patch of the
wall behind a chair, a piece of a second chair) stretch the mask's box well beyond the object. Two masked points
are *connected* when the grid cells of size ``cell`` (metres) that hold them are equal or touch (26-neighbourhood),
and connection is transitive; :func:`main_parts` keeps the parts with the most points.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

# Half of the 26 neighbour offsets: each touching pair of cells is found once, from its lower cell.
_HALF_NEIGHBOURS = np.array(
    [(dx, dy, dz) for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1) if (dx, dy, dz) > (0, 0, 0)]
)


def component_labels(points: np.ndarray, cell: float) -> np.ndarray:
    """Connected-part label of every point: points (N, 3) float -> (N,) int64 in [0, number of parts); points whose
    cells of size ``cell`` are equal or touch share a label."""
    if cell <= 0:
        raise ValueError(f"cell must be positive, got {cell}")
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    cells = np.floor(np.asarray(points, dtype=np.float64) / cell).astype(np.int64)
    cells -= cells.min(0) - 1  # every coordinate >= 1, so a neighbour's coordinate is >= 0
    size = cells.max(0) + 2
    keys = (cells[:, 0] * size[1] + cells[:, 1]) * size[2] + cells[:, 2]
    occupied, point_cell = np.unique(keys, return_inverse=True)  # sorted cell keys; each point's cell
    unique_cells = np.stack(np.unravel_index(occupied, tuple(size)), axis=1)
    rows, cols = [], []
    for offset in _HALF_NEIGHBOURS:
        neighbour = np.ravel_multi_index(tuple((unique_cells + offset).T), tuple(size))
        slot = np.searchsorted(occupied, neighbour).clip(max=len(occupied) - 1)
        found = occupied[slot] == neighbour
        rows.append(np.flatnonzero(found))
        cols.append(slot[found])
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    n = len(occupied)
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n))
    _, cell_label = connected_components(graph, directed=False)
    return cell_label[point_cell].astype(np.int64)


def main_parts(points: np.ndarray, mask: np.ndarray, cell: float, min_fraction: float = 1.0) -> np.ndarray:
    """The masked points' connected parts with at least ``min_fraction`` (in (0, 1]) of the points of the largest
    part: points (P, 3) float, mask (P,) bool -> (P,) bool, a subset of ``mask`` (an empty mask stays empty).
    ``min_fraction`` 1 keeps the largest part only (all of them on a tie)."""
    if not 0 < min_fraction <= 1:
        raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (len(points),):
        raise ValueError(f"mask {mask.shape} does not match points {np.shape(points)}")
    inside = np.flatnonzero(mask)
    if len(inside) == 0:
        return mask.copy()
    labels = component_labels(np.asarray(points)[inside], cell)
    counts = np.bincount(labels)
    keep = np.zeros_like(mask)
    keep[inside[counts[labels] >= min_fraction * counts.max()]] = True
    return keep
