"""Pinhole camera maths: depth maps to world points, world points to pixels, intrinsics under resize and crop.

Conventions (see docs/geometry.md):
- Pixel centres sit at integer coordinates: pixel (row v, column u) looks along x = (u - cx) / fx,
  y = (v - cy) / fy, z = 1 in the camera frame (x right, y down, z forward; OpenCV / ScanNet).
- ``cam_to_world`` (4, 4) maps camera coordinates to world coordinates: X_world = pose @ [x, y, z, 1].
- Intrinsics are (3, 3) [[fx, s, cx], [0, fy, cy], [0, 0, 1]]; a (4, 4) matrix is accepted and its top-left
  (3, 3) block is used.
"""

from __future__ import annotations

import torch

__all__ = ["unproject_depth", "project_points", "resize_intrinsics", "crop_intrinsics"]


def _as_3x3(intrinsics: torch.Tensor) -> torch.Tensor:
    if intrinsics.shape[-2:] not in ((3, 3), (4, 4)):
        raise ValueError(f"intrinsics must be (..., 3, 3) or (..., 4, 4), got {tuple(intrinsics.shape)}")
    return intrinsics[..., :3, :3]


def _finite_pose(cam_to_world: torch.Tensor) -> torch.Tensor:
    """(V,) bool: every entry of the frame's pose is finite."""
    return torch.isfinite(cam_to_world).flatten(1).all(dim=1)


