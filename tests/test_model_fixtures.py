"""Small model configs and a rendered box room shared by the model tests (imported by test_model_*.py).

The room is rendered analytically (ray / axis-aligned box intersection), so depth, poses and points agree the way a
real capture's do, without any other project code.
"""

from __future__ import annotations

import numpy as np
import torch

from univlg.config import (
    Backbone3DConfig,
    CrossViewConfig,
    ImageEncoderConfig,
    MaskDecoderConfig,
    ModelConfig,
    OutputPointsConfig,
    PixelDecoderConfig,
    TextEncoderConfig,
)
from univlg.data.scene import Frames, PointCloud, Scene

ROOM_MIN = np.array([-2.0, -1.5, 0.0])
ROOM_MAX = np.array([2.0, 1.5, 2.5])


def micro_config(backbone_3d: bool = False, frozen_vit: bool = False) -> ModelConfig:
    """A very small model of the real classes: random-init ViT and BERT (MiniLM's tokenizer), 32-d heads."""
    view = CrossViewConfig(dim=32, num_heads=2, ffn_dim=64, knn=4, voxel_size=0.3)
    return ModelConfig(
        image_encoder=ImageEncoderConfig(
            frozen=frozen_vit, hidden_size=32, num_layers=2, num_heads=2, patch_size=8, num_register_tokens=2,
            pretrain_image_size=64, feature_layers=(0, 1, 1, 1), max_image_size=64,
        ),
        text_encoder=TextEncoderConfig(pretrained=False, hidden_size=32, num_layers=1, num_heads=2, max_length=32),
        backbone_3d=Backbone3DConfig(layers_per_level=(1, 1, 1, 1) if backbone_3d else (), cross_view=view),
        pixel_decoder=PixelDecoderConfig(
            dim=32, norm_groups=8, encoder_layers=2, num_heads=2, num_points=2, ffn_dim=64, cross_view=view,
            lift_voxel_size=0.2, skip_voxel_size=0.1, interp_knn=4,
        ),
        decoder=MaskDecoderConfig(dim=32, num_heads=2, ffn_dim=64, num_layers=2, num_queries=6),
        output=OutputPointsConfig(voxel_size=0.1, use_segments=True),
    )  # fmt: skip


def _look_at_poses(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Cameras near the room centre turning around the vertical axis (camera y points down, z forward)."""
    poses = np.zeros((num_frames, 4, 4), dtype=np.float32)
    for i in range(num_frames):
        yaw = 2 * np.pi * i / num_frames + rng.uniform(-0.2, 0.2)
        forward = np.array([np.cos(yaw), np.sin(yaw), -0.2])
        forward /= np.linalg.norm(forward)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        down = np.cross(forward, right)
        poses[i, :3, :3] = np.stack([right, down, forward], axis=1)
        poses[i, :3, 3] = [rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), 1.3]
        poses[i, 3, 3] = 1
    return poses


def _render(poses: np.ndarray, k: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Depth (V, H, W) of the inside of the room box and a face-coloured RGB (V, H, W, 3)."""
    v, u = np.mgrid[0:height, 0:width].astype(np.float64)
    rays_cam = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1], np.ones_like(u)], -1)
    depth = np.zeros((len(poses), height, width), dtype=np.float32)
    rgb = np.zeros((len(poses), height, width, 3), dtype=np.uint8)
    palette = np.array([[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60], [60, 200, 200], [200, 60, 200]])
    for i, pose in enumerate(poses.astype(np.float64)):
        dirs = rays_cam @ pose[:3, :3].T
        origin = pose[:3, 3]
        with np.errstate(divide="ignore"):
            t_max = np.where(dirs > 0, (ROOM_MAX - origin) / dirs, (ROOM_MIN - origin) / dirs)
        face = t_max.argmin(-1)
        t = t_max.min(-1)
        depth[i] = t  # rays_cam has z = 1, so the ray parameter is the depth
        hit = origin + t[..., None] * dirs
        checker = (np.floor(hit[..., 0] * 2) + np.floor(hit[..., 1] * 2) + np.floor(hit[..., 2] * 2)) % 2
        rgb[i] = (palette[face] * (0.6 + 0.4 * checker[..., None])).astype(np.uint8)
    return depth, rgb


def room_points(count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points on the room's walls, floor and ceiling (P, 3) and segment ids (P,) = face * 100 + 0.5 m cell."""
    face = rng.integers(0, 6, count)
    xyz = rng.uniform(ROOM_MIN, ROOM_MAX, (count, 3))
    axis, side = face // 2, face % 2
    xyz[np.arange(count), axis] = np.where(side == 0, ROOM_MIN[axis], ROOM_MAX[axis])
    cells = np.floor(xyz / 0.5).astype(np.int64)
    cell_id = (cells[:, 0] + 10) * 400 + (cells[:, 1] + 10) * 20 + (cells[:, 2] + 10)
    _, segment = np.unique(face * 100000 + cell_id, return_inverse=True)
    return xyz.astype(np.float32), segment.astype(np.int64)


def make_scene(
    num_frames: int = 4, height: int = 48, width: int = 64, seed: int = 0, points: int | None = 3000
) -> Scene:
    """A rendered box room: ``num_frames`` posed RGB-D frames and (optionally) ``points`` surface points."""
    rng = np.random.default_rng(seed)
    k = np.array([[0.8 * width, 0, width / 2 - 0.5], [0, 0.8 * width, height / 2 - 0.5], [0, 0, 1]], np.float32)
    poses = _look_at_poses(num_frames, rng)
    depth, rgb = _render(poses, k, height, width)
    frames = Frames(rgb, depth, np.tile(k, (num_frames, 1, 1)), poses, tuple(f"{i:03d}" for i in range(num_frames)))
    cloud = None
    if points:
        xyz, segments = room_points(points, rng)
        cloud = PointCloud(xyz=xyz, segment_ids=segments, instance_ids=segments % 7)
    return Scene(f"room{seed}", frames, cloud)


def test_rendered_depth_lands_on_the_room_box():
    scene = make_scene(num_frames=2)
    f = scene.frames
    from univlg.geometry import unproject_depth

    points, valid = unproject_depth(
        torch.from_numpy(f.depth), torch.from_numpy(f.intrinsics), torch.from_numpy(f.cam_to_world)
    )
    p = points[valid].double().numpy()
    gap = np.minimum(np.abs(p - ROOM_MIN), np.abs(p - ROOM_MAX)).min(axis=1)
    assert valid.all() and gap.max() < 1e-4
