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

The head also returns the logits behind ``beta`` and ``a`` so that training can supervise them directly
(``loss.relation_anchor``, :func:`univlg.train.losses.relation_anchor_loss`): left to the grounding loss alone, a
few thousand samples do not teach the head which words and queries are the anchors (docs/training.md). With
``num_classes`` > 0 a linear classifier names the sentence's reference type from the pooled relation words
(``loss.relation_class``): the geometry weights ``g`` can only differ between "closest" and "farthest" if that
pooled vector does, and the grounding loss alone leaves it the same for every relation. Each type k also has its
own geometry weights ``G_k`` (zero-initialised), added to ``g`` by the classifier's probabilities::

    g = W (sum_t gamma_t token_t) + sum_k softmax(c)_k G_k

so the grounding loss of "closest" sentences trains "closest"'s weights, not a map shared with "farthest".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from univlg.model.spatial_attention import NUM_PAIR_FEATURES, pair_features

NUM_UNARY_FEATURES = 2
NUM_GEOMETRY_FEATURES = NUM_PAIR_FEATURES + NUM_UNARY_FEATURES


def geometry_features(relative: torch.Tensor, centroids: torch.Tensor, log_extent: torch.Tensor) -> torch.Tensor:
    """The features ``g`` weighs: relative (..., NUM_PAIR_FEATURES) pair features seen from each query, averaged
    over its anchors; centroids (..., 3) and log_extent (...) in the sample frame -> (..., NUM_GEOMETRY_FEATURES)
    [relative; log extent; height]."""
    return torch.cat([relative, log_extent[..., None], centroids[..., 2:3]], dim=-1)


def anchored_geometry_features(centroids: torch.Tensor, log_extent: torch.Tensor, num_candidates: int) -> torch.Tensor:
    """:func:`geometry_features` of known objects: centroids (N, 3) and log_extent (N,) of ``num_candidates``
    candidates followed by their anchors (none or more), in one frame -> (num_candidates, NUM_GEOMETRY_FEATURES),
    each candidate seen from the mean of its pair features to the anchors (zeros without anchors)."""
    c = num_candidates
    if len(centroids) > c:
        relative = pair_features(centroids[None], log_extent[None])[0, :c, c:].mean(1)
    else:
        relative = centroids.new_zeros(c, NUM_PAIR_FEATURES)
    return geometry_features(relative, centroids[:c], log_extent[:c])


def relation_features(
    anchor_weights: torch.Tensor, pairs: torch.Tensor, centroids: torch.Tensor, log_extent: torch.Tensor
) -> torch.Tensor:
    """:func:`geometry_features` of every query seen from weighted anchors: anchor_weights (B, Q) (rows summing to
    1), pairs (B, Q, Q, NUM_PAIR_FEATURES) of the queries' centroids (B, Q, 3) and log_extent (B, Q) ->
    (B, Q, NUM_GEOMETRY_FEATURES)."""
    relative = torch.einsum("bj,bijf->bif", anchor_weights, pairs)
    return geometry_features(relative, centroids, log_extent)


def word_logits(scorer: nn.Linear, text: torch.Tensor, text_valid: torch.Tensor) -> torch.Tensor:
    """``scorer(token)`` with -inf at padding: text (B, T, C), text_valid (B, T) bool -> (B, T)."""
    return scorer(text).squeeze(-1).masked_fill(~text_valid, float("-inf"))


def word_weights(logits: torch.Tensor) -> torch.Tensor:
    """Softmax of :func:`word_logits` (B, T) over the valid tokens; a sample without valid tokens gets zeros."""
    return torch.nan_to_num(logits.softmax(-1))


@dataclass
class RelationScores:
    """What the head computes for one prediction: ``score`` (B, Q), added to every span logit of a query;
    ``anchor_word_logits`` (B, T), -inf at padding, and ``anchor_logits`` (B, Q): the softmax inputs of the
    anchor words ``beta`` and the anchor weights ``a``; ``geometry_weights`` (B, F): the sentence's weights of
    the F = NUM_GEOMETRY_FEATURES features (``g``); ``relation_logits`` (B, K): the reference-type classifier's,
    None without one."""

    score: torch.Tensor
    anchor_word_logits: torch.Tensor
    anchor_logits: torch.Tensor
    geometry_weights: torch.Tensor
    relation_logits: torch.Tensor | None = None


class RelationHead(nn.Module):
    """See the module docstring: ``anchor_words`` (w_a), ``relation_words`` (w_r), ``weights`` (g) and, with
    ``num_classes`` > 0, ``classifier`` (pooled relation words -> reference-type logits) and ``class_weights``
    (G, one row of geometry weights per type)."""

    def __init__(self, dim: int, num_classes: int = 0):
        super().__init__()
        self.anchor_words = nn.Linear(dim, 1)
        self.relation_words = nn.Linear(dim, 1)
        self.weights = nn.Linear(dim, NUM_GEOMETRY_FEATURES)
        for layer in (self.anchor_words, self.relation_words, self.weights):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)
        self.classifier = nn.Linear(dim, num_classes) if num_classes > 0 else None
        self.class_weights = nn.Parameter(torch.zeros(num_classes, NUM_GEOMETRY_FEATURES)) if num_classes > 0 else None

    def anchor_logits(
        self, span_logits: torch.Tensor, text: torch.Tensor, text_valid: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """span_logits: (B, Q, T); text: (B, T, C); text_valid: (B, T) bool -> the anchor-word logits (B, T) and
        the queries' anchor logits (B, Q) (their softmax over queries: the weights ``a``)."""
        words = word_logits(self.anchor_words, text, text_valid)
        return words, torch.einsum("bt,bqt->bq", word_weights(words), span_logits.detach())

    def forward(
        self,
        span_logits: torch.Tensor,
        text: torch.Tensor,
        text_valid: torch.Tensor,
        pairs: torch.Tensor,
        centroids: torch.Tensor,
        log_extent: torch.Tensor,
    ) -> RelationScores:
        """span_logits: (B, Q, T) of the prediction; text: (B, T, C); text_valid: (B, T) bool; pairs
        (B, Q, Q, NUM_PAIR_FEATURES) from :func:`~univlg.model.spatial_attention.pair_features` of ``centroids``
        (B, Q, 3) and ``log_extent`` (B, Q), in the sample frame -> the scores and the anchor logits."""
        words, anchor_logits = self.anchor_logits(span_logits, text, text_valid)
        features = relation_features(anchor_logits.softmax(-1), pairs, centroids, log_extent)  # (B, Q, F)
        gamma = word_weights(word_logits(self.relation_words, text, text_valid))
        sentence = torch.einsum("bt,btc->bc", gamma, text)
        weights = self.weights(sentence)
        classes = None
        if self.classifier is not None:
            classes = self.classifier(sentence)
            weights = weights + classes.softmax(-1) @ self.class_weights
        score = (features * weights[:, None, :]).sum(-1)
        return RelationScores(score, words, anchor_logits, weights, classes)
