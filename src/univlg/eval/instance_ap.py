"""ScanNet / ScanNet200 3D instance segmentation AP, AP50, AP25 (the ScanNet benchmark protocol).

Protocol (ScanNet benchmark ``evaluate_semantic_instance.py``, as used by Mask3D and UniVLG; reference 5.5, 12):

- Points are the mesh vertices. GT: per-point code ``semantic_id * 1000 + instance + 1`` (0 = none); a GT instance
  counts when its class is evaluated and it has >= ``min_region_size`` (100) points. Points whose semantic id is
  not an evaluated class are "void".
- Predictions: (mask, class id, score) per instance; masks with fewer than ``min_region_size`` points are dropped.
- Per overlap threshold t and class: each GT, in order, takes the predictions of its class that overlap it with
  IoU > t, **in prediction order** (not score order): the first unused one matches; any further one is a false
  positive with the lower of the two scores (the GT keeps the higher). A prediction, once matched, is used up.
  A GT with no match is a false negative. A prediction overlapping no GT of its class with IoU > t is a false
  positive unless more than a fraction t of its points lie on void points or on GT instances too small to count.
- AP per class and threshold: the benchmark's precision/recall curve over the unique scores (false negatives
  included in recall), closed with (recall 0, precision 1), integrated with step widths
  ``(r[k-1] - r[k+1]) / 2``. A class with GT but no prediction has AP 0; a class without GT has NaN, left out of
  every mean (so classes predicted but absent from the GT do not count).
- AP = mean over thresholds 0.50, 0.55, ..., 0.90 (the official evaluator's ``np.arange(0.5, 0.95, 0.05)``: the
  benchmark text says 0.5:0.95, the code that produced every published number stops at 0.90; we match the code,
  :data:`DOCUMENTED_OVERLAPS` gives the 0.5:0.95 variant), AP50 and AP25 at 0.5 and 0.25. Overall numbers are
  NaN-ignoring means over classes. The official result dict stores AP25 under the key ``AP75``; ours says AP25.
- ScanNet200: the 198 classes of :data:`~univlg.data.formats.scannet_labels.SCANNET200_INSTANCE_CLASS_IDS`,
  head / common / tail = means of the per-class values over each split's classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from univlg.data.formats.scannet_labels import (
    SCANNET200_INSTANCE_CLASS_IDS,
    SCANNET200_INSTANCE_CLASS_NAMES,
    scannet200_split,
)

OFFICIAL_OVERLAPS = tuple(float(t) for t in np.arange(0.5, 0.95, 0.05))  # 0.50 ... 0.90, as the evaluator runs
DOCUMENTED_OVERLAPS = tuple(float(t) for t in np.arange(0.5, 0.951, 0.05))  # 0.50 ... 0.95
MIN_REGION_SIZE = 100


@dataclass
class ScenePrediction:
    """Predicted instances of one scene: masks (K, P) bool over its points, classes (K,) int ids, scores (K,)."""

    masks: np.ndarray
    classes: np.ndarray
    scores: np.ndarray


@dataclass
class _Gt:
    key: int
    class_id: int
    size: int
    matched: list  # [(pred key, intersection)] in prediction order


@dataclass
class _Pred:
    key: int
    class_id: int
    score: float
    size: int
    void: int  # points on void GT
    matched: list  # [(gt, intersection)] in GT order


def _scene_matches(prediction: ScenePrediction, gt_codes: np.ndarray, class_ids: set, min_size: int, offset: int):
    """GT and prediction instances of one scene with their overlaps (the evaluator's ``assign_instances_for_scan``)."""
    gt_codes = np.asarray(gt_codes, dtype=np.int64)
    masks = np.asarray(prediction.masks, dtype=bool).reshape(-1, gt_codes.size)
    codes, gt_index, sizes = np.unique(gt_codes, return_inverse=True, return_counts=True)
    gts = [_Gt(offset + int(c), int(c) // 1000, int(n), []) for c, n in zip(codes, sizes, strict=True)]
    keep = np.array([c != 0 and g.class_id in class_ids for c, g in zip(codes, gts, strict=True)])
    void = ~np.isin(gt_codes // 1000, list(class_ids))
    gt_index = np.where(keep[gt_index], gt_index, -1)
    preds = []
    for k, mask in enumerate(masks):
        class_id, size = int(prediction.classes[k]), int(mask.sum())
        if class_id not in class_ids or size < min_size:
            continue
        pred = _Pred(offset + k, class_id, float(prediction.scores[k]), size, int(np.count_nonzero(mask & void)), [])
        overlap = np.bincount(gt_index[mask & (gt_index >= 0)], minlength=len(gts))
        for g in np.flatnonzero(overlap):
            if gts[g].class_id == class_id:
                pred.matched.append((gts[g], int(overlap[g])))
                gts[g].matched.append((pred, int(overlap[g])))
        preds.append(pred)
    return [g for g, k in zip(gts, keep, strict=True) if k], preds


def _class_detections(gts, preds, threshold: float, min_size: int, used: set):
    """(is_true, score) detections and hard false negatives of one class in one scene at one overlap threshold."""
    counted = [g for g in gts if g.size >= min_size]
    true, score, hard_fn = [], [], 0
    for gt in counted:
        best = None
        for pred, inter in gt.matched:
            if pred.key in used or inter / (gt.size + pred.size - inter) <= threshold:
                continue
            if best is None:
                best = pred.score
                used.add(pred.key)
            else:  # a second prediction for a matched GT: the lower score becomes a false positive
                true.append(0)
                score.append(min(best, pred.score))
                best = max(best, pred.score)
        if best is None:
            hard_fn += 1
        else:
            true.append(1)
            score.append(best)
    for pred in preds:
        if any(inter / (gt.size + pred.size - inter) > threshold for gt, inter in pred.matched):
            continue
        ignored = pred.void + sum(inter for gt, inter in pred.matched if gt.size < min_size)
        if ignored / pred.size <= threshold:
            true.append(0)
            score.append(pred.score)
    return true, score, hard_fn


def benchmark_average_precision(is_true: np.ndarray, scores: np.ndarray, hard_false_negatives: int) -> float:
    """The ScanNet evaluator's AP of detections (is_true (D,) 0/1, scores (D,)) plus unmatched GTs."""
    order = np.argsort(scores, kind="stable")
    true_sorted, score_sorted = np.asarray(is_true, float)[order], np.asarray(scores, float)[order]
    cumsum = np.cumsum(true_sorted)
    _, first_of_score = np.unique(score_sorted, return_index=True)
    total = len(score_sorted)
    total_true = cumsum[-1] if total else 0
    cumsum = np.append(cumsum, 0)  # index -1 reads 0
    precision, recall = np.zeros(len(first_of_score) + 1), np.zeros(len(first_of_score) + 1)
    for k, start in enumerate(first_of_score):
        below = cumsum[start - 1]  # true detections scored below this threshold
        tp = total_true - below
        fp = total - start - tp
        precision[k] = tp / (tp + fp)
        recall[k] = tp / (tp + below + hard_false_negatives)
    precision[-1], recall[-1] = 1.0, 0.0
    padded = np.concatenate([[recall[0]], recall, [0.0]])
    widths = np.convolve(padded, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, widths))


@dataclass
class InstanceAPResult:
    """aps: (C, T) AP per class and overlap threshold; per-class and overall AP / AP50 / AP25."""

    class_names: tuple[str, ...]
    overlaps: tuple[float, ...]
    aps: np.ndarray
    per_class: dict[str, dict[str, float]]
    overall: dict[str, float]


def instance_average_precision(
    predictions: Sequence[ScenePrediction],
    gt_codes: Sequence[np.ndarray],
    class_ids: Sequence[int],
    class_names: Sequence[str],
    overlaps: Sequence[float] = OFFICIAL_OVERLAPS,
    min_region_size: int = MIN_REGION_SIZE,
) -> InstanceAPResult:
    """AP / AP50 / AP25 over scenes (the protocol in the module docstring).

    Args:
        predictions: one :class:`ScenePrediction` per scene (masks over that scene's points).
        gt_codes: one (P,) int array per scene, ``semantic_id * 1000 + instance + 1`` (0 = none).
        class_ids / class_names: the evaluated classes (semantic ids as in ``gt_codes`` and predictions).
        overlaps: the IoU thresholds AP averages over; 0.5 and 0.25 are always evaluated too.
    """
    if len(predictions) != len(gt_codes):
        raise ValueError(f"{len(predictions)} scene predictions for {len(gt_codes)} GT scenes")
    id_set = set(int(c) for c in class_ids)
    by_class: dict[int, list[tuple[list, list]]] = {int(c): [] for c in class_ids}
    for s, (prediction, codes) in enumerate(zip(predictions, gt_codes, strict=True)):
        gts, preds = _scene_matches(prediction, codes, id_set, min_region_size, offset=s << 40)
        for class_id in {g.class_id for g in gts} | {p.class_id for p in preds}:
            by_class[class_id].append(
                ([g for g in gts if g.class_id == class_id], [p for p in preds if p.class_id == class_id])
            )
    thresholds = list(dict.fromkeys([*overlaps, 0.5, 0.25]))
    aps = np.full((len(class_ids), len(thresholds)), np.nan)
    for t, threshold in enumerate(thresholds):
        used: set = set()
        for c, class_id in enumerate(class_ids):
            scenes = by_class[int(class_id)]
            has_gt = any(g.size >= min_region_size for gts, _ in scenes for g in gts)
            has_pred = any(preds for _, preds in scenes)
            true, score, hard_fn = [], [], 0
            for gts, preds in scenes:
                d_true, d_score, d_fn = _class_detections(gts, preds, threshold, min_region_size, used)
                true += d_true
                score += d_score
                hard_fn += d_fn
            if has_gt and has_pred:
                aps[c, t] = benchmark_average_precision(np.array(true), np.array(score), hard_fn)
            elif has_gt:
                aps[c, t] = 0.0
    main = [thresholds.index(o) for o in overlaps]
    i50, i25 = thresholds.index(0.5), thresholds.index(0.25)
    per_class = {
        name: {"AP": float(np.mean(aps[c, main])), "AP50": float(aps[c, i50]), "AP25": float(aps[c, i25])}
        for c, name in enumerate(class_names)
    }
    overall = {"AP": _nanmean(aps[:, main]), "AP50": _nanmean(aps[:, i50]), "AP25": _nanmean(aps[:, i25])}
    return InstanceAPResult(tuple(class_names), tuple(thresholds), aps, per_class, overall)


def _nanmean(values) -> float:
    """Mean of the finite entries; NaN when there are none (no class has GT)."""
    values = np.asarray(values, dtype=float)
    return float(values[np.isfinite(values)].mean()) if np.isfinite(values).any() else float("nan")


def split_averages(result: InstanceAPResult, split_of: dict[str, str]) -> dict[str, dict[str, float]]:
    """NaN-ignoring means of the per-class AP / AP50 / AP25 over each split (``split_of``: class name -> split)."""
    out: dict[str, dict[str, float]] = {}
    for split in sorted(set(split_of.values())):
        rows = [result.per_class[n] for n in result.class_names if split_of.get(n) == split]
        out[split] = {k: _nanmean([r[k] for r in rows]) for k in ("AP", "AP50", "AP25")}
    return out


def scannet200_instance_ap(predictions: Sequence[ScenePrediction], gt_codes: Sequence[np.ndarray]) -> dict:
    """ScanNet200 instance AP: ``{"AP", "AP50", "AP25", "head": {...}, "common": {...}, "tail": {...},
    "per_class": {...}}`` over the 198 instance classes (ScanNet200 ids in predictions and GT codes)."""
    result = instance_average_precision(predictions, gt_codes, SCANNET200_INSTANCE_CLASS_IDS,
                                        SCANNET200_INSTANCE_CLASS_NAMES)  # fmt: skip
    splits = split_averages(result, {n: scannet200_split(n) for n in SCANNET200_INSTANCE_CLASS_NAMES})
    return {**result.overall, **splits, "per_class": result.per_class}
