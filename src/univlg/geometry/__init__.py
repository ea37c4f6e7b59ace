"""Pure tensor geometry (no nn.Module, no I/O): cameras, voxels, neighbours, boxes. See docs/geometry.md."""

from univlg.geometry.camera import crop_intrinsics, project_points, resize_intrinsics, unproject_depth

__all__ = [
    "crop_intrinsics",
    "project_points",
    "resize_intrinsics",
    "unproject_depth",
]
