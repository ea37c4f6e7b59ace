"""RefCOCO / RefCOCO+ / RefCOCOg metrics: box accuracy of the predicted mask, and mask mIoU / cIoU.

Protocol (reference 5.4 and 12, UniVLG's ``refcoco_eval.py``):

- Box path (the usual REC number, default): the top-1 predicted mask, in the original image's pixels, becomes its
  tight box ``[x0, y0, x1, y1]`` = [min col, min row, max col, max row] with **inclusive pixel indices and no +1**
  (so a mask that exactly fills an integer GT box scores below 1: the box is one pixel short on each axis); an
  empty mask becomes ``[0, 0, 0, 0]``. The GT box is the COCO ``bbox`` (x, y, w, h) -> (x, y, x + w, y + h).
  IoU is the plain continuous box IoU; Acc@k counts IoU **> k** (strict) for k in {0.25, 0.5, 0.75}; Acc@0.5 is
  the reported number.
- Mask path: per-sample mask IoU |P & G| / |P | G| -> mIoU (mean over samples) and cIoU (cumulative: sum of
  intersections / sum of unions over the whole split). Precision@k over the per-sample IoUs, strict like above.
  A sample whose prediction and GT are both empty has IoU 0 (not reached with COCO GT masks).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from univlg.eval.grounding import THRESHOLDS, accuracy_at
from univlg.geometry import box_iou_2d


def mask_to_box(mask) -> np.ndarray:
    """Tight box of a (H, W) bool mask: (4,) float64 [x0, y0, x1, y1] of inclusive pixel indices; zeros if empty."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape}")
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return np.zeros(4)
    return np.array([cols[0], rows[0], cols[-1], rows[-1]], dtype=np.float64)


def box_iou(box_a, box_b) -> float:
    """Continuous IoU of two (4,) [x0, y0, x1, y1] boxes; 0 when either has zero area."""
    a = torch.as_tensor(np.asarray(box_a, dtype=np.float64)).reshape(1, 4)
    b = torch.as_tensor(np.asarray(box_b, dtype=np.float64)).reshape(1, 4)
    return float(box_iou_2d(a, b)[0, 0])


def refcoco_box_accuracy(
    pred_masks: Sequence, gt_boxes_xyxy: Sequence, thresholds: Sequence[float] = THRESHOLDS
) -> tuple[dict[str, float], np.ndarray]:
    """Acc@k of the predicted masks' tight boxes against GT boxes.

    Args:
        pred_masks: N (H_i, W_i) bool masks in original image pixels.
        gt_boxes_xyxy: N (4,) GT boxes ``(x, y, x + w, y + h)`` (an ImageReferral's ``box_xyxy``).

    Returns:
        ``({"acc@0.25": ..., "acc@0.5": ..., "acc@0.75": ...}, ious (N,) float64)``.
    """
    if len(pred_masks) != len(gt_boxes_xyxy):
        raise ValueError(f"{len(pred_masks)} masks for {len(gt_boxes_xyxy)} boxes")
    ious = np.array([box_iou(mask_to_box(m), b) for m, b in zip(pred_masks, gt_boxes_xyxy, strict=True)])
    return accuracy_at(ious, thresholds), ious


def mask_overlap(pred_mask, gt_mask) -> tuple[int, int]:
    """|P & G| and |P | G| (pixel counts) of a predicted and a GT (H, W) bool mask of the same size."""
    pred, gt = np.asarray(pred_mask, dtype=bool), np.asarray(gt_mask, dtype=bool)
    if pred.shape != gt.shape:
        raise ValueError(f"predicted mask {pred.shape} vs GT {gt.shape}")
    return int(np.count_nonzero(pred & gt)), int(np.count_nonzero(pred | gt))


def mask_metrics_from_counts(intersections, unions, thresholds: Sequence[float] = THRESHOLDS) -> dict[str, float]:
    """mIoU, cIoU and precision@k (strict) from per-sample pixel counts (the protocol in the module docstring).

    Args:
        intersections, unions: (N,) |P & G| and |P | G| per sample.

    Returns:
        ``{"mIoU", "cIoU", "precision@0.25", ...}``; NaN for mIoU / cIoU without samples (or without any union).
    """
    inter, union = np.asarray(intersections, dtype=np.float64), np.asarray(unions, dtype=np.float64)
    ious = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    precision = {k.replace("acc", "precision"): v for k, v in accuracy_at(ious, thresholds).items()}
    return {
        "mIoU": float(ious.mean()) if ious.size else float("nan"),
        "cIoU": float(inter.sum() / union.sum()) if union.sum() > 0 else float("nan"),
        **precision,
    }


def refcoco_mask_metrics(
    pred_masks: Sequence, gt_masks: Sequence, thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, float]:
    """mIoU, cIoU and precision@k (strict) of N predicted vs GT (H_i, W_i) bool masks.

    Returns ``{"mIoU", "cIoU", "precision@0.25", ...}``.
    """
    if len(pred_masks) != len(gt_masks):
        raise ValueError(f"{len(pred_masks)} predicted masks for {len(gt_masks)} GT masks")
    counts = []
    for i, (pred, gt) in enumerate(zip(pred_masks, gt_masks, strict=True)):
        try:
            counts.append(mask_overlap(pred, gt))
        except ValueError as error:
            raise ValueError(f"sample {i}: {error}") from None
    inter, union = np.array(counts, dtype=np.float64).reshape(-1, 2).T
    return mask_metrics_from_counts(inter, union, thresholds)
