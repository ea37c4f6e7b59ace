"""Sentence-conditioned spatial bias for the decoder's query self-attention (an option of this library).

The paper's queries relate to each other only through their features and absolute position encodings, so "the
chair closest to the lamp" has to be worked out from dot products of encodings of absolute positions. Here, as in
ViL3DRel's spatial self-attention, each layer adds to the attention logit of query i on query j, per head h::

    bias[h, i, j] = w_h(sentence) . phi(i, j)

where ``phi`` are pairwise geometric features of where the two queries' current masks lie (distance, horizontal
distance, the signed offset per axis, closeness, the log ratio of their extents, and a constant) and ``w_h`` is a
linear function of the mean of the layer's text tokens, so "closest", "farthest" and "above" can each weight
them their own way. The linear map starts at zero: a model trained without the bias gives the same outputs
until the bias learns.

Geometry comes from the previous prediction's mask probabilities (detached) over the unit centroids, in the
sample's own frame (centred, divided by its spatial spread; :func:`univlg.model.anchors.sample_frame`), so it
means the same in a room in metres and in an image in pixels.
"""

from __future__ import annotations

import torch
from torch import nn

NUM_PAIR_FEATURES = 8


def sentence_mean(text: torch.Tensor, text_valid: torch.Tensor) -> torch.Tensor:
    """text: (B, T, C); text_valid: (B, T) bool -> (B, C) mean of the valid tokens (zeros when there are none)."""
    keep = text_valid[..., None].to(text.dtype)
    return (text * keep).sum(1) / keep.sum(1).clamp_min(1)


def query_geometry(
    mask_logits: torch.Tensor,
    xyz: torch.Tensor,
    valid: torch.Tensor,
    centre: torch.Tensor,
    spread: torch.Tensor,
    confident_only: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each query's soft mask lies: :func:`mask_geometry` of the mask probabilities on the valid units.

    mask_logits: (B, Q, S); xyz: (B, S, 3) unit centroids; valid: (B, S) bool; centre (B, 1, 3) and spread
    (B, 1, 1) of the sample -> centroids (B, Q, 3), log_extent (B, Q). With ``confident_only`` a query's
    probabilities count only on the units its mask covers (probability above 0.5), so that the low-probability
    spill over the rest of the sample does not pull its centroid and widen its extent; a query that covers no unit
    keeps all its probabilities.
    """
    weight = mask_logits.sigmoid() * valid[:, None, :].to(mask_logits.dtype)
    if confident_only:
        covered = (mask_logits > 0) & valid[:, None, :]
        keep = covered | ~covered.any(-1, keepdim=True)
        weight = weight * keep.to(weight.dtype)
    return mask_geometry(weight, xyz, centre, spread)


def mask_geometry(
    weight: torch.Tensor, xyz: torch.Tensor, centre: torch.Tensor, spread: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each (soft or hard) mask lies.

    Args:
        weight: (B, Q, S) non-negative mass of each mask on each unit (0 on padding); xyz: (B, S, 3) unit
        centroids; centre (B, 1, 3) and spread (B, 1, 1) of the sample.

    Returns:
        centroids (B, Q, 3) of the mass in the sample frame; log_extent (B, Q) log of the RMS distance of the
        mass from its centroid (in spreads, at least 1e-3).
    """
    mass = weight.sum(-1, keepdim=True).clamp_min(1e-6)
    points = (xyz - centre) / spread  # (B, S, 3)
    centroids = weight @ points / mass
    second_moment = weight @ points.square().sum(-1, keepdim=True) / mass  # (B, Q, 1)
    variance = (second_moment - centroids.square().sum(-1, keepdim=True)).clamp_min(1e-6)
    return centroids, variance.squeeze(-1).sqrt().clamp_min(1e-3).log()


def pair_features(centroids: torch.Tensor, log_extent: torch.Tensor) -> torch.Tensor:
    """(B, Q, 3) centroids, (B, Q) log extents -> (B, Q, Q, NUM_PAIR_FEATURES) features of key j seen from query i:
    [distance, horizontal distance, dx, dy, dz, exp(-distance), log extent_j - log extent_i, 1]."""
    offset = centroids[:, None, :, :] - centroids[:, :, None, :]  # (B, Q_i, Q_j, 3): j - i
    distance = offset.norm(dim=-1)
    horizontal = offset[..., :2].norm(dim=-1)
    size_ratio = log_extent[:, None, :] - log_extent[:, :, None]
    ones = torch.ones_like(distance)
    scalars = torch.stack([distance, horizontal], dim=-1)
    tail = torch.stack([(-distance).exp(), size_ratio, ones], dim=-1)
    return torch.cat([scalars, offset, tail], dim=-1)


class SpatialAttentionBias(nn.Module):
    """Per-head weights of the pair features from the mean text token (zero-initialised Linear(C, H x F))."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.weights = nn.Linear(dim, num_heads * NUM_PAIR_FEATURES)
        nn.init.zeros_(self.weights.weight)
        nn.init.zeros_(self.weights.bias)

    def forward(self, text: torch.Tensor, text_valid: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """text: (B, T, C); text_valid: (B, T) bool; features: (B, Q, Q, F) -> bias (B, H, Q, Q)."""
        w = self.weights(sentence_mean(text, text_valid)).view(-1, self.num_heads, NUM_PAIR_FEATURES)
        return torch.einsum("bhf,bijf->bhij", w, features)
