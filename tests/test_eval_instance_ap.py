"""Instance AP: hand-worked cases and a brute-force re-implementation of the ScanNet protocol on random scenes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from univlg.data.formats.scannet_labels import SCANNET200_CLASS_IDS, SCANNET200_CLASS_NAMES
from univlg.eval.instance_ap import (
    OFFICIAL_OVERLAPS,
    ScenePrediction,
    instance_average_precision,
    scannet200_instance_ap,
)

CLASSES = (3, 5, 7, 11)
NAMES = ("a", "b", "c", "d")


def _ap_brute_force(true: list[int], score: list[float], misses: int) -> float:
    """The benchmark's curve, by counting at each distinct score, integrated with (r[k-1] - r[k+1]) / 2 steps."""
    total = sum(true) + misses
    precision, recall = [], []
    for s in sorted(set(score)):
        tp = sum(1 for t, x in zip(true, score, strict=True) if x >= s and t)
        fp = sum(1 for t, x in zip(true, score, strict=True) if x >= s and not t)
        precision.append(tp / (tp + fp))
        recall.append(tp / total)
    precision.append(1.0)
    recall.append(0.0)
    n = len(recall)
    return sum(precision[k] * (recall[max(k - 1, 0)] - (recall[k + 1] if k + 1 < n else 0.0)) / 2 for k in range(n))


