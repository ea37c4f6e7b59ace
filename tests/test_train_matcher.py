"""Hungarian matcher against brute force over all assignments, with independently computed costs."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from univlg.train.matcher import HungarianMatcher
from univlg.train.targets import SampleTargets


def _pair_cost(span_logit, mask_logit, positive, mask, box=None, gt_box=None, w=(2.0, 0.2, 0.2, 0.1, 0.1)):
    """Cost of one (query, object) pair written out with scalar loops."""
    span_prob = [1 / (1 + math.exp(-float(x))) for x in span_logit]
    cost = -w[0] * sum(p * float(t) for p, t in zip(span_prob, positive))
    probs = [1 / (1 + math.exp(-float(x))) for x in mask_logit]
    bce = -sum(float(t) * math.log(p) + (1 - float(t)) * math.log(1 - p) for p, t in zip(probs, mask)) / len(probs)
    inter = sum(p * float(t) for p, t in zip(probs, mask))
    dice = 1 - (2 * inter + 1) / (sum(probs) + float(sum(mask)) + 1)
    cost += w[1] * bce + w[2] * dice
    if box is not None:
        a, b = [float(v) for v in box], [float(v) for v in gt_box]
        ca = [(a[i] + a[i + 3]) / 2 for i in range(3)] + [a[i + 3] - a[i] for i in range(3)]
        cb = [(b[i] + b[i + 3]) / 2 for i in range(3)] + [b[i + 3] - b[i] for i in range(3)]
        l1 = sum(abs(x - y) for x, y in zip(ca, cb))
        vol = lambda c: (c[3] - c[0]) * (c[4] - c[1]) * (c[5] - c[2])  # noqa: E731
        inter_box = [max(a[i], b[i]) for i in range(3)] + [min(a[i + 3], b[i + 3]) for i in range(3)]
        inter_vol = max(inter_box[3] - inter_box[0], 0) * max(inter_box[4] - inter_box[1], 0)
        inter_vol *= max(inter_box[5] - inter_box[2], 0)
        union = vol(a) + vol(b) - inter_vol
        hull = vol([min(a[i], b[i]) for i in range(3)] + [max(a[i + 3], b[i + 3]) for i in range(3)])
        giou = inter_vol / union - (hull - union) / hull
        cost += w[3] * l1 - w[4] * giou
    return cost


def _random_boxes(n, generator):
    low = torch.rand(n, 3, generator=generator)
    return torch.cat([low, low + 0.2 + torch.rand(n, 3, generator=generator)], dim=1)


@pytest.mark.parametrize("with_boxes", [False, True])
def test_matching_is_optimal_against_brute_force(with_boxes):
    generator = torch.Generator().manual_seed(3)
    matcher = HungarianMatcher()
    for _ in range(5):
        q, g, t, p = 5, 3, 7, 11
        span = torch.randn(q, t, generator=generator) * 2
        masks_logits = torch.randn(q, p, generator=generator) * 2
        positive = torch.zeros(g, t)
        for i in range(g):
            positive[i, 2 * i : 2 * i + 2] = 0.5
        gt_masks = (torch.rand(g, p, generator=generator) > 0.5).float()
        boxes = _random_boxes(q, generator) if with_boxes else None
        gt_boxes = _random_boxes(g, generator) if with_boxes else None
        targets = SampleTargets(positive, gt_masks, gt_boxes)
        costs = [
            [
                _pair_cost(
                    span[i],
                    masks_logits[i],
                    positive[j],
                    gt_masks[j],
                    None if boxes is None else boxes[i],
                    None if gt_boxes is None else gt_boxes[j],
                )
                for j in range(g)
            ]
            for i in range(q)
        ]
        matrix = matcher.cost_matrix(span, masks_logits, targets, boxes)
        torch.testing.assert_close(matrix, torch.tensor(costs, dtype=torch.float32), atol=1e-4, rtol=1e-4)
        best = min(sum(costs[i][j] for j, i in enumerate(perm)) for perm in itertools.permutations(range(q), g))
        rows, cols = matcher.match(span, masks_logits, targets, boxes)
        assert len(set(rows.tolist())) == g
        assert sum(costs[i][j] for i, j in zip(rows.tolist(), cols.tolist())) == pytest.approx(best, abs=1e-4)


def test_empty_boxes_do_not_break_matching():
    generator = torch.Generator().manual_seed(0)
    boxes = _random_boxes(4, generator)
    boxes[1] = float("nan")  # an empty predicted mask has no box
    targets = SampleTargets(torch.eye(2, 5), torch.ones(2, 6), _random_boxes(2, generator))
    rows, cols = HungarianMatcher().match(torch.zeros(4, 5), torch.zeros(4, 6), targets, boxes)
    assert 1 not in rows.tolist() and len(rows) == 2


def test_no_targets_gives_empty_match():
    targets = SampleTargets(torch.zeros(0, 5), torch.zeros(0, 6), None)
    rows, cols = HungarianMatcher().match(torch.zeros(4, 5), torch.zeros(4, 6), targets)
    assert rows.numel() == 0 and cols.numel() == 0