def unproject_depth(
    depth: torch.Tensor,
    intrinsics: torch.Tensor,
    cam_to_world: torch.Tensor,
    max_depth: float | None = 15.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Back-project depth maps to world-coordinate point maps, one camera per frame.

    Args:
        depth: (V, H, W) float, metres along the optical axis.
        intrinsics: (V, 3, 3) float, for the (H, W) grid, pixel centres at integer coordinates.
        cam_to_world: (V, 4, 4) float, camera-to-world poses.
        max_depth: depths above it are invalid (ScanNet's 15 m); None keeps every finite positive depth.

    Returns:
        points: (V, H, W, 3) in the dtype of ``depth``, world coordinates; exactly 0 where not valid.
        valid: (V, H, W) bool. A pixel is valid when its depth is finite, > 0 and <= ``max_depth``, its frame's
        pose is entirely finite, and the resulting point is finite. Invalid pixels never become points and no
        NaN or inf reaches ``points``.
    """
    if depth.dim() != 3:
        raise ValueError(f"depth must be (V, H, W), got {tuple(depth.shape)}")
    if not depth.is_floating_point():
        raise ValueError(f"depth must be a float tensor in metres, got {depth.dtype}")
    num_views, height, width = depth.shape
    k = _as_3x3(intrinsics).to(depth)
    if k.shape != (num_views, 3, 3) or cam_to_world.shape != (num_views, 4, 4):
        raise ValueError(
            f"expected intrinsics ({num_views}, 3, 3) and cam_to_world ({num_views}, 4, 4), "
            f"got {tuple(intrinsics.shape)} and {tuple(cam_to_world.shape)}"
        )
    pose = cam_to_world.to(depth)
    pose_ok = _finite_pose(pose)

    depth_ok = torch.isfinite(depth) & (depth > 0) & pose_ok[:, None, None]
    if max_depth is not None:
        depth_ok = depth_ok & (depth <= max_depth)
    z = torch.where(depth_ok, depth, torch.zeros_like(depth))

    rows = torch.arange(height, device=depth.device, dtype=depth.dtype)[None, :, None]
    cols = torch.arange(width, device=depth.device, dtype=depth.dtype)[None, None, :]
    fx, fy = k[:, 0, 0, None, None], k[:, 1, 1, None, None]
    cx, cy, skew = k[:, 0, 2, None, None], k[:, 1, 2, None, None], k[:, 0, 1, None, None]
    y = (rows - cy) * z / fy
    x = ((cols - cx) * z - skew * y) / fx
    camera_points = torch.stack([x, y, z], dim=-1)

    safe_pose = torch.where(pose_ok[:, None, None], pose, torch.eye(4, dtype=pose.dtype, device=pose.device))
    rotation, translation = safe_pose[:, :3, :3], safe_pose[:, :3, 3]
    world = torch.einsum("vij,vhwj->vhwi", rotation, camera_points) + translation[:, None, None, :]
    valid = depth_ok & torch.isfinite(world).all(dim=-1)
    points = torch.where(valid[..., None], world, torch.zeros_like(world))
    return points, valid


def project_points(
    points: torch.Tensor, intrinsics: torch.Tensor, cam_to_world: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Project world points into every camera.

    Args:
        points: (N, 3) float shared by all frames, or (V, N, 3) one set per frame; world coordinates.
        intrinsics: (V, 3, 3) float.
        cam_to_world: (V, 4, 4) float.

    Returns:
        uv: (V, N, 2) pixel coordinates (u = column, v = row; pixel centres at integers). Only meaningful where
        z > 0: points on or behind the camera plane get NaN.
        z: (V, N) camera-frame depth; <= 0 for points behind the camera. Frames whose pose is not finite (or
        not invertible) give NaN in both outputs.
    """
    k = _as_3x3(intrinsics).to(points)
    pose = cam_to_world.to(points)
    num_views = pose.shape[0]
    if points.dim() == 2:
        points = points.unsqueeze(0).expand(num_views, -1, -1)
    if points.dim() != 3 or points.shape[0] != num_views or points.shape[-1] != 3:
        raise ValueError(f"points must be (N, 3) or ({num_views}, N, 3), got {tuple(points.shape)}")
    if k.shape != (num_views, 3, 3):
        raise ValueError(f"intrinsics must be ({num_views}, 3, 3), got {tuple(intrinsics.shape)}")

    finite = _finite_pose(pose)
    safe_pose = torch.where(finite[:, None, None], pose, torch.eye(4, dtype=pose.dtype, device=pose.device))
    world_to_cam, singular = torch.linalg.inv_ex(safe_pose)
    pose_ok = finite & (singular == 0)
    cam = torch.einsum("vij,vnj->vni", world_to_cam[:, :3, :3], points) + world_to_cam[:, None, :3, 3]
    z = cam[..., 2]
    in_front = z > 0
    safe_z = torch.where(in_front, z, torch.ones_like(z))
    pixel_h = torch.einsum("vij,vnj->vni", k, cam / safe_z[..., None])
    nan = torch.full_like(z, float("nan"))
    uv = torch.where(in_front[..., None], pixel_h[..., :2], nan[..., None])
    bad_frame = ~pose_ok[:, None]
    return torch.where(bad_frame[..., None], nan[..., None], uv), torch.where(bad_frame, nan, z)


def resize_intrinsics(intrinsics: torch.Tensor, old_hw: tuple[int, int], new_hw: tuple[int, int]) -> torch.Tensor:
    """Intrinsics of an image resized from ``old_hw`` to ``new_hw`` (H, W), half-pixel correct.

    A pixel centre u maps to u' = (u + 0.5) * s - 0.5 with s = new / old, hence fx' = fx * sx, skew' = skew * sx,
    cx' = (cx + 0.5) * sx - 0.5 (and likewise fy, cy with sy = new_h / old_h).

    Args:
        intrinsics: (..., 3, 3) float (or (..., 4, 4); the extra row and column are copied unchanged).

    Returns:
        (..., 3, 3) (or (..., 4, 4)) new tensor, same dtype.
    """
    _as_3x3(intrinsics)
    sy = new_hw[0] / old_hw[0]
    sx = new_hw[1] / old_hw[1]
    out = intrinsics.clone()
    out[..., 0, 0] = intrinsics[..., 0, 0] * sx
    out[..., 0, 1] = intrinsics[..., 0, 1] * sx
    out[..., 1, 1] = intrinsics[..., 1, 1] * sy
    out[..., 0, 2] = (intrinsics[..., 0, 2] + 0.5) * sx - 0.5
    out[..., 1, 2] = (intrinsics[..., 1, 2] + 0.5) * sy - 0.5
    return out


def crop_intrinsics(intrinsics: torch.Tensor, top, left) -> torch.Tensor:
    """Intrinsics of the crop whose top-left pixel is (row ``top``, column ``left``) of the original image.

    Args:
        intrinsics: (..., 3, 3) float (or (..., 4, 4)).
        top, left: numbers, or tensors broadcastable to ``intrinsics.shape[:-2]`` (one offset per frame).

    Returns:
        same shape as ``intrinsics``: cx' = cx - left, cy' = cy - top; focal lengths unchanged.
    """
    _as_3x3(intrinsics)
    out = intrinsics.clone()
    out[..., 0, 2] = intrinsics[..., 0, 2] - torch.as_tensor(left, dtype=intrinsics.dtype, device=intrinsics.device)
    out[..., 1, 2] = intrinsics[..., 1, 2] - torch.as_tensor(top, dtype=intrinsics.dtype, device=intrinsics.device)
    return out
