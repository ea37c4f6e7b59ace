"""Pure tensor geometry (no nn.Module, no I/O): cameras, voxels, neighbours, boxes, affine maps of point arrays.
See docs/geometry.md."""

from univlg.geometry.affine import transform_points
from univlg.geometry.boxes import (
    box_center_to_corners,
    box_corners_to_center,
    box_iou_2d,
    box_iou_3d,
    boxes_from_masks,
    generalized_box_iou_2d,
    generalized_box_iou_3d,
    soft_boxes_from_masks,
)
from univlg.geometry.camera import crop_intrinsics, project_points, resize_intrinsics, unproject_depth
from univlg.geometry.neighbors import batched_farthest_point_sample, farthest_point_sample, idw_interpolate, knn
from univlg.geometry.voxels import scatter_max, scatter_mean, scatter_min, voxel_batch, voxelize

__all__ = [
    "batched_farthest_point_sample",
    "box_center_to_corners",
    "box_corners_to_center",
    "box_iou_2d",
    "box_iou_3d",
    "boxes_from_masks",
    "crop_intrinsics",
    "farthest_point_sample",
    "generalized_box_iou_2d",
    "generalized_box_iou_3d",
    "idw_interpolate",
    "knn",
    "project_points",
    "resize_intrinsics",
    "scatter_max",
    "scatter_mean",
    "scatter_min",
    "soft_boxes_from_masks",
    "transform_points",
    "unproject_depth",
    "voxel_batch",
    "voxelize",
]
