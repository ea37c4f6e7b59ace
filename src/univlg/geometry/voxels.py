"""Voxel grids and scatter reductions on pure torch (``unique(return_inverse)`` and ``scatter_reduce``).

A voxel is the cell floor(p / voxel_size); its centre is the centroid (mean) of the points that fall in it, not
the cell's geometric centre. With a ``batch`` vector, cells of different batch elements never merge and voxel
ids are sorted by batch element first, so the voxels of sample b are contiguous.
"""

from __future__ import annotations

import torch

__all__ = ["voxelize", "voxel_batch", "scatter_mean", "scatter_min", "scatter_max"]

_INT64_MAX = 2**63 - 1


def _check_index(src: torch.Tensor, index: torch.Tensor, dim_size: int | None) -> int:
    if index.dim() != 1 or index.shape[0] != src.shape[0]:
        raise ValueError(f"index must be ({src.shape[0]},), got {tuple(index.shape)}")
    if dim_size is None:
        return int(index.max()) + 1 if index.numel() else 0
    return int(dim_size)


def _scatter(src: torch.Tensor, index: torch.Tensor, dim_size: int | None, reduce: str) -> torch.Tensor:
    rows = _check_index(src, index, dim_size)
    out = torch.zeros((rows, *src.shape[1:]), dtype=src.dtype, device=src.device)
    expanded = index.view(-1, *([1] * (src.dim() - 1))).expand_as(src)
    return out.scatter_reduce(0, expanded, src, reduce=reduce, include_self=False)


def scatter_mean(src: torch.Tensor, index: torch.Tensor, dim_size: int | None = None) -> torch.Tensor:
    """Mean of the rows of ``src`` that share an index.

    Args:
        src: (N, ...) values; index: (N,) long in [0, dim_size); dim_size: output rows (default index.max() + 1).

    Returns:
        (dim_size, ...) same dtype as ``src``; rows no element maps to are 0. Differentiable w.r.t. ``src``.
    """
    return _scatter(src, index, dim_size, "mean")


def scatter_min(src: torch.Tensor, index: torch.Tensor, dim_size: int | None = None) -> torch.Tensor:
    """Elementwise minimum of the rows of ``src`` that share an index.

    Args:
        src: (N, ...) values; index: (N,) long in [0, dim_size); dim_size: output rows (default index.max() + 1).

    Returns:
        (dim_size, ...); empty rows are 0. Differentiable w.r.t. ``src`` (ties share the gradient evenly).
    """
    return _scatter(src, index, dim_size, "amin")


def scatter_max(src: torch.Tensor, index: torch.Tensor, dim_size: int | None = None) -> torch.Tensor:
    """Elementwise maximum of the rows of ``src`` that share an index.

    Args:
        src: (N, ...) values; index: (N,) long in [0, dim_size); dim_size: output rows (default index.max() + 1).

    Returns:
        (dim_size, ...); empty rows are 0. Differentiable w.r.t. ``src`` (ties share the gradient evenly).
    """
    return _scatter(src, index, dim_size, "amax")


def _cell_keys(cells: torch.Tensor) -> torch.Tensor:
    """(N,) int64 keys whose sort order is the lexicographic order of the rows of ``cells`` (N, D) long.

    Falls back to the rows themselves (N, D) when the packed key would overflow int64.
    """
    low = cells.amin(dim=0)
    spans = (cells.amax(dim=0) - low + 1).tolist()
    total = 1
    for span in spans:
        total *= span
    if total > _INT64_MAX:
        return cells
    shifted = cells - low
    keys = torch.zeros(cells.shape[0], dtype=torch.long, device=cells.device)
    for column, span in enumerate(spans):
        keys = keys * span + shifted[:, column]
    return keys


def voxelize(
    points: torch.Tensor, voxel_size: float, batch: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Group points into cubic voxels.

    Args:
        points: (N, 3) float, finite.
        voxel_size: edge length of the cells (same unit as ``points``), > 0.
        batch: optional (N,) long batch element of each point; voxels never mix batch elements.

    Returns:
        voxel_of_point: (N,) long in [0, M), the voxel each point falls in.
        voxel_centers: (M, 3) same dtype as ``points``, the centroid of each voxel's points.
        Voxels are ordered by (batch element, cell x, cell y, cell z), so each batch element's voxels are
        contiguous and in batch order. Use :func:`voxel_batch` for the batch element of each voxel.
    """
    if points.dim() != 2 or points.shape[-1] != 3:
        raise ValueError(f"points must be (N, 3), got {tuple(points.shape)}")
    if voxel_size <= 0:
        raise ValueError(f"voxel_size must be > 0, got {voxel_size}")
    if not torch.isfinite(points).all():
        raise ValueError("points must be finite (mask invalid points before voxelizing)")
    if points.shape[0] == 0:
        return torch.zeros(0, dtype=torch.long, device=points.device), points.new_zeros(0, 3)
    cells = torch.floor(points / voxel_size).long()
    if batch is not None:
        if batch.shape != (points.shape[0],):
            raise ValueError(f"batch must be ({points.shape[0]},), got {tuple(batch.shape)}")
        cells = torch.cat([batch.long().view(-1, 1), cells], dim=1)
    keys = _cell_keys(cells)
    _, voxel_of_point = torch.unique(keys, dim=0 if keys.dim() == 2 else None, return_inverse=True)
    num_voxels = int(voxel_of_point.max()) + 1
    return voxel_of_point, scatter_mean(points, voxel_of_point, num_voxels)


def voxel_batch(voxel_of_point: torch.Tensor, batch: torch.Tensor, num_voxels: int | None = None) -> torch.Tensor:
    """Batch element of each voxel made by :func:`voxelize` with the same ``batch``.

    Args:
        voxel_of_point: (N,) long, the first output of :func:`voxelize`.
        batch: (N,) long, the batch vector given to :func:`voxelize`.
        num_voxels: M (default voxel_of_point.max() + 1).

    Returns:
        (M,) long, non-decreasing; voxels no point maps to (only when ``num_voxels`` is larger) get -1.
    """
    rows = _check_index(batch, voxel_of_point, num_voxels)
    out = torch.full((rows,), -1, dtype=torch.long, device=batch.device)
    return out.scatter_reduce(0, voxel_of_point, batch.long(), reduce="amax", include_self=False)
