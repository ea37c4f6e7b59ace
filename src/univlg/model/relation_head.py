"""Sentence-conditioned relation score added to every query's span logits (an option of this library).

Grounding picks, among the queries, the one whose span logits over the target's words are highest. When two
chairs match "chair" equally well, only a relation ("closest to the lamp") can tell them apart, and the paper's
model has to encode that relation in each query's features. This head scores it directly, from geometry::

    anchor words     beta_t = softmax_t(w_a . token_t)               (which words name the anchor)
    anchor weights   a_j    = softmax_j(sum_t beta_t span_j,t)       (the queries those words match)
    relation summary r_i    = sum_j a_j phi(i, j)                    (phi: univlg.model.spatial_attention)
    unary summary    u_i    = [log extent_i, height_i]
    score            rel_i  = g(sum_t gamma_t token_t) . [r_i; u_i]  (gamma_t = softmax_t(w_r . token_t))

and adds ``rel_i`` to all of query i's span logits. The anchors are found through the span logits (detached),
which already match anchor queries to anchor words (anchors are supervised with their words); the head learns
only which words are the anchor's (``beta``) and which carry the relation (``gamma``). ``g`` is a linear map,
zero-initialised (as the two word scorers): a model trained without the head gives the same outputs when it is
switched on. "closest" can weigh the distance to the anchors negatively, "farthest" positively, "largest" the
query's own extent, and the softmax over queries that grounding (and the query-ranking loss) performs compares
the candidates. Geometry comes from the detached mask probabilities
(:func:`univlg.model.spatial_attention.query_geometry`).
"""

from __future__ import annotations

import torch
from torch import nn

from univlg.model.spatial_attention import NUM_PAIR_FEATURES

NUM_UNARY_FEATURES = 2


def word_weights(scorer: nn.Linear, text: torch.Tensor, text_valid: torch.Tensor) -> torch.Tensor:
    """Softmax over the valid tokens of ``scorer(token)``: text (B, T, C), text_valid (B, T) bool -> (B, T)."""
    scores = scorer(text).squeeze(-1).masked_fill(~text_valid, float("-inf"))
    return torch.nan_to_num(scores.softmax(-1))  # a sample without valid tokens gets zeros, not NaN


class RelationHead(nn.Module):
    """See the module docstring: ``anchor_words`` (w_a), ``relation_words`` (w_r), ``weights`` (g)."""

    def __init__(self, dim: int):
        super().__init__()
        self.anchor_words = nn.Linear(dim, 1)
        self.relation_words = nn.Linear(dim, 1)
        self.weights = nn.Linear(dim, NUM_PAIR_FEATURES + NUM_UNARY_FEATURES)
        for layer in (self.anchor_words, self.relation_words, self.weights):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def anchor_weights(self, span_logits: torch.Tensor, text: torch.Tensor, text_valid: torch.Tensor) -> torch.Tensor:
        """span_logits: (B, Q, T); text: (B, T, C); text_valid: (B, T) bool -> (B, Q) weights of the queries as
        the sentence's anchors."""
        beta = word_weights(self.anchor_words, text, text_valid)
        return torch.einsum("bt,bqt->bq", beta, span_logits.detach()).softmax(-1)

    def forward(
        self,
        span_logits: torch.Tensor,
        text: torch.Tensor,
        text_valid: torch.Tensor,
        pairs: torch.Tensor,
        centroids: torch.Tensor,
        log_extent: torch.Tensor,
    ) -> torch.Tensor:
        """span_logits: (B, Q, T) of the prediction; text: (B, T, C); text_valid: (B, T) bool; pairs
        (B, Q, Q, NUM_PAIR_FEATURES) from :func:`~univlg.model.spatial_attention.pair_features` of ``centroids``
        (B, Q, 3) and ``log_extent`` (B, Q), in the sample frame -> (B, Q) relation scores."""
        anchors = self.anchor_weights(span_logits, text, text_valid)  # (B, Q_j)
        relative = torch.einsum("bj,bijf->bif", anchors, pairs)
        unary = torch.stack([log_extent, centroids[..., 2]], dim=-1)
        features = torch.cat([relative, unary], dim=-1)  # (B, Q, F)
        gamma = word_weights(self.relation_words, text, text_valid)
        sentence = torch.einsum("bt,btc->bc", gamma, text)
        return (features * self.weights(sentence)[:, None, :]).sum(-1)
