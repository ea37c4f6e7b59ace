"""Scenes and images to model inputs, and collation with padding."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.test_model_fixtures import make_scene
from univlg.data.batch import (
    Batch,
    TextBatch,
    collate_visual,
    image_to_sample,
    lifted_cloud,
    scene_to_sample,
)
from univlg.errors import SceneError


def _unproject(depth, k, pose, row, col):
    """One pixel by the pinhole formula, written out."""
    z = depth[row, col]
    cam = np.array([(col - k[0, 2]) * z / k[0, 0], (row - k[1, 2]) * z / k[1, 1], z, 1.0])
    return (pose @ cam)[:3]


def test_scene_sample_point_maps_follow_the_pinhole_model():
    scene = make_scene(3, height=40, width=60, seed=1)
    sample = scene_to_sample(scene, patch_size=16)
    assert sample.images.shape == (3, 48, 64, 3) and sample.images.dtype == torch.uint8
    assert sample.pixel_valid[:, :40, :60].all() and not sample.pixel_valid[:, 40:].any()
    assert not sample.point_valid[:, :, 60:].any()
    f = scene.frames
    for view, row, col in [(0, 0, 0), (1, 17, 33), (2, 39, 59)]:
        expected = _unproject(f.depth[view].astype(np.float64), f.intrinsics[view], f.cam_to_world[view], row, col)
        np.testing.assert_allclose(sample.point_maps[view, row, col].numpy(), expected, atol=1e-4)
    assert torch.equal(sample.points, torch.from_numpy(scene.points.xyz))
    assert torch.equal(sample.segment_ids, torch.from_numpy(scene.points.segment_ids))


def test_scene_sample_drops_lost_frames_subsamples_and_resizes():
    scene = make_scene(6, height=48, width=64, seed=2)
    poses = scene.frames.cam_to_world.copy()
    poses[1] = np.nan
    scene = dataclasses.replace(scene, frames=dataclasses.replace(scene.frames, cam_to_world=poses))
    sample = scene_to_sample(scene, patch_size=8, max_frames=3, max_size=32)
    assert sample.frame_indices.tolist() == [0, 3, 5]  # uniform over the 5 frames with a pose
    assert sample.images.shape == (3, 24, 32, 3)
    # nearest resizing: every resized depth (camera-frame z of the point) is a depth of the original frame
    assert sample.point_valid.all()
    world_to_cam = np.linalg.inv(scene.frames.cam_to_world[3].astype(np.float64))
    pts = sample.point_maps[1].reshape(-1, 3).numpy().astype(np.float64)
    z = pts @ world_to_cam[2, :3] + world_to_cam[2, 3]
    original = scene.frames.depth[3].ravel()
    assert np.abs(z[:, None] - original[None, :]).min(axis=1).max() < 1e-4
    with pytest.raises(SceneError, match="no frame has a finite camera pose"):
        poses[:] = np.inf
        scene_to_sample(dataclasses.replace(scene, frames=dataclasses.replace(scene.frames, cam_to_world=poses)), 8)


def test_scene_without_points_gets_the_lifted_sensor_cloud():
    scene = make_scene(2, height=24, width=32, seed=3, points=None)
    sample = scene_to_sample(scene, patch_size=8, lifted_voxel_size=0.25)
    assert sample.segment_ids is None
    pts = sample.point_maps[sample.point_valid].numpy().astype(np.float64)
    cells = np.floor(pts / 0.25).astype(np.int64)
    _, inverse = np.unique(cells, axis=0, return_inverse=True)
    means = np.stack([pts[inverse.ravel() == i].mean(0) for i in range(inverse.max() + 1)])
    got = sample.points.numpy()
    assert got.shape == means.shape
    np.testing.assert_allclose(np.sort(got, axis=0), np.sort(means, axis=0), atol=1e-5)
    assert lifted_cloud(torch.zeros(1, 2, 2, 3), torch.zeros(1, 2, 2, dtype=torch.bool), 0.1).shape == (0, 3)


def test_image_sample_resizes_the_point_map_nearest_and_marks_invalid_points():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)
    point_map = np.arange(20 * 30 * 3, dtype=np.float32).reshape(20, 30, 3)
    point_map[0, 0] = np.nan
    sample = image_to_sample(rgb, patch_size=8, point_map=point_map, image_size=(10, 15))
    assert sample.images.shape == (1, 16, 16, 3) and sample.point_maps.shape == (1, 16, 16, 3)
    # nearest-exact: resized pixel (r, c) reads original pixel (2r + 1, 2c + 1)
    assert torch.equal(sample.point_maps[0, 3, 4], torch.from_numpy(point_map[7, 9]))
    assert sample.point_valid[0, :10, :15].sum() == 150 and not sample.point_valid[0, 10:].any()
    plain = image_to_sample(rgb, patch_size=8)
    assert plain.point_maps is None and plain.pixel_valid[0, :20, :30].all()


def test_collate_pads_views_points_segments_and_image_sizes():
    a = scene_to_sample(make_scene(2, height=24, width=32, seed=4, points=100), 8)
    b = scene_to_sample(make_scene(3, height=24, width=32, seed=5, points=150), 8)
    batch = collate_visual([a, b])
    assert batch.images.shape == (2, 3, 3, 24, 32) and batch.images.max() <= 1.0
    assert batch.view_valid.tolist() == [[True, True, False], [True, True, True]]
    assert batch.points.shape == (2, 150, 3) and batch.points_valid.sum(1).tolist() == [100, 150]
    assert (batch.segment_ids[0, 100:] == -1).all() and batch.kind == "scene" and batch.lifted
    rng = np.random.default_rng(1)
    images = [image_to_sample(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), 8) for h, w in [(16, 24), (32, 8)]]
    batch = collate_visual(images)
    assert batch.images.shape == (2, 1, 3, 32, 24) and not batch.lifted and batch.points is None
    assert batch.pixel_valid[0, 0, :16, :24].all() and not batch.pixel_valid[0, 0, 16:].any()
    with pytest.raises(ValueError, match="all scenes or all images"):
        collate_visual([a, images[0]])


def test_batch_moves_every_tensor():
    text = TextBatch(
        torch.zeros(1, 3, dtype=torch.long), torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, 3, 2), ["x"]
    )
    visual = collate_visual([scene_to_sample(make_scene(1, height=16, width=16, points=10), 8)])
    moved = Batch(visual, text, torch.zeros(1, dtype=torch.long), torch.zeros(1, 2, dtype=torch.long)).to("meta")
    tensors = [moved.visual_index, moved.answer_labels]
    for part in (moved.visual, moved.text):
        tensors += [getattr(part, f.name) for f in dataclasses.fields(part)]
    tensors = [x for x in tensors if isinstance(x, torch.Tensor)]
    assert len(tensors) >= 10 and all(x.device.type == "meta" for x in tensors)
    assert moved.text.texts == ["x"] and moved.visual.points.shape == (1, 10, 3)
