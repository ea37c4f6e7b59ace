"""The set criterion (UniVLG reference 3.3-3.4): span focal loss, mask BCE + dice, box L1 + GIoU.

Every decoder layer's predictions are matched afresh by the injected :class:`HungarianMatcher` and supervised
with the same weights (deep supervision). Mask and box losses are divided by the number of ground-truth objects
and the span loss by the number of positive tokens, both averaged over processes when training is distributed.
:func:`answer_loss` is the generation head's token cross-entropy (reference 3.3 / 4), added by the trainer.

``unit_span`` (off by default; not in the paper) adds a dense term: the span head applied to every final unit
feature (``Predictions.unit_span_logits``) is trained with the same focal loss to name the tokens of the object
the unit belongs to (no token for units outside every target), divided by the number of positive
(unit, token) pairs; samples without a target unit are left out of this term. The queries' span loss supervises
about one query per object; this one supervises every unit.

``query_rank`` (off by default; not in the paper) trains the decision grounding makes: for every matched object,
a softmax over all queries of their mean span logit over the object's tokens, with the matched query (and the
queries matched to objects with the same tokens, e.g. every chair of a detection prompt) as the positives. The
focal span loss scores each (query, token) pair on its own; this term makes the right query outscore the others
(token-to-object contrast, as in BUTD-DETR). Divided by the number of objects, as the mask losses.

``relation_anchor`` (off by default; not in the paper) supervises the relation head
(:mod:`univlg.model.relation_head`) of every prediction on referrals whose anchors are annotated: its anchor-word
softmax should fall on the anchors' tokens and its anchor weights on the queries matched to the anchors
(:func:`relation_anchor_loss`). Divided by the number of such referrals. ``relation_class`` (also off by default)
trains the head's reference-type classifier (``decoder.relation_classes``) with the cross-entropy of each
referral's type (:func:`relation_class_loss`), on every prediction.

``relation_geometry`` (off by default; not in the paper) teaches the relation head's geometry weights what each
sentence's relation means, on clean geometry: the head's weights for the sentence score the referral's true
candidates (the target and the other visible objects of its class) from their ground-truth masks, seen from the
true anchors, and the target should win a softmax over them (:func:`relation_geometry_loss`, on every
prediction, divided by the number of such referrals). Through the grounding loss alone the weights learn from
whatever the predicted masks and anchor weights happen to be, and a few thousand referrals left them the same for
"closest" and "farthest" (docs/training.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from univlg.geometry.boxes import box_corners_to_center, generalized_box_iou_3d
from univlg.model.anchors import sample_frame
from univlg.model.answer_head import IGNORE
from univlg.model.relation_head import anchored_geometry_features
from univlg.model.spatial_attention import mask_geometry
from univlg.train.config import LossConfig
from univlg.train.matcher import HungarianMatcher
from univlg.train.targets import SampleTargets

BOX_LOSS_MODES = ("soft", "match_only")


@dataclass
class LossWeights:
    """Weights of the loss terms; the defaults are :class:`~univlg.train.config.LossConfig`'s (reference 3.3)."""

    span: float = LossConfig.span
    mask: float = LossConfig.mask
    dice: float = LossConfig.dice
    bbox: float = LossConfig.bbox
    giou: float = LossConfig.giou
    unit_span: float = LossConfig.unit_span
    query_rank: float = LossConfig.query_rank
    relation_anchor: float = LossConfig.relation_anchor
    relation_class: float = LossConfig.relation_class
    relation_geometry: float = LossConfig.relation_geometry
    answer: float = LossConfig.answer


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """Element-wise sigmoid focal loss (same shape as ``logits``), targets in {0, 1}."""
    probs = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probs * targets + (1 - probs) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return loss


