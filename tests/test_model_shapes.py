"""Output shapes and padding of the three input paths: 3D scenes, lifted 2D images, plain 2D images."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.test_model_fixtures import make_scene, micro_config
from univlg.data.batch import Batch, collate_visual, image_to_sample, scene_to_sample
from univlg.model import build_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model(micro_config(backbone_3d=True)).eval()


def _expected_units(xyz: np.ndarray, segments: np.ndarray, voxel: float) -> int:
    """Brute force: a voxel's segment is its smallest point segment; count distinct voxel segments."""
    smallest = {}
    for cell, seg in zip(map(tuple, np.floor(xyz / voxel).astype(np.int64)), segments, strict=True):
        smallest[cell] = min(seg, smallest.get(cell, seg))
    return len(set(smallest.values()))


def _check_common(out, b, q, layers):
    assert out.mask_logits.shape[:3] == (layers, b, q)
    assert out.span_logits.shape[:3] == (layers, b, q)
    assert out.boxes.shape == out.soft_boxes.shape == (layers, b, q, 6)
    assert out.queries.shape[:3] == (layers, b, q)
    assert torch.isfinite(out.mask_logits).all() and torch.isfinite(out.span_logits).all()
    assert torch.isfinite(out.soft_boxes).all()


def test_3d_batch_pads_views_points_and_units(model):
    scenes = [make_scene(3, seed=1, points=1500), make_scene(5, seed=2, points=2500)]
    visual = collate_visual([scene_to_sample(s, model.patch_size) for s in scenes])
    text = model.tokenize(["the wall", "a chair near the blue wall please"])
    out = model(Batch(visual, text))
    cfg = model.cfg
    _check_common(out, 2, cfg.decoder.num_queries, cfg.decoder.num_layers + 1)
    assert visual.view_valid.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert out.point_to_unit.shape == (2, 2500)
    assert (out.point_to_unit[0, 1500:] == -1).all() and (out.point_to_unit[:, :1500] >= 0).all()
    for i, scene in enumerate(scenes):
        expected = _expected_units(scene.points.xyz, scene.points.segment_ids, cfg.output.voxel_size)
        assert int(out.unit_valid[i].sum()) == expected
        assert int(out.point_to_unit[i].max()) == expected - 1
    assert out.mask_logits.shape[-1] == out.unit_valid.shape[1]
    assert out.span_logits.shape[-1] == text.input_ids.shape[1]
    # a point's logit is its unit's logit
    logits = out.point_logits()
    b, p = 1, 17
    unit = out.point_to_unit[b, p]
    assert torch.equal(logits[b, :, p], out.mask_logits[-1, b, :, unit])
    assert torch.isinf(logits[0, :, 1500:]).all()


def test_scene_without_points_uses_the_patch_grid(model):
    visual = collate_visual([scene_to_sample(make_scene(3, points=None), model.patch_size)])
    assert visual.points is not None  # the lifted sensor cloud
    visual.points = visual.points_valid = visual.segment_ids = None
    out = model(Batch(visual, model.tokenize(["the floor"])))
    h, w = visual.images.shape[-2] // model.patch_size, visual.images.shape[-1] // model.patch_size
    assert out.point_to_unit.shape == (1, 3 * h * w)
    assert (out.point_to_unit >= 0).all()  # every patch of the rendered room has depth


def _images(rng, sizes, lifted):
    samples = []
    for h, w in sizes:
        rgb = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        point_map = None
        if lifted:
            point_map = rng.normal(size=(h, w, 3)).astype(np.float32) + np.array([0, 0, 3], np.float32)
            point_map[: h // 4] = np.nan  # invalid rows
        samples.append(image_to_sample(rgb, 8, point_map))
    return samples


def test_plain_2d_batch_has_one_unit_per_real_patch(model):
    rng = np.random.default_rng(0)
    visual = collate_visual(_images(rng, [(40, 56), (64, 48)], lifted=False))
    out = model(Batch(visual, model.tokenize(["the cat", "a dog on the left"])))
    _check_common(out, 2, model.cfg.decoder.num_queries, model.cfg.decoder.num_layers + 1)
    assert out.unit_valid.sum(1).tolist() == [5 * 7, 8 * 6]
    assert out.point_to_unit.shape == (2, 8 * 7)  # the padded 64 x 56 patch grid
    grid = out.point_to_unit.view(2, 8, 7)
    assert (grid[0, :5, :7] >= 0).all() and (grid[0, 5:] == -1).all()
    assert (grid[1, :, :6] >= 0).all() and (grid[1, :, 6] == -1).all()
    xy = out.unit_xyz[1, out.unit_valid[1]]
    assert xy[:, 0].max() < 48 and xy[:, 1].max() < 64 and (xy[:, 2] == 0).all()  # patch centres in pixels


def test_lifted_2d_batch_drops_invalid_points(model):
    rng = np.random.default_rng(1)
    samples = _images(rng, [(40, 56), (64, 48)], lifted=True)
    visual = collate_visual(samples)
    out = model(Batch(visual, model.tokenize(["the cat", "a dog"])))
    _check_common(out, 2, model.cfg.decoder.num_queries, model.cfg.decoder.num_layers + 1)
    grid = out.point_to_unit.view(2, 8, 7)
    assert (grid[0, :1] == -1).all() and (grid[0, 2:5, :7] >= 0).all()  # rows 0-9 invalid: patch row 0
    assert (grid[1, :2] == -1).all() and (grid[1, 2:, :6] >= 0).all()  # rows 0-15 invalid: patch rows 0-1
    assert (out.unit_valid.sum(1) <= torch.tensor([4 * 7, 6 * 6])).all()
