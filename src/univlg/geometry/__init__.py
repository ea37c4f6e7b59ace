"""Pure tensor geometry (no nn.Module, no I/O): cameras, voxels, neighbours, boxes. See docs/geometry.md."""

from univlg.geometry.camera import crop_intrinsics, project_points, resize_intrinsics, unproject_depth
from univlg.geometry.neighbors import farthest_point_sample, idw_interpolate, knn
from univlg.geometry.voxels import scatter_max, scatter_mean, scatter_min, voxel_batch, voxelize

__all__ = [
    "crop_intrinsics",
    "farthest_point_sample",
    "idw_interpolate",
    "knn",
    "project_points",
    "resize_intrinsics",
    "scatter_max",
    "scatter_mean",
    "scatter_min",
    "unproject_depth",
    "voxel_batch",
    "voxelize",
]