def dice_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(N, P) logits and {0,1} targets -> (N,) dice loss with +1 smoothing."""
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return 1 - (numerator + 1) / (denominator + 1)


def _global_mean_count(count: float, device: torch.device) -> float:
    """``count`` summed over processes and divided by their number, at least 1."""
    value = torch.tensor([float(count)], device=device)
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(value)
        value = value / dist.get_world_size()
    return max(float(value.item()), 1.0)


def unit_span_loss(
    unit_span_logits: torch.Tensor,
    text_valid: torch.Tensor,
    unit_valid: torch.Tensor,
    targets: list[SampleTargets],
) -> torch.Tensor:
    """Focal loss of every valid unit's span logits against the tokens of the target object it lies in.

    unit_span_logits: (B, S, T); text_valid: (B, T) bool; unit_valid: (B, S) bool; targets: B samples with masks
    (G, S). A unit inside several targets takes all their tokens. Summed over valid (unit, token) pairs of the
    samples that have a target unit and divided by the number of positive pairs (averaged over processes, at
    least 1); samples without one add nothing.
    """
    total = unit_span_logits.sum() * 0.0
    positives = 0.0
    for b, target in enumerate(targets):
        tokens = (target.positive_map > 0).float()  # (G, T)
        unit_tokens = (target.masks.float().T @ tokens).clamp_max(1.0)  # (S, T)
        rows = unit_valid[b]
        logits = unit_span_logits[b][rows][:, text_valid[b]].float()
        wanted = unit_tokens[rows][:, text_valid[b]]
        if not bool(wanted.any()):
            continue  # no object here: all-negative sums would be divided by a count of ~1
        total = total + sigmoid_focal_loss(logits, wanted).sum()
        positives += float(wanted.sum())
    return total / _global_mean_count(positives, unit_span_logits.device)


def query_rank_loss(
    span_logits: torch.Tensor,
    text_valid: torch.Tensor,
    positive_map: torch.Tensor,
    queries: torch.Tensor,
    objects: torch.Tensor,
) -> torch.Tensor:
    """Summed cross-entropy of ranking the queries for each matched object's tokens (one sample).

    span_logits: (Q, T); text_valid: (T,) bool; positive_map: (G, T); queries, objects: (M,) long matched pairs.
    An object's score for query q is the mean of q's span logits over the object's valid tokens; its positives
    are the queries matched to objects with the same token set. Objects without a valid token add nothing.
    """
    tokens = (positive_map[objects] > 0) & text_valid  # (M, T)
    has_tokens = tokens.any(-1)
    if not bool(has_tokens.any()):
        return span_logits.sum() * 0.0
    tokens, queries = tokens[has_tokens].float(), queries[has_tokens]
    scores = tokens @ span_logits.float().T / tokens.sum(-1, keepdim=True)  # (M, Q)
    same_tokens = (tokens[:, None, :] == tokens[None, :, :]).all(-1)  # (M, M)
    positive = torch.zeros_like(scores, dtype=torch.bool)
    positive[:, queries] = same_tokens
    return (scores.logsumexp(-1) - scores.masked_fill(~positive, float("-inf")).logsumexp(-1)).sum()


def relation_anchor_loss(
    anchor_word_logits: torch.Tensor,
    anchor_logits: torch.Tensor,
    text_valid: torch.Tensor,
    positive_map: torch.Tensor,
    queries: torch.Tensor,
    objects: torch.Tensor,
) -> torch.Tensor:
    """How far the relation head's anchor choices are from one referral's anchors (object 0 is the target, the
    others its anchors): -log of the anchor-word softmax mass on the anchors' valid tokens that are not the
    target's, plus -log of the anchor-weight mass on the queries matched to an anchor. A part without positives
    adds nothing.

    anchor_word_logits: (T,), -inf at padding; anchor_logits: (Q,); text_valid: (T,) bool; positive_map: (G, T);
    queries, objects: (M,) long matched pairs.
    """
    loss = anchor_logits.sum() * 0.0 + anchor_word_logits[text_valid].sum() * 0.0
    tokens = positive_map > 0
    anchor_tokens = tokens[1:].any(0) & ~tokens[0] & text_valid
    if bool(anchor_tokens.any()):
        words = anchor_word_logits.float()
        loss = loss + words.logsumexp(-1) - words[anchor_tokens].logsumexp(-1)
    anchor_queries = queries[objects > 0]
    if len(anchor_queries):
        scores = anchor_logits.float()
        loss = loss + scores.logsumexp(-1) - scores[anchor_queries].logsumexp(-1)
    return loss


def relation_class_loss(relation_logits: torch.Tensor, labels: torch.Tensor, count: float) -> torch.Tensor:
    """Summed cross-entropy of the reference-type logits (B, K) against labels (B,) long, :data:`IGNORE` where a
    row has no known type, divided by ``count``; 0 (with a graph) when no row is labelled."""
    if not bool((labels != IGNORE).any()):
        return relation_logits.sum() * 0.0
    return F.cross_entropy(relation_logits.float(), labels, ignore_index=IGNORE, reduction="sum") / count


def candidate_features(target: SampleTargets, unit_xyz: torch.Tensor, unit_valid: torch.Tensor) -> torch.Tensor | None:
    """The relation head's geometry features of one referral's candidates, from the ground truth.

    The candidates are the target (first) and its distractors (``target.distractors``), the anchors the objects
    after the target (with ``target.anchored``); each seen from the mean of its pair features to the anchors
    (zeros without anchors; :func:`univlg.model.relation_head.anchored_geometry_features`), in the frame of the
    sample's valid units, as the head computes them for the predicted masks. Empty masks
    (objects that cover no unit) are left out.

    unit_xyz: (U, 3); unit_valid: (U,) bool -> (C, NUM_GEOMETRY_FEATURES), the target's row first; None when the
    sample has no distractor (nothing to tell apart) or its target covers no unit.
    """
    if target.distractors is None or not target.anchored:
        return None
    keep = unit_valid.to(target.masks.dtype)
    masks, distractors = target.masks * keep, target.distractors * keep
    distractors = distractors[distractors.sum(-1) > 0]
    if not len(distractors) or masks[0].sum() == 0:
        return None
    candidates = torch.cat([masks[:1], distractors])
    anchors = masks[1:][masks[1:].sum(-1) > 0]
    centre, spread = sample_frame(unit_xyz[None], unit_valid[None])
    centroids, log_extent = mask_geometry(torch.cat([candidates, anchors])[None], unit_xyz[None], centre, spread)
    return anchored_geometry_features(centroids[0], log_extent[0], len(candidates))


def relation_geometry_loss(geometry_weights: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """-log softmax of the target (row 0) among the candidates scored ``features @ geometry_weights``.

    geometry_weights: (F,) the relation head's weights for the sentence; features: (C, F) from
    :func:`candidate_features`."""
    scores = features.float() @ geometry_weights.float()
    return scores.logsumexp(-1) - scores[0]


def answer_loss(answer_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the answer tokens: answer_logits (B, A, V), labels (B, A) long with
    :data:`~univlg.model.answer_head.IGNORE` padding; 0 (with a graph) when no row has an answer."""
    if not bool((labels != IGNORE).any()):
        return answer_logits.sum() * 0.0
    return F.cross_entropy(answer_logits.flatten(0, 1).float(), labels.flatten(), ignore_index=IGNORE)


