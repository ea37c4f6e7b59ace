"""3D grounding metrics on hand-worked cases: strict thresholds, empty masks, breakdowns, GT-proposal accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from univlg.data.formats.scannet_labels import LabelMap, LabelRow
from univlg.data.records import Referral
from univlg.eval.breakdowns import breakdown_labels, grounding_breakdowns, scanrefer_unique_flags
from univlg.eval.grounding import evaluate_grounding, gt_proposal_accuracy, mask_box

# Eight corners of the unit cube, then the far corners of boxes stretched along x.
CUBE = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=np.float32)
POINTS = np.concatenate([CUBE, [[2, 1, 1], [4, 1, 1], [0.5, 0.5, 0.5]]]).astype(np.float32)
UNIT = np.arange(11) < 8  # box [0,0,0]-[1,1,1], volume 1
DOUBLE = UNIT | (np.arange(11) == 8)  # box [0,0,0]-[2,1,1], volume 2
QUAD = UNIT | (np.arange(11) == 9)  # box [0,0,0]-[4,1,1], volume 4


def _ids(mask: np.ndarray, target: int = 7) -> np.ndarray:
    return np.where(mask, target, -1)


def test_iou_exactly_at_a_threshold_is_a_miss():
    """Unit cube inside a 2x1x1 box: IoU exactly 0.5; inside 4x1x1: exactly 0.25."""
    report = evaluate_grounding([UNIT, UNIT], [POINTS, POINTS], [_ids(DOUBLE), _ids(QUAD)], [7, 7])
    np.testing.assert_allclose(report.ious, [0.5, 0.25])
    assert report.accuracy == {"acc@0.25": 0.5, "acc@0.5": 0.0, "acc@0.75": 0.0}


def test_exact_prediction_hits_every_threshold_and_empty_prediction_is_a_nan_miss():
    empty = np.zeros(11, dtype=bool)
    report = evaluate_grounding(np.stack([DOUBLE, empty]), POINTS, _ids(DOUBLE), [7, 7])
    assert report.ious[0] == 1.0 and np.isnan(report.ious[1])
    assert report.accuracy == {"acc@0.25": 0.5, "acc@0.5": 0.5, "acc@0.75": 0.5}
    assert report.mask_ious.tolist() == [1.0, 0.0]


def test_mask_iou_variant_compares_point_sets():
    """Box IoU 1 but the point sets differ: the centre point is not in the prediction."""
    pred = UNIT.copy()
    target = UNIT | (np.arange(11) == 10)  # adds the cube's centre: same box
    report = evaluate_grounding([pred], POINTS, _ids(target), [7])
    assert report.ious[0] == 1.0 and report.mask_ious[0] == pytest.approx(8 / 9)


def test_boxes_are_float32_min_max_of_the_masked_points():
    box = mask_box(torch.tensor(POINTS, dtype=torch.float64), QUAD)
    assert box.dtype == np.float32 and box.tolist() == [0, 0, 0, 4, 1, 1]
    assert np.isnan(mask_box(POINTS, np.zeros(11, bool))).all()


def test_per_scene_inputs_and_relation_breakdown():
    scenes = [POINTS, POINTS + 10, POINTS]
    instances = [_ids(DOUBLE, 3), _ids(UNIT, 5), _ids(QUAD, 3)]
    preds = [DOUBLE, UNIT, UNIT]  # IoU 1, 1, 0.25
    report = evaluate_grounding(preds, scenes, instances, [3, 5, 3], relations=["left", "closest", "left"])
    np.testing.assert_allclose(report.ious, [1, 1, 0.25])
    assert report.by_relation["left"] == {"acc@0.25": 0.5, "acc@0.5": 0.5, "acc@0.75": 0.5, "count": 2}
    assert report.by_relation["closest"]["count"] == 1 and report.to_dict()["count"] == 3


def test_missing_target_counts_as_a_miss(caplog):
    report = evaluate_grounding([UNIT], POINTS, _ids(UNIT, 1), [99])
    assert np.isnan(report.ious[0]) and report.accuracy["acc@0.25"] == 0.0
    assert "no points in their scene" in caplog.text


def test_gt_proposal_accuracy():
    assert gt_proposal_accuracy([3, 4, 5, 5], [3, 4, 6, 5]) == 0.75


def _referral(scene, target, name, **meta) -> Referral:
    return Referral(scene, "x", target, target_class=name, meta=meta)


def test_scanrefer_unique_flags_count_annotated_objects_per_scene_class():
    labels = LabelMap(
        {
            "chair": LabelRow("chair", "chair", 2, 5, "chair"),
            "office chair": LabelRow("office chair", "office chair", 10, 5, "chair"),
            "lamp": LabelRow("lamp", "lamp", 25, 35, "lamp"),
            "pillow": LabelRow("pillow", "pillow", 12, 18, "pillow"),
        }
    )
    referrals = [
        _referral("s1", 1, "chair"),
        _referral("s1", 1, "chair"),  # same object again: still one chair so far
        _referral("s1", 2, "office_chair"),  # NYU40 chair too -> both chairs "multiple"
        _referral("s1", 3, "lamp"),  # lamp is not a ScanRefer class -> "others"
        _referral("s1", 4, "pillow"),  # also "others" -> multiple with the lamp
        _referral("s2", 1, "chair"),  # alone in its scene
    ]
    assert scanrefer_unique_flags(referrals, labels) == [False, False, False, False, False, True]


def test_benchmark_breakdowns_use_record_flags():
    referrals = [
        Referral("s", "x", 1, relation="closest", meta={"hard": False, "view_dependent": True, "coarse_relation": "h"}),
        Referral("s", "x", 2, relation="between", meta={"hard": True, "view_dependent": False, "coarse_relation": "b"}),
        Referral("s", "x", 3, relation="closest", meta={"hard": True, "view_dependent": False, "coarse_relation": "h"}),
    ]
    labels = breakdown_labels(referrals, "sr3d")
    assert labels["difficulty"] == ["easy", "hard", "hard"] and labels["view"] == [
        "view_dep",
        "view_indep",
        "view_indep",
    ]
    out = grounding_breakdowns(np.array([0.9, 0.3, np.nan]), referrals, "sr3d")
    assert out["overall"]["acc@0.5"] == pytest.approx(1 / 3) and out["overall"]["count"] == 3
    assert out["difficulty"]["hard"]["acc@0.25"] == 0.5 and out["relation"]["closest"]["acc@0.5"] == 0.5
    assert out["coarse_relation"]["b"]["count"] == 1
    scanrefer = [Referral("s", "x", 1, meta={"unique": True}), Referral("s", "x", 2, meta={"unique": False})]
    assert grounding_breakdowns(np.array([0.9, 0.1]), scanrefer, "scanrefer")["unique"]["multiple"]["acc@0.25"] == 0
