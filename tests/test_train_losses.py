"""Set criterion: hand-computed terms, permutation invariance, gradients of the soft box loss."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from univlg.model.answer_head import IGNORE
from univlg.model.heads import PredictionHeads
from univlg.train.losses import (
    LossWeights,
    SetCriterion,
    candidate_features,
    dice_loss,
    query_rank_loss,
    relation_anchor_loss,
    relation_class_loss,
    relation_geometry_loss,
    sigmoid_focal_loss,
    unit_span_loss,
)
from univlg.train.matcher import HungarianMatcher
from univlg.train.targets import SampleTargets, relation_labels


def test_focal_loss_hand_value():
    # p = sigmoid(0) = 0.5; target 1: ce = ln 2, (1 - p_t)^2 = 0.25, alpha 0.25.
    value = sigmoid_focal_loss(torch.tensor([0.0]), torch.tensor([1.0]))
    assert value.item() == pytest.approx(math.log(2) * 0.25 * 0.25)
    # target 0 with logit 2: p_t = 1 - sigmoid(2); weight (1 - alpha) = 0.75.
    p = 1 / (1 + math.exp(-2))
    value = sigmoid_focal_loss(torch.tensor([2.0]), torch.tensor([0.0]))
    assert value.item() == pytest.approx(-math.log(1 - p) * p**2 * 0.75, rel=1e-5)


def test_dice_hand_value():
    logits = torch.tensor([[100.0, -100.0, 100.0, -100.0]])  # p = [1, 0, 1, 0]
    targets = torch.tensor([[1.0, 1.0, 0.0, 0.0]])
    assert dice_loss(logits, targets).item() == pytest.approx(1 - (2 * 1 + 1) / (2 + 2 + 1), abs=1e-6)


def _problem(seed=0, layers=2, q=4, t=6, p=9):
    generator = torch.Generator().manual_seed(seed)
    span = torch.randn(layers, 1, q, t, generator=generator)
    masks = torch.randn(layers, 1, q, p, generator=generator)
    positive = torch.zeros(2, t)
    positive[0, :2] = 0.5
    positive[1, 3] = 1.0
    gt_masks = (torch.rand(2, p, generator=generator) > 0.5).float()
    target = SampleTargets(positive, gt_masks, None)
    return span, masks, target


def test_single_match_loss_equals_hand_computation():
    """One query, one object: the match is forced, so every term can be computed by hand."""
    span = torch.tensor([[[[1.0, -1.0, 0.5]]]])  # (L=1, B=1, Q=1, T=3)
    masks = torch.tensor([[[[2.0, -1.0, 0.0, 3.0]]]])  # (1, 1, 1, P=4)
    target = SampleTargets(torch.tensor([[0.5, 0.5, 0.0]]), torch.tensor([[1.0, 0.0, 0.0, 1.0]]), None)
    criterion = SetCriterion(HungarianMatcher(), LossWeights(span=1, mask=1, dice=1))
    out = criterion(span, torch.ones(1, 3, dtype=torch.bool), masks, torch.ones(1, 4, dtype=torch.bool), [target])
    focal = sigmoid_focal_loss(span[0, 0, 0], torch.tensor([1.0, 1.0, 0.0])).sum() / 2  # 2 positive tokens
    probs = torch.sigmoid(masks[0, 0, 0])
    t = target.masks[0]
    bce = -(t * probs.log() + (1 - t) * (1 - probs).log()).mean()
    dice = 1 - (2 * (probs * t).sum() + 1) / (probs.sum() + t.sum() + 1)
    assert out["loss_span_0"].item() == pytest.approx(focal.item(), rel=1e-5)
    assert out["loss_mask_0"].item() == pytest.approx(bce.item(), rel=1e-5)
    assert out["loss_dice_0"].item() == pytest.approx(dice.item(), rel=1e-5)
    assert out["loss"].item() == pytest.approx((focal + bce + dice).item(), rel=1e-5)


def test_loss_is_invariant_to_query_order():
    span, masks, target = _problem()
    criterion = SetCriterion(HungarianMatcher())
    text_valid = torch.ones(1, span.shape[-1], dtype=torch.bool)
    point_valid = torch.ones(1, masks.shape[-1], dtype=torch.bool)
    base = criterion(span, text_valid, masks, point_valid, [target])["loss"]
    perm = torch.tensor([2, 0, 3, 1])
    permuted = criterion(span[:, :, perm], text_valid, masks[:, :, perm], point_valid, [target])["loss"]
    assert permuted.item() == pytest.approx(base.item(), rel=1e-6)


def test_padding_is_ignored():
    span, masks, target = _problem()
    criterion = SetCriterion(HungarianMatcher())
    text_valid = torch.ones(1, 6, dtype=torch.bool)
    point_valid = torch.ones(1, 9, dtype=torch.bool)
    base = criterion(span, text_valid, masks, point_valid, [target])["loss"]
    padded_span = torch.cat([span, torch.full_like(span[..., :2], 50.0)], dim=-1)
    padded_masks = torch.cat([masks, torch.full_like(masks[..., :3], -50.0)], dim=-1)
    padded_target = SampleTargets(
        torch.cat([target.positive_map, torch.zeros(2, 2)], 1), torch.cat([target.masks, torch.ones(2, 3)], 1), None
    )
    out = criterion(
        padded_span,
        torch.cat([text_valid, torch.zeros(1, 2, dtype=torch.bool)], 1),
        padded_masks,
        torch.cat([point_valid, torch.zeros(1, 3, dtype=torch.bool)], 1),
        [padded_target],
    )["loss"]
    assert out.item() == pytest.approx(base.item(), rel=1e-6)


def test_perfect_prediction_scores_lower_than_random():
    span, masks, target = _problem()
    criterion = SetCriterion(HungarianMatcher())
    text_valid = torch.ones(1, 6, dtype=torch.bool)
    point_valid = torch.ones(1, 9, dtype=torch.bool)
    perfect_span = torch.full_like(span, -8.0)
    perfect_span[:, 0, 0, :2] = 8.0
    perfect_span[:, 0, 1, 3] = 8.0
    perfect_masks = torch.full_like(masks, -8.0)
    perfect_masks[:, 0, :2] = (target.masks * 16 - 8)[None]
    good = criterion(perfect_span, text_valid, perfect_masks, point_valid, [target])["loss"]
    bad = criterion(span, text_valid, masks, point_valid, [target])["loss"]
    assert good.item() < 0.1 * bad.item()


def test_soft_box_loss_carries_gradient_and_match_only_does_not():
    span, masks, target = _problem()
    target.boxes = torch.tensor([[0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [2.0, 2.0, 0.0, 3.0, 3.5, 1.0]])
    soft = torch.rand(2, 1, 4, 3) * 0.5
    soft = torch.cat([soft, soft + 1.0], dim=-1).requires_grad_(True)
    args = (span, torch.ones(1, 6, dtype=torch.bool), masks, torch.ones(1, 9, dtype=torch.bool), [target])
    out = SetCriterion(HungarianMatcher(), box_loss="soft")(*args, boxes=soft.detach(), soft_boxes=soft)
    assert {"loss_bbox_0", "loss_giou_1"} <= set(out)
    out["loss"].backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0
    out = SetCriterion(HungarianMatcher(), box_loss="match_only")(*args, boxes=soft.detach(), soft_boxes=soft)
    assert not any(k.startswith("loss_bbox") for k in out)


def _focal(logit: float, target: float, alpha: float = 0.25, gamma: float = 2.0) -> float:
    p = 1 / (1 + math.exp(-logit))
    p_t = p if target else 1 - p
    return -math.log(p_t) * (1 - p_t) ** gamma * (alpha if target else 1 - alpha)


def test_unit_span_loss_equals_hand_computation():
    """4 units (the last is padding), 3 tokens (the last is padding), 2 objects: unit 1 lies in both."""
    logits = torch.tensor([[[1.0, -2.0, 9.0], [0.5, 0.0, 9.0], [-1.0, 3.0, 9.0], [9.0, 9.0, 9.0]]])  # (1, S=4, T=3)
    positive = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # object 0 -> token 0, object 1 -> token 1
    masks = torch.tensor([[1.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]])
    text_valid = torch.tensor([[True, True, False]])
    unit_valid = torch.tensor([[True, True, True, False]])
    loss = unit_span_loss(logits, text_valid, unit_valid, [SampleTargets(positive, masks)])
    wanted = {(0, 0): 1, (0, 1): 0, (1, 0): 1, (1, 1): 1, (2, 0): 0, (2, 1): 0}
    expected = sum(_focal(float(logits[0, u, t]), w) for (u, t), w in wanted.items()) / 3  # 3 positive pairs
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # a second sample without objects adds nothing (its all-negative sum is not divided by a count of ~1)
    nothing = SampleTargets(torch.zeros(0, 3), torch.zeros(0, 4))
    both = unit_span_loss(torch.cat([logits, -logits]), text_valid.repeat(2, 1), unit_valid.repeat(2, 1),
                          [SampleTargets(positive, masks), nothing])  # fmt: skip
    assert both.item() == pytest.approx(expected, rel=1e-5)


def test_unit_span_logits_score_units_as_the_span_head_scores_queries():
    torch.manual_seed(0)
    heads = PredictionHeads(16, temperature=0.07)
    units, text = torch.randn(2, 5, 16), torch.randn(2, 3, 16)
    span, _, _ = heads(units, text, units)
    assert torch.allclose(heads.unit_span(units, text), span, atol=1e-5)


def test_unit_span_term_is_added_only_when_weighted():
    span, masks, target = _problem()
    dense = torch.randn(1, masks.shape[-1], span.shape[-1])
    text_valid = torch.ones(1, span.shape[-1], dtype=torch.bool)
    point_valid = torch.ones(1, masks.shape[-1], dtype=torch.bool)
    off = SetCriterion(HungarianMatcher())(span, text_valid, masks, point_valid, [target], unit_span_logits=dense)
    on = SetCriterion(HungarianMatcher(), LossWeights(unit_span=3.0))(
        span, text_valid, masks, point_valid, [target], unit_span_logits=dense
    )
    assert not any(k.startswith("loss_unit_span") for k in off)
    term = 3.0 * unit_span_loss(dense, text_valid, point_valid, [target])
    assert on["loss_unit_span_1"].item() == pytest.approx(term.item(), rel=1e-6)
    assert on["loss"].item() == pytest.approx(off["loss"].item() + term.item(), rel=1e-5)


def _softmax_nll(scores: list[float], positives: list[int]) -> float:
    total = sum(math.exp(v) for v in scores)
    return -math.log(sum(math.exp(scores[i]) for i in positives) / total)


def test_query_rank_loss_equals_hand_computation():
    """3 queries, 4 tokens (the last is padding); objects 0 and 1 share tokens {0, 1}, object 2 has token 2."""
    span = torch.tensor([[1.0, 2.0, 0.0, 9.0], [3.0, -1.0, 4.0, 9.0], [0.0, 0.0, 5.0, -9.0]])  # (Q=3, T=4)
    text_valid = torch.tensor([True, True, True, False])
    positive = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.5, 0.5, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]])
    queries, objects = torch.tensor([2, 0, 1]), torch.tensor([1, 2, 0])  # query 2 <-> object 1, ...
    loss = query_rank_loss(span, text_valid, positive, queries, objects)
    pair_scores = [1.5, 1.0, 0.0]  # mean logit of each query over tokens {0, 1}
    token2_scores = [0.0, 4.0, 5.0]  # padding token 3 is left out
    expected = (
        _softmax_nll(pair_scores, [2, 1])  # object 1: its query 2 and query 1 (matched to object 0, same tokens)
        + _softmax_nll(token2_scores, [0])  # object 2: query 0
        + _softmax_nll(pair_scores, [2, 1])  # object 0: query 1, and query 2 again
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)


def test_query_rank_loss_skips_objects_without_tokens():
    span = torch.randn(3, 2)
    positive = torch.tensor([[0.0, 1.0]])
    loss = query_rank_loss(span, torch.tensor([True, False]), positive, torch.tensor([1]), torch.tensor([0]))
    assert loss.item() == 0.0


def test_query_rank_term_is_added_only_when_weighted():
    span, masks, target = _problem()
    text_valid = torch.ones(1, span.shape[-1], dtype=torch.bool)
    point_valid = torch.ones(1, masks.shape[-1], dtype=torch.bool)
    matcher = HungarianMatcher()
    off = SetCriterion(matcher)(span, text_valid, masks, point_valid, [target])
    on = SetCriterion(matcher, LossWeights(query_rank=0.5))(span, text_valid, masks, point_valid, [target])
    assert not any(k.startswith("loss_query_rank") for k in off)
    for layer in range(span.shape[0]):
        queries, objects = matcher.match(span[layer, 0], masks[layer, 0], target, None)
        rank = query_rank_loss(span[layer, 0], text_valid[0], target.positive_map, queries, objects)
        term = 0.5 * rank / len(target.positive_map)  # normalised by the number of target objects
        assert on[f"loss_query_rank_{layer}"].item() == pytest.approx(term.item(), rel=1e-5)
    extra = sum(on[f"loss_query_rank_{layer}"].item() for layer in range(span.shape[0]))
    assert on["loss"].item() == pytest.approx(off["loss"].item() + extra, rel=1e-5)


def test_relation_anchor_loss_equals_hand_computation():
    """4 tokens (the last is padding): the target names token 0, the anchor tokens 0-2 (token 0 is the target's,
    so only 1 and 2 are the anchor's words); query 2 is matched to the anchor, query 0 to the target."""
    word_logits = torch.tensor([5.0, 1.0, 2.0, float("-inf")])
    anchor_logits = torch.tensor([3.0, 1.0, 0.0])
    text_valid = torch.tensor([True, True, True, False])
    positive = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3, 0.0]])
    queries, objects = torch.tensor([0, 2]), torch.tensor([0, 1])
    loss = relation_anchor_loss(word_logits, anchor_logits, text_valid, positive, queries, objects)
    expected = _softmax_nll([5.0, 1.0, 2.0], [1, 2]) + _softmax_nll([3.0, 1.0, 0.0], [2])
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    # Without a matched anchor query only the word part is left; without anchor words, only the query part.
    words_only = relation_anchor_loss(word_logits, anchor_logits, text_valid, positive, queries[:1], objects[:1])
    assert words_only.item() == pytest.approx(_softmax_nll([5.0, 1.0, 2.0], [1, 2]), rel=1e-6)
    no_words = torch.tensor([[1.0, 0.0, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    queries_only = relation_anchor_loss(word_logits, anchor_logits, text_valid, no_words, queries, objects)
    assert queries_only.item() == pytest.approx(_softmax_nll([3.0, 1.0, 0.0], [2]), rel=1e-6)


def test_relation_anchor_term_counts_only_anchored_referrals():
    """Two utterances with the same predictions: a referral (target, anchor) and a detection-style one whose second
    object is another target. Only the referral is supervised, and the term is divided by the referral count."""
    span, masks, target = _problem(layers=2, q=4, t=6)
    span, masks = span.expand(-1, 2, -1, -1), masks.expand(-1, 2, -1, -1)
    referral = SampleTargets(target.positive_map[:2], target.masks[:2], None, anchored=True)
    detection = SampleTargets(target.positive_map[:2], target.masks[:2], None, anchored=False)
    text_valid = torch.ones(2, span.shape[-1], dtype=torch.bool)
    point_valid = torch.ones(2, masks.shape[-1], dtype=torch.bool)
    generator = torch.Generator().manual_seed(1)
    word_logits = torch.randn(2, 2, span.shape[-1], generator=generator)
    anchor_logits = torch.randn(2, 2, span.shape[2], generator=generator)
    matcher = HungarianMatcher()
    args = (span, text_valid, masks, point_valid, [referral, detection])
    off = SetCriterion(matcher)(*args, anchor_word_logits=word_logits, anchor_logits=anchor_logits)
    on = SetCriterion(matcher, LossWeights(relation_anchor=2.0))(
        *args, anchor_word_logits=word_logits, anchor_logits=anchor_logits
    )
    assert not any(k.startswith("loss_relation_anchor") for k in off)
    for layer in range(span.shape[0]):
        queries, objects = matcher.match(span[layer, 0], masks[layer, 0], referral, None)
        expected = relation_anchor_loss(
            word_logits[layer, 0], anchor_logits[layer, 0], text_valid[0], referral.positive_map, queries, objects
        )
        assert expected.item() > 0
        assert on[f"loss_relation_anchor_{layer}"].item() == pytest.approx(2.0 * expected.item(), rel=1e-5)
    extra = sum(on[f"loss_relation_anchor_{layer}"].item() for layer in range(span.shape[0]))
    assert on["loss"].item() == pytest.approx(off["loss"].item() + extra, rel=1e-5)


def test_relation_labels_index_the_known_reference_types():
    infos = [{"relation": "between"}, {"relation": "closest"}, {"task": "detection"}, {"relation": "behind"}]
    assert relation_labels(infos, ["closest", "between"]).tolist() == [1, 0, IGNORE, IGNORE]


def test_relation_class_loss_equals_hand_computation():
    logits = torch.tensor([[2.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.0]])
    labels = torch.tensor([0, IGNORE, 1])
    expected = (_softmax_nll([2.0, 0.0, 1.0], [0]) + _softmax_nll([1.0, 3.0, 0.0], [1])) / 4.0
    assert relation_class_loss(logits, labels, 4.0).item() == pytest.approx(expected, rel=1e-6)
    assert relation_class_loss(logits, torch.full((3,), IGNORE), 1.0).item() == 0.0


def test_relation_class_term_is_added_per_prediction_and_divided_by_the_typed_utterances():
    span, masks, target = _problem(layers=2)
    text_valid = torch.ones(1, span.shape[-1], dtype=torch.bool)
    point_valid = torch.ones(1, masks.shape[-1], dtype=torch.bool)
    logits = torch.randn(2, 1, 3, generator=torch.Generator().manual_seed(2))
    labels = torch.tensor([2])
    args = (span, text_valid, masks, point_valid, [target])
    off = SetCriterion(HungarianMatcher())(*args, relation_logits=logits, relation_labels=labels)
    on = SetCriterion(HungarianMatcher(), LossWeights(relation_class=0.5))(
        *args, relation_logits=logits, relation_labels=labels
    )
    assert not any(k.startswith("loss_relation_class") for k in off)
    for layer in range(2):
        expected = 0.5 * _softmax_nll(logits[layer, 0].tolist(), [2])
        assert on[f"loss_relation_class_{layer}"].item() == pytest.approx(expected, rel=1e-5)
    extra = sum(on[f"loss_relation_class_{layer}"].item() for layer in range(2))
    assert on["loss"].item() == pytest.approx(off["loss"].item() + extra, rel=1e-5)


def _geometry_scene():
    """Six units on a line in a room (the last one padding): the target covers units 0-1, a distractor 3-4 and the
    anchor unit 2; each hand-computed below with numpy from the definitions."""
    xyz = torch.tensor(
        [[0.0, 0.0, 0.0], [1.0, 0.0, 0.0], [2.0, 0.0, 1.0], [4.0, 0.0, 0.0], [6.0, 0.0, 0.0], [50.0, 50.0, 50.0]]
    )
    valid = torch.tensor([True, True, True, True, True, False])
    masks = torch.tensor([[1.0, 1.0, 0, 0, 0, 1.0], [0, 0, 1.0, 0, 0, 0]])  # the padding unit must not count
    distractors = torch.tensor([[0, 0, 0, 1.0, 1.0, 0]])
    positive = torch.tensor([[0.5, 0.5, 0, 0, 0, 0], [0, 0, 0, 1.0, 0, 0]])
    return xyz, valid, SampleTargets(positive, masks, None, anchored=True, distractors=distractors)


def _hand_features(xyz, units, anchor_units, frame_units):
    points = np.asarray(xyz)[frame_units]
    centre = points.mean(0)
    spread = np.sqrt(((points - centre) ** 2).sum() / (3 * len(points)))

    def where(index):
        p = (np.asarray(xyz)[index] - centre) / spread
        c = p.mean(0)
        return c, np.log(max(np.sqrt(max((p**2).sum(1).mean() - (c**2).sum(), 1e-6)), 1e-3))

    c, e = where(units)
    if anchor_units is None:
        relative = np.zeros(8)
    else:
        a, ea = where(anchor_units)
        d = a - c
        relative = np.array([np.linalg.norm(d), np.linalg.norm(d[:2]), *d, np.exp(-np.linalg.norm(d)), ea - e, 1.0])
    return np.array([*relative, e, c[2]])


def test_candidate_features_equal_a_hand_computation_from_the_masks():
    xyz, valid, target = _geometry_scene()
    features = candidate_features(target, xyz, valid)
    frame = [0, 1, 2, 3, 4]
    expected = np.stack([_hand_features(xyz, [0, 1], [2], frame), _hand_features(xyz, [3, 4], [2], frame)])
    np.testing.assert_allclose(features.numpy(), expected, rtol=1e-5, atol=1e-6)
    # Without anchors ("the largest chair") only the unary features remain.
    alone = SampleTargets(target.positive_map[:1], target.masks[:1], anchored=True, distractors=target.distractors)
    expected_alone = np.stack([_hand_features(xyz, [0, 1], None, frame), _hand_features(xyz, [3, 4], None, frame)])
    np.testing.assert_allclose(candidate_features(alone, xyz, valid).numpy(), expected_alone, rtol=1e-5, atol=1e-6)


def test_candidate_features_need_a_referral_with_a_distractor():
    xyz, valid, target = _geometry_scene()
    no_distractor = SampleTargets(target.positive_map, target.masks, None, anchored=True, distractors=torch.zeros(0, 6))
    not_a_referral = SampleTargets(target.positive_map, target.masks, None, distractors=target.distractors)
    empty = SampleTargets(target.positive_map, target.masks, None, anchored=True, distractors=torch.zeros(1, 6))
    for targets in (no_distractor, not_a_referral, empty):
        assert candidate_features(targets, xyz, valid) is None


def test_relation_geometry_loss_is_the_targets_softmax_nll():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]])
    weights = torch.tensor([-1.0, 0.5])
    scores = [-1.0, 0.5, -1.0]
    assert relation_geometry_loss(weights, features).item() == pytest.approx(_softmax_nll(scores, [0]), rel=1e-6)