class SetCriterion(nn.Module):
    """Matches every layer's queries to the targets and sums the weighted losses.

    box_loss: "soft" supervises the differentiable soft boxes (gradient reaches the masks) and matches with them;
    "match_only" uses the hard boxes in matching alone, as the released model does (their loss has no gradient).
    """

    def __init__(
        self,
        matcher: HungarianMatcher,
        weights: LossWeights | None = None,
        box_loss: str = "soft",
    ):
        super().__init__()
        if box_loss not in BOX_LOSS_MODES:
            raise ValueError(f"box_loss must be one of {BOX_LOSS_MODES}, got {box_loss!r}")
        self.matcher = matcher
        self.weights = weights or LossWeights()
        self.box_loss = box_loss

    def forward(
        self,
        span_logits: torch.Tensor,
        text_valid: torch.Tensor,
        mask_logits: torch.Tensor,
        point_valid: torch.Tensor,
        targets: list[SampleTargets],
        boxes: torch.Tensor | None = None,
        soft_boxes: torch.Tensor | None = None,
        unit_span_logits: torch.Tensor | None = None,
        answer_logits: torch.Tensor | None = None,
        answer_labels: torch.Tensor | None = None,
        anchor_word_logits: torch.Tensor | None = None,
        anchor_logits: torch.Tensor | None = None,
        relation_logits: torch.Tensor | None = None,
        relation_labels: torch.Tensor | None = None,
        geometry_weights: torch.Tensor | None = None,
        unit_xyz: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Weighted losses per layer (``loss_<term>_<layer>``) and their sum under ``loss``.

        span_logits: (L, B, Q, T); text_valid: (B, T) bool; mask_logits: (L, B, Q, P); point_valid: (B, P) bool;
        targets: B :class:`SampleTargets`; boxes / soft_boxes: (L, B, Q, 6) hard / differentiable corner boxes;
        unit_span_logits: (B, S, T), used when the ``unit_span`` weight is positive; answer_logits (B, A, V) with
        answer_labels (B, A): the generation head's term (both reported with the last layer);
        anchor_word_logits (L, B, T) and anchor_logits (L, B, Q): the relation head's, for the ``relation_anchor``
        term; relation_logits (L, B, K) with relation_labels (B,) long (:data:`IGNORE` = no known type): for the
        ``relation_class`` term; geometry_weights (L, B, F) with unit_xyz (B, P, 3) (the units' centroids): for the
        ``relation_geometry`` term (each left out when None or its weight is 0).
        """
        device = span_logits.device
        num_objects = _global_mean_count(sum(len(t) for t in targets), device)
        num_tokens = _global_mean_count(sum(float((t.positive_map > 0).sum()) for t in targets), device)
        use_boxes = self.box_loss == "soft" and soft_boxes is not None
        match_boxes = soft_boxes if use_boxes else boxes
        supervise_anchors = self.weights.relation_anchor > 0 and anchor_logits is not None
        num_referrals = _global_mean_count(sum(t.anchored and len(t) > 1 for t in targets), device)
        classify = self.weights.relation_class > 0 and relation_logits is not None and relation_labels is not None
        num_typed = _global_mean_count(int((relation_labels != IGNORE).sum()) if classify else 0, device)
        candidates: list[tuple[int, torch.Tensor]] = []
        compare = self.weights.relation_geometry > 0 and geometry_weights is not None and unit_xyz is not None
        if compare:
            features = (candidate_features(t, unit_xyz[b], point_valid[b]) for b, t in enumerate(targets))
            candidates = [(b, f) for b, f in enumerate(features) if f is not None]
        num_compared = _global_mean_count(len(candidates), device)
        losses: dict[str, torch.Tensor] = {}
        for layer in range(span_logits.shape[0]):
            layer_boxes = None if match_boxes is None else match_boxes[layer]
            terms = self._layer_losses(
                span_logits[layer],
                text_valid,
                mask_logits[layer],
                point_valid,
                targets,
                layer_boxes,
                soft_boxes[layer] if use_boxes else None,
                num_objects,
                num_tokens,
                (anchor_word_logits[layer], anchor_logits[layer], num_referrals) if supervise_anchors else None,
            )
            if classify:
                terms["relation_class"] = relation_class_loss(relation_logits[layer], relation_labels, num_typed)
            if compare:
                compared = [relation_geometry_loss(geometry_weights[layer, b], f) for b, f in candidates]
                terms["relation_geometry"] = sum(compared, geometry_weights[layer].sum() * 0.0) / num_compared
            for name, value in terms.items():
                losses[f"loss_{name}_{layer}"] = getattr(self.weights, name) * value
        if self.weights.unit_span > 0 and unit_span_logits is not None:
            dense = unit_span_loss(unit_span_logits, text_valid, point_valid, targets)
            losses[f"loss_unit_span_{span_logits.shape[0] - 1}"] = self.weights.unit_span * dense
        if answer_logits is not None and answer_labels is not None:
            answer = answer_loss(answer_logits, answer_labels)
            losses[f"loss_answer_{span_logits.shape[0] - 1}"] = self.weights.answer * answer
        losses["loss"] = torch.stack(list(losses.values())).sum()
        return losses

    def _layer_losses(
        self,
        span_logits: torch.Tensor,
        text_valid: torch.Tensor,
        mask_logits: torch.Tensor,
        point_valid: torch.Tensor,
        targets: list[SampleTargets],
        match_boxes: torch.Tensor | None,
        soft_boxes: torch.Tensor | None,
        num_objects: float,
        num_tokens: float,
        anchors: tuple[torch.Tensor, torch.Tensor, float] | None = None,
    ) -> dict[str, torch.Tensor]:
        """One prediction's terms; ``anchors``: its anchor-word logits (B, T), anchor logits (B, Q) and the
        referral count that divides the ``relation_anchor`` term, or None to leave the term out."""
        zero = span_logits.sum() * 0.0
        span_loss, mask_loss, dice, l1, giou, rank = zero, zero, zero, zero, zero, zero
        relation = zero if anchors is None else anchors[1].sum() * 0.0
        for b, target in enumerate(targets):
            valid = point_valid[b]
            logits_b = mask_logits[b][:, valid]
            target_masks = target.masks[:, valid].float()
            valid_target = SampleTargets(target.positive_map, target_masks, target.boxes)
            sample_boxes = None if match_boxes is None or target.boxes is None else match_boxes[b]
            queries, objects = self.matcher.match(span_logits[b], logits_b, valid_target, sample_boxes)
            span_target = torch.zeros_like(span_logits[b], dtype=torch.float32)
            span_target[queries] = (target.positive_map[objects] > 0).float()
            focal = sigmoid_focal_loss(span_logits[b].float(), span_target)
            span_loss = span_loss + focal[:, text_valid[b]].sum() / num_tokens
            if anchors is not None and target.anchored and len(target) > 1:
                word_logits, anchor_logits, num_referrals = anchors
                relation = (
                    relation
                    + relation_anchor_loss(
                        word_logits[b], anchor_logits[b], text_valid[b], target.positive_map, queries, objects
                    )
                    / num_referrals
                )
            if len(queries) == 0:
                continue
            if self.weights.query_rank > 0:
                rank = (
                    rank
                    + query_rank_loss(span_logits[b], text_valid[b], target.positive_map, queries, objects)
                    / num_objects
                )
            matched_logits = logits_b[queries].float()
            matched_masks = target_masks[objects]
            mask_loss = (
                mask_loss
                + F.binary_cross_entropy_with_logits(matched_logits, matched_masks, reduction="none").mean(-1).sum()
                / num_objects
            )
            dice = dice + dice_loss(matched_logits, matched_masks).sum() / num_objects
            if soft_boxes is not None and target.boxes is not None:
                pred, gt = soft_boxes[b][queries].float(), target.boxes[objects].float()
                l1 = (
                    l1
                    + F.l1_loss(box_corners_to_center(pred), box_corners_to_center(gt), reduction="sum") / num_objects
                )
                giou = giou + (1 - torch.diagonal(generalized_box_iou_3d(pred, gt))).sum() / num_objects
        terms = {"span": span_loss, "mask": mask_loss, "dice": dice}
        if self.weights.query_rank > 0:
            terms["query_rank"] = rank
        if anchors is not None:
            terms["relation_anchor"] = relation
        if soft_boxes is not None:
            terms.update(bbox=l1, giou=giou)
        return terms
