"""What the model returns: :class:`Predictions` (per decoder layer) and :class:`VisualFeatures` (the encoded
scenes/images that many utterances can share).

Masks are predicted over *units*: the output voxels (``output.voxel_size``), or their over-segments when the
batch has segment ids, or the patches on the plain-2D path. ``point_to_unit`` maps every output point to its
unit, so ``mask_logits[..., point_to_unit]`` gives per-point logits (see :meth:`Predictions.point_logits`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

from univlg.geometry import scatter_mean


@dataclass
class VisualFeatures:
    """Encoded visual samples (B of them).

    features: (B, S, C) unit features; pos: (B, S, C) their position encoding; valid: (B, S) bool;
    xyz: (B, S, 3) unit centroids (metres; pixel (u, v, 0) on the plain-2D path);
    point_to_unit, point_to_voxel: (B, P) long, -1 for padding/invalid points; voxel_to_unit: (B, K) long and
    voxel_valid: (B, K) bool over the output voxels.
    """

    features: torch.Tensor
    pos: torch.Tensor
    valid: torch.Tensor
    xyz: torch.Tensor
    point_to_unit: torch.Tensor
    point_to_voxel: torch.Tensor
    voxel_to_unit: torch.Tensor
    voxel_valid: torch.Tensor

    def select(self, index: torch.Tensor | None) -> VisualFeatures:
        """The samples at ``index`` (B',) long (repeats allowed); None keeps all."""
        if index is None:
            return self
        if self.features.shape[0] == 1:  # one scene for every utterance: broadcast, no copy
            n = index.shape[0]
            return replace(
                self,
                **{f.name: getattr(self, f.name).expand(n, *getattr(self, f.name).shape[1:]) for f in fields(self)},
            )
        return replace(self, **{f.name: getattr(self, f.name)[index] for f in fields(self)})


@dataclass
class Predictions:
    """Model outputs for B utterances, L = decoder layers + 1 predictions (index 0 = the initial queries).

    span_logits: (L, B, Q, T) cosine / temperature between queries and text tokens (padding tokens: see
        ``text_valid``); mask_logits: (L, B, Q, S) over units (padding units: see ``unit_valid``);
    boxes: (L, B, Q, 6) hard (xmin, ymin, zmin, xmax, ymax, zmax) of the units with logit > 0, NaN when empty;
    soft_boxes: (L, B, Q, 6) differentiable boxes of sigmoid(mask_logits) (``geometry.soft_boxes_from_masks``);
        both None when the forward was asked for no boxes;
    queries: (L, B, Q, C) layer-normed query features (input of a generation head);
    unit_span_logits: (B, S, T) the span head applied to the final unit features (auxiliary training signal), or
        None when the forward was not asked for it;
    text_valid: (B, T) bool; unit_valid: (B, S) bool; unit_xyz: (B, S, 3);
    point_to_unit, point_to_voxel: (B, P) long (-1 = padding/invalid point); voxel_to_unit: (B, K) long and
    voxel_valid: (B, K) bool (for targets computed per voxel, then per unit, as the paper does);
    answer_logits: (B, A, V) teacher-forced answer-token logits of the generation head, when the batch carried
        answer labels and the model has the head, else None;
    anchor_word_logits: (L, B, T) and anchor_logits: (L, B, Q): which words and queries the relation head takes
        for the sentence's anchors (:class:`~univlg.model.relation_head.RelationScores`), None without the head;
    geometry_weights: (L, B, F): the head's weights of its geometry features per sentence, None without the head;
    relation_logits: (L, B, K) its reference-type logits over ``decoder.relation_classes``, None without them.
    """

    span_logits: torch.Tensor
    mask_logits: torch.Tensor
    boxes: torch.Tensor | None
    soft_boxes: torch.Tensor | None
    queries: torch.Tensor
    unit_span_logits: torch.Tensor | None
    text_valid: torch.Tensor
    unit_valid: torch.Tensor
    unit_xyz: torch.Tensor
    point_to_unit: torch.Tensor
    point_to_voxel: torch.Tensor
    voxel_to_unit: torch.Tensor
    voxel_valid: torch.Tensor
    answer_logits: torch.Tensor | None = None
    anchor_word_logits: torch.Tensor | None = None
    anchor_logits: torch.Tensor | None = None
    geometry_weights: torch.Tensor | None = None
    relation_logits: torch.Tensor | None = None

    def point_logits(self, layer: int = -1) -> torch.Tensor:
        """(B, Q, P) mask logits of every output point (unit logit; -inf at padding/invalid points)."""
        logits = self.mask_logits[layer]
        index = self.point_to_unit.clamp_min(0)[:, None, :].expand(-1, logits.shape[1], -1)
        out = logits.gather(2, index)
        return out.masked_fill((self.point_to_unit < 0)[:, None, :], float("-inf"))


def unit_targets(
    point_masks: torch.Tensor,
    point_to_voxel: torch.Tensor,
    voxel_to_unit: torch.Tensor,
    num_units: int,
    threshold: float = 0.5,
) -> torch.Tensor:
    """Per-unit binary targets from per-point masks, as the paper does (reference 3.1): the fraction of each
    voxel's points inside the mask, then the unweighted mean of those fractions over the unit's voxels, > 0.5.

    Args:
        point_masks: (G, P) bool/float masks over one sample's output points; point_to_voxel: (P,) long (-1 =
        padding); voxel_to_unit: (K,) long (-1 = padding); num_units: S.

    Returns:
        (G, S) float in {0, 1}; units without any point are 0.
    """
    keep = point_to_voxel >= 0
    voxel_of_point = point_to_voxel[keep]
    k = voxel_to_unit.shape[0]
    fraction = scatter_mean(point_masks[:, keep].float().T, voxel_of_point, k)  # (K, G)
    voxel_ok = voxel_to_unit >= 0
    per_unit = scatter_mean(fraction[voxel_ok], voxel_to_unit[voxel_ok], num_units)  # (S, G)
    return (per_unit > threshold).float().T