def test_relation_geometry_term_favours_the_weights_that_pick_the_target():
    """ "Closest to the anchor": the target (units 0-1) is nearer the anchor than the distractor (units 3-4), so
    weights on -distance give a lower loss than weights on +distance; the term is divided by the compared
    referrals (one here, the detection-style utterance has no distractors) and carries a gradient to the weights."""
    xyz, valid, referral = _geometry_scene()
    detection = SampleTargets(referral.positive_map, referral.masks, None)
    span, masks, _ = _problem(layers=2, q=4, t=6, p=6)
    span, masks = span.expand(-1, 2, -1, -1), masks.expand(-1, 2, -1, -1)
    text_valid = torch.ones(2, 6, dtype=torch.bool)
    closer = torch.zeros(2, 2, 10)
    closer[..., 0] = -1.0
    weights = torch.stack([closer[0], -closer[1]]).requires_grad_()
    criterion = SetCriterion(HungarianMatcher(), LossWeights(relation_geometry=0.5))
    losses = criterion(
        span, text_valid, masks, valid.expand(2, -1), [referral, detection], geometry_weights=weights,
        unit_xyz=xyz.expand(2, -1, -1),
    )  # fmt: skip
    features = candidate_features(referral, xyz, valid)
    for layer in range(2):
        expected = 0.5 * relation_geometry_loss(weights[layer, 0].detach(), features).item()
        assert losses[f"loss_relation_geometry_{layer}"].item() == pytest.approx(expected, rel=1e-5)
    assert losses["loss_relation_geometry_0"].item() < losses["loss_relation_geometry_1"].item()
    losses["loss"].backward()
    assert weights.grad[:, 0].abs().sum() > 0 and weights.grad[:, 1].abs().sum() == 0