def _brute_force(scenes, class_id: int, threshold: float, min_size: int = 100) -> float:
    """Straight from the protocol text, with point sets: one class, one threshold."""
    true, score, misses, has_gt, has_pred, used = [], [], 0, False, False, set()
    for s, (codes, prediction) in enumerate(scenes):
        void = {p for p, c in enumerate(codes) if c // 1000 not in CLASSES}
        gts = {c: {p for p, x in enumerate(codes) if x == c} for c in set(codes) if c and c // 1000 == class_id}
        preds = [(k, set(np.flatnonzero(m)), prediction.scores[k]) for k, m in enumerate(prediction.masks)
                 if prediction.classes[k] == class_id and m.sum() >= min_size]  # fmt: skip
        has_gt |= any(len(g) >= min_size for g in gts.values())
        has_pred |= bool(preds)
        for code in sorted(gts):
            gt = gts[code]
            if len(gt) < min_size:
                continue
            best = None
            for k, points, conf in preds:
                if (s, k) in used or not points & gt or len(points & gt) / len(points | gt) <= threshold:
                    continue
                if best is None:
                    best = conf
                    used.add((s, k))
                else:
                    true.append(0)
                    score.append(min(best, conf))
                    best = max(best, conf)
            if best is None:
                misses += 1
            else:
                true.append(1)
                score.append(best)
        for _, points, conf in preds:
            if any(len(points & g) / len(points | g) > threshold for g in gts.values()):
                continue
            ignored = len(points & void) + sum(len(points & g) for g in gts.values() if len(g) < min_size)
            if ignored / len(points) <= threshold:
                true.append(0)
                score.append(conf)
    if has_gt and has_pred:
        return _ap_brute_force(true, score, misses)
    return 0.0 if has_gt else math.nan


def _random_scene(rng: np.random.Generator, num_points: int = 900):
    codes = np.zeros(num_points, dtype=np.int64)
    order = rng.permutation(num_points)
    start, gt_masks = 0, []
    for instance in range(rng.integers(4, 8)):
        size = int(rng.integers(60, 220))
        members = order[start : start + size]
        start += size
        class_id = int(rng.choice([3, 5, 7, 9]))  # 9 is not evaluated: void
        codes[members] = class_id * 1000 + instance + 1
        gt_masks.append((members, class_id))
    masks, classes, scores = [], [], []
    for members, class_id in gt_masks:
        for _ in range(rng.integers(0, 3)):  # 0-2 noisy copies of each GT
            mask = np.zeros(num_points, dtype=bool)
            mask[rng.choice(members, size=int(len(members) * rng.uniform(0.3, 1.0)), replace=False)] = True
            mask[rng.choice(num_points, size=int(rng.integers(0, 120)), replace=False)] = True
            masks.append(mask)
            classes.append(class_id if rng.random() < 0.8 else int(rng.choice(CLASSES)))
            scores.append(float(rng.random()))
    for _ in range(rng.integers(1, 4)):  # pure noise, one class never in the GT
        masks.append(rng.random(num_points) < rng.uniform(0.05, 0.3))
        classes.append(int(rng.choice(CLASSES)))
        scores.append(float(rng.random()))
    prediction = ScenePrediction(np.array(masks).reshape(-1, num_points), np.array(classes), np.array(scores))
    return codes, prediction


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_a_brute_force_implementation_on_random_scenes(seed):
    rng = np.random.default_rng(seed)
    scenes = [_random_scene(rng) for _ in range(3)]
    result = instance_average_precision([p for _, p in scenes], [c for c, _ in scenes], CLASSES, NAMES)
    assert result.overlaps[: len(OFFICIAL_OVERLAPS)] == OFFICIAL_OVERLAPS and result.overlaps[-1] == 0.25
    for c, class_id in enumerate(CLASSES):
        for t, threshold in enumerate(result.overlaps):
            np.testing.assert_allclose(result.aps[c, t], _brute_force(scenes, class_id, threshold), atol=1e-12)
    finite = np.isfinite(result.aps[:, :9])
    assert result.overall["AP"] == pytest.approx(result.aps[:, :9][finite].mean())
    assert np.isnan(result.per_class["d"]["AP"])  # class 11 is predicted but never in the GT


def _scene(*instances: tuple[int, int], total: int = 1000) -> np.ndarray:
    codes, start = np.zeros(total, dtype=np.int64), 0
    for k, (class_id, size) in enumerate(instances):
        codes[start : start + size] = class_id * 1000 + k + 1
        start += size
    return codes


def test_perfect_predictions_score_one():
    codes = _scene((3, 200), (5, 150), (3, 120))
    masks = np.array([codes == c for c in (3001, 5002, 3003)])
    result = instance_average_precision([ScenePrediction(masks, np.array([3, 5, 3]), np.array([0.9, 0.8, 0.7]))],
                                        [codes], CLASSES, NAMES)  # fmt: skip
    assert result.overall == {"AP": 1.0, "AP50": 1.0, "AP25": 1.0}
    assert np.isnan(result.per_class["c"]["AP"])  # no GT, no prediction


def test_a_false_positive_above_the_true_one_gives_the_hand_worked_ap():
    """TP at 0.9, FP at 0.95: points (p=0.5, r=1) at 0.9 and (0, 0) at 0.95, closed by (1, 0): AP = 0.25."""
    codes = _scene((3, 200), (5, 800))  # the false positive lies on the class-5 object, not on void points
    masks = np.array([codes == 3001, np.arange(1000) >= 500])
    result = instance_average_precision([ScenePrediction(masks, np.array([3, 3]), np.array([0.9, 0.95]))],
                                        [codes], CLASSES, NAMES)  # fmt: skip
    assert result.per_class["a"] == {"AP": 0.25, "AP50": 0.25, "AP25": 0.25}
    below = instance_average_precision([ScenePrediction(masks, np.array([3, 3]), np.array([0.9, 0.5]))],
                                       [codes], CLASSES, NAMES)  # fmt: skip
    assert below.per_class["a"]["AP"] == 1.0  # a lower-scored false positive costs nothing on this curve


def test_small_regions_and_void_points_are_ignored():
    codes = _scene((3, 200), (5, 60), (9, 300))  # class 5 instance below 100 points, class 9 not evaluated
    masks = np.array([codes == 3001, codes == 5002, codes == 9003, (codes == 5002) | (codes == 3001)])
    prediction = ScenePrediction(masks, np.array([3, 5, 3, 5]), np.array([0.9, 0.8, 0.7, 0.6]))
    result = instance_average_precision([prediction], [codes], CLASSES, NAMES)
    assert result.per_class["a"]["AP"] == 1.0  # the prediction on void points is not a false positive
    assert np.isnan(result.per_class["b"]["AP"])  # no countable GT; the 60-point prediction is dropped anyway


def test_scannet200_head_common_tail_averages():
    chair, cushion = (SCANNET200_CLASS_IDS[SCANNET200_CLASS_NAMES.index(n)] for n in ("chair", "cushion"))
    codes = _scene((chair, 300), (cushion, 200))
    prediction = ScenePrediction(np.array([codes == chair * 1000 + 1]), np.array([chair]), np.array([0.9]))
    out = scannet200_instance_ap([prediction], [codes])
    assert out["head"]["AP"] == 1.0 and out["common"]["AP"] == 0.0 and math.isnan(out["tail"]["AP"])
    assert out["AP"] == 0.5 and out["per_class"]["cushion"]["AP50"] == 0.0
