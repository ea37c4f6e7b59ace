"""Grounding protocol on the real ScanNet scene0000_00 with its real SR3D / NR3D rows and v2 instance labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
from plyfile import PlyData

from tests.conftest import require_realdata
from univlg.data.formats.referit3d import read_nr3d_csv, read_sr3d_csv
from univlg.eval.grounding import evaluate_grounding

SCENE = "scannet_scene0000_00"


@pytest.fixture(scope="module")
def scene():
    """Axis-aligned mesh vertices (P, 3) and v2 instance ids (objectId, -1 = none), read independently."""
    vertex = PlyData.read(str(require_realdata(SCENE, "scan", "scene0000_00_vh_clean_2.ply")))["vertex"]
    xyz = np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float64)
    align = json.loads(require_realdata(SCENE, "scan", "scene0000_00_axis_align_matrix.json").read_text())
    matrix = np.array(align["scene0000_00"]).reshape(4, 4)
    aligned = (np.c_[xyz, np.ones(len(xyz))] @ matrix.T)[:, :3].astype(np.float32)
    labels = np.load(require_realdata(SCENE, "labels_v2", "scene0000_00_ins_label.npy")).astype(np.int64)
    return aligned, labels - 1


@pytest.fixture(scope="module")
def referrals():
    root = require_realdata(SCENE, "annotations")
    return read_sr3d_csv(root / "sr3d_train_scene0000_00.csv") + read_nr3d_csv(root / "nr3d_train_scene0000_00.csv")


def _aabb_iou(a_min, a_max, b_min, b_max) -> float:
    inter = np.prod(np.clip(np.minimum(a_max, b_max) - np.maximum(a_min, b_min), 0, None))
    union = np.prod(a_max - a_min) + np.prod(b_max - b_min) - inter
    return float(inter / union)


def test_target_boxes_from_v2_labels_match_the_reference_gt_boxes(scene, referrals):
    xyz, instance_ids = scene
    boxes = np.load(require_realdata(SCENE, "labels_v2", "scene0000_00_bbox.npy"))
    box_ids = np.load(require_realdata(SCENE, "labels_v2", "scene0000_00_bbox_idx.npy")).astype(int) - 1
    reference = {int(i): b for i, b in zip(box_ids, boxes, strict=True)}
    compared = 0
    for target in sorted({r.target_id for r in referrals}):
        points = xyz[instance_ids == target]
        assert len(points) > 0, f"target {target} has no vertices"
        if target in reference:
            centre, size = reference[target][:3], reference[target][3:6]
            iou = _aabb_iou(points.min(0), points.max(0), centre - size / 2, centre + size / 2)
            assert iou > 0.95, f"target {target}: IoU {iou:.3f}"
            compared += 1
    assert compared >= 5


def test_gt_masks_score_full_accuracy(scene, referrals):
    xyz, instance_ids = scene
    assert (len(referrals)) == 33
    masks = [instance_ids == r.target_id for r in referrals]
    report = evaluate_grounding(masks, xyz, instance_ids, [r.target_id for r in referrals])
    assert report.accuracy["acc@0.25"] == 1.0 and report.accuracy["acc@0.5"] == 1.0
    assert report.accuracy["acc@0.75"] == 1.0 and np.allclose(report.ious, 1.0)


def test_distractor_masks_score_by_their_box_overlap(scene, referrals):
    xyz, instance_ids = scene
    chosen = [r for r in referrals if r.distractor_ids]
    masks = [instance_ids == r.distractor_ids[0] for r in chosen]
    report = evaluate_grounding(masks, xyz, instance_ids, [r.target_id for r in chosen])
    expected = []
    for r in chosen:  # by hand: AABBs of the two vertex sets in float64
        t, d = xyz[instance_ids == r.target_id], xyz[instance_ids == r.distractor_ids[0]]
        expected.append(_aabb_iou(t.min(0), t.max(0), d.min(0), d.max(0)))
    np.testing.assert_allclose(report.ious, expected, rtol=1e-5)
    for k in (0.25, 0.5, 0.75):
        assert report.accuracy[f"acc@{k:g}"] == pytest.approx(np.mean(np.array(expected) > k))
    assert report.accuracy["acc@0.25"] < 1.0  # distractors are other objects
