"""RefCOCO metrics on hand-drawn masks: tight inclusive boxes, strict Acc@k, mIoU vs cIoU."""

from __future__ import annotations

import numpy as np
import pytest

from univlg.eval.refcoco import mask_to_box, refcoco_box_accuracy, refcoco_mask_metrics


def _mask(h: int, w: int, rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((h, w), dtype=bool)
    mask[rows, cols] = True
    return mask


def test_tight_box_uses_inclusive_indices_without_plus_one():
    mask = _mask(10, 12, slice(3, 8), slice(2, 6))  # rows 3..7, cols 2..5
    assert mask_to_box(mask).tolist() == [2, 3, 5, 7]
    assert mask_to_box(np.zeros((4, 4), bool)).tolist() == [0, 0, 0, 0]


def test_mask_filling_an_integer_gt_box_scores_below_one():
    """GT box x 2..6, y 3..8 covers pixel cells cols 2..5, rows 3..7: tight box [2,3,5,7] -> IoU 3*4 / (4*5)."""
    mask = _mask(10, 12, slice(3, 8), slice(2, 6))
    accuracy, ious = refcoco_box_accuracy([mask], [(2, 3, 6, 8)])
    assert ious[0] == pytest.approx(12 / 20)
    assert accuracy == {"acc@0.25": 1.0, "acc@0.5": 1.0, "acc@0.75": 0.0}


def test_strict_threshold_and_empty_mask():
    half = _mask(5, 8, slice(0, 2), slice(0, 3))  # tight box [0,0,2,1]: area 2, inside GT [0,0,4,1] (area 4)
    accuracy, ious = refcoco_box_accuracy([half, np.zeros((5, 8), bool)], [(0, 0, 4, 1), (1, 1, 3, 3)])
    assert ious.tolist() == [0.5, 0.0]
    assert accuracy == {"acc@0.25": 0.5, "acc@0.5": 0.0, "acc@0.75": 0.0}


def test_mask_miou_and_ciou_differ_as_hand_computed():
    gt1, pred1 = _mask(4, 4, slice(0, 1), slice(0, 1)), _mask(4, 4, slice(0, 2), slice(0, 2))  # I 1, U 4
    gt2, pred2 = _mask(4, 4, slice(0, 2), slice(0, 4)), _mask(4, 4, slice(0, 2), slice(1, 4))  # I 6, U 8
    gt2[3, 0] = True  # U 9 with this extra GT pixel
    out = refcoco_mask_metrics([pred1, pred2], [gt1, gt2])
    assert out["mIoU"] == pytest.approx((1 / 4 + 6 / 9) / 2)
    assert out["cIoU"] == pytest.approx(7 / 13)
    assert out["precision@0.25"] == 0.5 and out["precision@0.5"] == 0.5 and out["precision@0.75"] == 0.0


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="sample 0"):
        refcoco_mask_metrics([np.zeros((2, 2), bool)], [np.zeros((3, 2), bool)])
