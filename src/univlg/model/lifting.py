"""Lifting image features into 3D: patch-grid point maps, voxel grids over flat batched point sets, and the
"units" (voxels or over-segments of the output points) on which the decoder predicts masks.

Everything is flat over the batch: a point set is (M, 3) coordinates plus an (M,) sample index, and voxel ids
never mix samples (``univlg.geometry.voxelize`` with a batch vector). No Python loop runs over frames or points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from univlg.geometry import scatter_min, voxel_batch, voxelize
from univlg.geometry.neighbors import IDW_EPS, knn


def mean_pool(values: torch.Tensor, index: torch.Tensor, size: int) -> torch.Tensor:
    """Mean of the rows of ``values`` (M, C) sharing an index (M,) long -> (size, C); empty rows are 0.

    The same as ``univlg.geometry.scatter_mean`` for 2D inputs, with ``index_add`` (several times faster in
    backward on CPU than ``scatter_reduce``).
    """
    counts = torch.bincount(index, minlength=size).clamp_min(1).to(values.dtype)
    return values.new_zeros(size, values.shape[1]).index_add(0, index, values) / counts[:, None]


def patch_point_map(point_maps: torch.Tensor, point_valid: torch.Tensor, patch: int) -> tuple[torch.Tensor, ...]:
    """The 3D point of each patch: the pixel at the patch centre (row and column p // 2 of the patch).

    Nearest sampling, so an invalid centre pixel leaves the patch invalid (never averaged with valid ones).

    Args:
        point_maps: (N, H, W, 3) float; point_valid: (N, H, W) bool; H and W multiples of ``patch``.

    Returns:
        xyz: (N, H / p, W / p, 3); valid: (N, H / p, W / p) bool.
    """
    return patch_centres(point_maps, patch), patch_centres(point_valid, patch)


def patch_centres(grid: torch.Tensor, patch: int) -> torch.Tensor:
    """The value at each patch's centre pixel: grid (N, H, W, ...) -> (N, H / p, W / p, ...)."""
    n, height, width = grid.shape[:3]
    h, w, c = height // patch, width // patch, patch // 2
    return grid.reshape(n, h, patch, w, patch, *grid.shape[3:])[:, :, c, :, c]


@dataclass
class VoxelGrid:
    """Voxels of a flat batched point set.

    of_point: (M,) long voxel of each point; xyz: (K, 3) centroids; batch: (K,) long sample of each voxel,
    non-decreasing (a sample's voxels are contiguous).
    """

    of_point: torch.Tensor
    xyz: torch.Tensor
    batch: torch.Tensor
    neighbours: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    @property
    def num(self) -> int:
        """K, the number of voxels."""
        return int(self.xyz.shape[0])

    def pool(self, features: torch.Tensor) -> torch.Tensor:
        """features: (M, C) per point -> (K, C) mean per voxel."""
        return mean_pool(features, self.of_point, self.num)

    def unpool(self, features: torch.Tensor) -> torch.Tensor:
        """features: (K, C) per voxel -> (M, C), each point takes its voxel's value."""
        return features[self.of_point]

    def knn(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The k nearest voxels (self included) of every voxel within its sample, computed once and cached.

        Returns:
            idx: (K, k) long, clamped to valid rows; valid: (K, k) bool (False where a sample has < k voxels).
        """
        if k not in self.neighbours:
            _, idx = knn(self.xyz, self.xyz, k, query_batch=self.batch, ref_batch=self.batch)
            self.neighbours[k] = (idx.clamp_min(0), idx >= 0)
        return self.neighbours[k]


def make_voxel_grid(xyz: torch.Tensor, batch: torch.Tensor, voxel_size: float) -> VoxelGrid:
    """Voxelise a flat batched point set. xyz: (M, 3) float; batch: (M,) long."""
    of_point, centres = voxelize(xyz.detach(), voxel_size, batch)
    return VoxelGrid(of_point, centres, voxel_batch(of_point, batch, centres.shape[0]))


@dataclass
class PatchCloud:
    """The valid patch-grid points of all views, flat over the batch.

    index: (M,) long flat index into the (N * h * w) patch grid; xyz: (M, 3); batch: (M,) long sample of each
    point; shape: (N, h, w).
    """

    index: torch.Tensor
    xyz: torch.Tensor
    batch: torch.Tensor
    shape: tuple[int, int, int]
    grids: dict[float, VoxelGrid] = field(default_factory=dict)

    def gather(self, features: torch.Tensor) -> torch.Tensor:
        """features: (N, h, w, C) -> (M, C) at the valid patches."""
        return features.reshape(-1, features.shape[-1])[self.index]

    def replace(self, features: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        """features: (N, h, w, C) with the valid patches' rows replaced by values (M, C); others unchanged."""
        flat = features.reshape(-1, features.shape[-1]).index_copy(0, self.index, values.to(features.dtype))
        return flat.view(features.shape)

    def voxels(self, voxel_size: float) -> VoxelGrid:
        """The voxel grid at ``voxel_size`` (computed once per size)."""
        if voxel_size not in self.grids:
            self.grids[voxel_size] = make_voxel_grid(self.xyz, self.batch, voxel_size)
        return self.grids[voxel_size]


def make_patch_cloud(xyz: torch.Tensor, valid: torch.Tensor, view_batch: torch.Tensor) -> PatchCloud:
    """xyz: (N, h, w, 3) patch points; valid: (N, h, w) bool; view_batch: (N,) long sample of each view."""
    n, h, w = valid.shape
    index = valid.reshape(-1).nonzero().squeeze(1)
    batch = view_batch.repeat_interleave(h * w)[index]
    return PatchCloud(index, xyz.reshape(-1, 3)[index], batch, (n, h, w))


@dataclass
class Units:
    """The decoder's mask units (output voxels, or over-segments of them), packed per sample.

    xyz: (B, S, 3) unit centroids (metres; pixels (u, v, 0) on the plain-2D path); valid: (B, S) bool;
    flat_batch / flat_position: (U,) long sample and slot of each of the U flat units;
    point_to_unit: (B, P) long unit slot of each output point, -1 for padding/invalid points;
    point_to_voxel: (B, P) long voxel slot of each output point within its sample, -1 likewise;
    voxel_to_unit: (B, K) long unit slot of each voxel, -1 for padding; voxel_valid: (B, K) bool;
    unit_of_voxel: (K_flat,) long flat unit of each flat output voxel (to pool voxel features into units);
    pos2d: (B, S, 2) normalised image position on the plain-2D path, else None.
    """

    xyz: torch.Tensor
    valid: torch.Tensor
    flat_batch: torch.Tensor
    flat_position: torch.Tensor
    point_to_unit: torch.Tensor
    point_to_voxel: torch.Tensor
    voxel_to_unit: torch.Tensor
    voxel_valid: torch.Tensor
    unit_of_voxel: torch.Tensor
    pos2d: torch.Tensor | None = None

    @property
    def num_flat(self) -> int:
        """U, the number of units over the whole batch."""
        return int(self.flat_batch.shape[0])

    def pack(self, flat: torch.Tensor) -> torch.Tensor:
        """flat: (U, C) per unit -> (B, S, C), zeros at padding."""
        b, s = self.valid.shape
        out = flat.new_zeros(b * s, flat.shape[-1])
        out = out.index_copy(0, self.flat_batch * s + self.flat_position, flat)
        return out.view(b, s, -1)


def slots(batch: torch.Tensor, num_samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Slot of each row within its sample for rows sorted by sample.

    Args:
        batch: (U,) long non-decreasing sample index.

    Returns:
        position: (U,) long; counts: (num_samples,) long.
    """
    counts = torch.bincount(batch, minlength=num_samples)
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(batch.shape[0], device=batch.device) - starts[batch], counts


def _scatter_to_grid(values: torch.Tensor, batch: torch.Tensor, position: torch.Tensor, shape) -> torch.Tensor:
    out = torch.full(shape, -1, dtype=torch.long, device=values.device)
    out[batch, position] = values
    return out


def build_units(
    points: torch.Tensor,
    points_valid: torch.Tensor,
    voxel_size: float,
    segment_ids: torch.Tensor | None = None,
) -> tuple[Units, VoxelGrid]:
    """Voxelise the output points per sample and group the voxels into units.

    Args:
        points: (B, P, 3) float; points_valid: (B, P) bool.
        voxel_size: output voxel edge (the paper's mesh voxels: 0.02 m).
        segment_ids: (B, P) long over-segment id per point, or None (units = voxels). A voxel's segment is the
            smallest id among its points (reference 1.7).

    Returns:
        units: the packed units; grid: the flat output voxels (xyz (K, 3), batch (K,)) whose features the pixel
        decoder computes.
    """
    b, p = points_valid.shape
    sample, slot = points_valid.nonzero(as_tuple=True)
    grid = make_voxel_grid(points[sample, slot], sample, voxel_size)
    voxel_slot, voxel_counts = slots(grid.batch, b)
    if segment_ids is None:
        unit_of_voxel, unit_xyz, unit_batch = torch.arange(grid.num, device=points.device), grid.xyz, grid.batch
    else:
        seg = scatter_min(segment_ids[sample, slot], grid.of_point, grid.num)
        seg = seg - seg.min() if seg.numel() else seg
        span = int(seg.max()) + 1 if seg.numel() else 1
        unique, unit_of_voxel = torch.unique(grid.batch * span + seg, return_inverse=True)
        unit_batch = torch.div(unique, span, rounding_mode="floor")
        unit_xyz = mean_pool(grid.xyz, unit_of_voxel, unique.shape[0])
    unit_position, unit_counts = slots(unit_batch, b)
    s = int(unit_counts.max()) if unit_batch.numel() else 0
    k = int(voxel_counts.max()) if grid.num else 0
    xyz = points.new_zeros(b, s, 3)
    xyz[unit_batch, unit_position] = unit_xyz
    valid = torch.zeros(b, s, dtype=torch.bool, device=points.device)
    valid[unit_batch, unit_position] = True
    voxel_valid = torch.zeros(b, k, dtype=torch.bool, device=points.device)
    voxel_valid[grid.batch, voxel_slot] = True
    unit_slot_of_voxel = unit_position[unit_of_voxel]
    units = Units(
        xyz=xyz,
        valid=valid,
        flat_batch=unit_batch,
        flat_position=unit_position,
        point_to_unit=_scatter_to_grid(unit_slot_of_voxel[grid.of_point], sample, slot, (b, p)),
        point_to_voxel=_scatter_to_grid(voxel_slot[grid.of_point], sample, slot, (b, p)),
        voxel_to_unit=_scatter_to_grid(unit_slot_of_voxel, grid.batch, voxel_slot, (b, k)),
        voxel_valid=voxel_valid,
        unit_of_voxel=unit_of_voxel,
    )
    return units, grid


def patch_units(patch_valid: torch.Tensor, patch: int) -> Units:
    """Units of the plain-2D path (no lifting): every valid patch is its own unit, voxel and output point.

    Args:
        patch_valid: (B, V, h, w) bool, patches of real (non-padding) pixels of real views.
        patch: patch size in pixels.

    Returns:
        Units whose xyz are patch centres in pixels (u, v, 0) and pos2d their positions normalised by (w, h);
        output points are the B x (V * h * w) patches in raster order.
    """
    b, v, h, w = patch_valid.shape
    flat_valid = patch_valid.reshape(b, -1)
    sample, slot = flat_valid.nonzero(as_tuple=True)
    position, counts = slots(sample, b)
    s = int(counts.max()) if sample.numel() else 0
    rows = torch.div(slot % (h * w), w, rounding_mode="floor").to(torch.float32)
    cols = (slot % w).to(torch.float32)
    device = patch_valid.device
    xyz = torch.zeros(b, s, 3, device=device)
    xyz[sample, position] = torch.stack([(cols + 0.5) * patch, (rows + 0.5) * patch, torch.zeros_like(cols)], 1)
    pos2d = torch.zeros(b, s, 2, device=device)
    pos2d[sample, position] = torch.stack([(cols + 0.5) / w, (rows + 0.5) / h], 1)
    valid = torch.zeros(b, s, dtype=torch.bool, device=device)
    valid[sample, position] = True
    point_to_unit = _scatter_to_grid(position, sample, slot, (b, v * h * w))
    return Units(
        xyz=xyz,
        valid=valid,
        flat_batch=sample,
        flat_position=position,
        point_to_unit=point_to_unit,
        point_to_voxel=point_to_unit,
        voxel_to_unit=torch.where(valid, torch.arange(s, device=device).expand(b, s), -1),
        voxel_valid=valid,
        unit_of_voxel=torch.arange(sample.shape[0], device=device),
        pos2d=pos2d,
    )


def idw_matrix(
    query_xyz: torch.Tensor, query_batch: torch.Tensor, ref_xyz: torch.Tensor, ref_batch: torch.Tensor, k: int
) -> torch.Tensor:
    """Inverse-distance kNN interpolation as a sparse (N, M) matrix, so ``matrix @ ref_features`` interpolates.

    w_j = (1 / (d_j + 1e-8)) / sum_i (1 / (d_i + 1e-8)) over the k nearest references of the same sample
    (reference 1.5; the same weights as ``univlg.geometry.idw_interpolate``, which this replaces on the hot path:
    one sparse product instead of k gathers). The weights carry no gradient (the coordinates are fixed).

    Args:
        query_xyz: (N, 3); query_batch: (N,) long; ref_xyz: (M, 3); ref_batch: (M,) long.

    Returns:
        (N, M) sparse COO float; a query whose sample has no reference gets an all-zero row.
    """
    with torch.no_grad():
        dist, idx = knn(query_xyz, ref_xyz, k, query_batch=query_batch, ref_batch=ref_batch)
        inverse = 1.0 / (dist + IDW_EPS)  # missing neighbours: dist inf -> weight 0
        total = inverse.sum(dim=1, keepdim=True)
        weights = inverse / torch.where(total > 0, total, torch.ones_like(total))
        rows = torch.arange(query_xyz.shape[0], device=query_xyz.device).repeat_interleave(idx.shape[1])
        indices = torch.stack([rows, idx.clamp_min(0).reshape(-1)])
    shape = (query_xyz.shape[0], ref_xyz.shape[0])
    return torch.sparse_coo_tensor(indices, weights.reshape(-1), shape, check_invariants=False)
