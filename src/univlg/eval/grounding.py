"""3D referential grounding metrics (SR3D, NR3D, ScanRefer, synthetic): the official UniVLG / BUTD-DETR protocol.

Protocol (reference sections 5.1, 5.2 and 12), "Det" setting:

- The prediction for an utterance is one binary mask over the scene's evaluation points (ScanNet: the mesh
  vertices), from the top-1 query. Its box is the axis-aligned min/max of the masked points' xyz, computed in
  float32; an empty mask has no box (NaN) and counts as a miss for every threshold.
- The GT box is the min/max of the points whose instance id equals the target id. Both boxes are in the same
  frame: for the benchmarks, the axis-aligned scan frame (apply the axis alignment to the points first).
- IoU is the axis-aligned 3D box IoU (computed in float64 from the float32 boxes). Acc@k counts IoU **> k**
  (strict: exactly 0.25 is a miss at 0.25), k in {0.25, 0.5, 0.75}; the reported number is the plain mean over
  utterances (top-1).
- The mask-IoU variant compares the vertex sets themselves (|pred & gt| / |pred | gt|), same strict thresholds.
- GT-proposal setting: the model picks one GT instance; accuracy = fraction with picked id == target id.

:func:`evaluate_grounding` is the single entry point (also used by the trainer's validation on synthetic data).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from univlg.geometry import box_iou_3d, boxes_from_masks

logger = logging.getLogger(__name__)

THRESHOLDS = (0.25, 0.5, 0.75)


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def mask_box(xyz, mask) -> np.ndarray:
    """Axis-aligned box of the masked points: xyz (P, 3), mask (P,) bool -> (6,) float32 (xmin..zmax); NaN if empty.

    The points are cast to float32 first (the protocol's precision), then :func:`~univlg.geometry.boxes_from_masks`.
    """
    points = torch.from_numpy(np.ascontiguousarray(_numpy(xyz), dtype=np.float32))
    inside = torch.from_numpy(np.ascontiguousarray(_numpy(mask), dtype=bool))
    if inside.shape != points.shape[:1]:
        raise ValueError(f"mask {tuple(inside.shape)} does not match points {tuple(points.shape)}")
    return boxes_from_masks(points, inside[None])[0].numpy()


def box_iou(box_a: np.ndarray, box_b: np.ndarray) -> float:
    """IoU of two (6,) corner boxes; NaN when either is NaN (empty mask), 0 when either has zero volume."""
    a = torch.as_tensor(np.asarray(box_a, dtype=np.float64)).reshape(1, 6)
    b = torch.as_tensor(np.asarray(box_b, dtype=np.float64)).reshape(1, 6)
    return float(box_iou_3d(a, b)[0, 0])


def mask_iou(pred_mask, gt_mask) -> float:
    """IoU of two point sets given as (P,) bool masks; 0 when both are empty."""
    pred, gt = _numpy(pred_mask).astype(bool), _numpy(gt_mask).astype(bool)
    union = np.count_nonzero(pred | gt)
    return float(np.count_nonzero(pred & gt) / union) if union else 0.0


def accuracy_at(ious, thresholds: Sequence[float] = THRESHOLDS) -> dict[str, float]:
    """``{"acc@0.25": mean(iou > 0.25), ...}`` over ious (N,) float; NaN IoU is a miss; empty input gives NaN."""
    values = np.asarray(ious, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return {f"acc@{t:g}": float(np.mean(values > t)) if values.size else float("nan") for t in thresholds}


@dataclass
class GroundingReport:
    """Per-utterance IoUs and the accuracies derived from them.

    ious / mask_ious: (N,) float64 box IoU and vertex-set IoU (NaN box IoU = empty prediction or missing target);
    accuracy / mask_accuracy: ``{"acc@k": float}``; by_relation: relation -> accuracies plus ``"count"``.
    """

    ious: np.ndarray
    mask_ious: np.ndarray
    accuracy: dict[str, float]
    mask_accuracy: dict[str, float]
    by_relation: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """A JSON-friendly summary (no per-utterance arrays)."""
        return {
            "count": int(self.ious.size),
            **self.accuracy,
            **{f"mask_{k}": v for k, v in self.mask_accuracy.items()},
            "by_relation": self.by_relation,
        }


def accuracy_by_group(
    ious, groups: Sequence[str | None], thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, dict[str, float]]:
    """Acc@k per group label (utterances whose label is None or "" are left out): label -> {acc@k..., count}."""
    values = np.asarray(ious, dtype=np.float64)
    if len(groups) != values.size:
        raise ValueError(f"{len(groups)} group labels for {values.size} IoUs")
    labels = np.array([g if g else "" for g in groups], dtype=object)
    out = {}
    for label in sorted({g for g in labels if g}):
        chosen = values[labels == label]
        out[label] = {**accuracy_at(chosen, thresholds), "count": int(chosen.size)}
    return out


def _per_item(value, count: int, name: str) -> list:
    """A per-utterance list from either one shared array (same scene for all) or a sequence of ``count`` arrays."""
    if isinstance(value, (np.ndarray, torch.Tensor)):
        return [value] * count
    items = list(value)
    if len(items) != count:
        raise ValueError(f"{name}: {len(items)} entries for {count} predictions")
    return items


def evaluate_grounding(
    pred_masks,
    xyz,
    gt_instance_ids,
    target_ids: Sequence[int],
    relations: Sequence[str] | None = None,
    thresholds: Sequence[float] = THRESHOLDS,
) -> GroundingReport:
    """Top-1 grounding accuracy of predicted point masks (the protocol in the module docstring).

    Args:
        pred_masks: N predicted masks, each (P_i,) bool (a list, or an (N, P) array/tensor for one shared scene).
        xyz: (P, 3) float points shared by all utterances, or a list of N (P_i, 3) arrays (one scene each);
            in the frame the benchmark scores in (axis-aligned for ScanNet).
        gt_instance_ids: (P,) int instance id per point (-1 or any non-target value for background), shared or per
            utterance like ``xyz``.
        target_ids: N target instance ids.
        relations: optional N relation names for the per-relation breakdown (e.g. SR3D reference types).
        thresholds: the IoU thresholds k of Acc@k (strict ``>``).

    Returns:
        A :class:`GroundingReport`. A target absent from its scene's points gives NaN IoU (a miss) and a warning.
    """
    masks = list(pred_masks)  # an (N, P) array or tensor gives its rows
    count = len(masks)
    if len(target_ids) != count:
        raise ValueError(f"{len(target_ids)} target ids for {count} predictions")
    points = _per_item(xyz, count, "xyz")
    instances = _per_item(gt_instance_ids, count, "gt_instance_ids")
    ious, mask_ious = np.empty(count), np.empty(count)
    missing = 0
    for i, (mask, pts, ids, target) in enumerate(zip(masks, points, instances, target_ids, strict=True)):
        gt_mask = _numpy(ids) == int(target)
        missing += not gt_mask.any()
        ious[i] = box_iou(mask_box(pts, mask), mask_box(pts, gt_mask))
        mask_ious[i] = mask_iou(mask, gt_mask)
    if missing:
        logger.warning("%d of %d grounding targets have no points in their scene; counted as misses", missing, count)
    report = GroundingReport(
        ious=ious,
        mask_ious=mask_ious,
        accuracy=accuracy_at(ious, thresholds),
        mask_accuracy=accuracy_at(mask_ious, thresholds),
    )
    if relations is not None:
        report.by_relation = accuracy_by_group(ious, list(relations), thresholds)
    return report


def gt_proposal_accuracy(pred_instance_ids: Sequence[int], target_ids: Sequence[int]) -> float:
    """GT-proposal setting (reference 5.2): fraction of utterances whose chosen GT instance is the target."""
    pred, target = np.asarray(pred_instance_ids), np.asarray(target_ids)
    if pred.shape != target.shape:
        raise ValueError(f"{pred.shape} predictions for {target.shape} targets")
    return float(np.mean(pred == target)) if pred.size else float("nan")
