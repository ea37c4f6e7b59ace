"""Language-conditioned mask decoder (reference 1.9): learned queries concatenated with the text tokens.

Each of the ``num_layers`` post-norm layers runs, in this order:
1. masked cross-attention of [queries; text] to the units (keys = unit features + position encoding); a query
   sees only the units its previous mask predicted (logit > 0), all of them if that is empty; text rows see all;
2. self-attention over [queries; text] (padded text tokens are never keys);
3. FFN;
4. (``vis_lang_attn``) units cross-attend to [queries; text], then an FFN: the unit features are updated too;
then the heads predict span and mask logits from the current queries, text and units. The initial queries give
prediction 0, so L = num_layers + 1 predictions come out for deep supervision.
Position encodings: learned MLP of the absolute unit centroid on 3D/lifted batches, 2D sine on plain-2D ones;
``query_pos`` for queries and the learned ``text_pos`` table (by token index) for text.

With ``anchored_queries`` (an option of this library, :mod:`univlg.model.anchors`) the queries share one
learned content vector, take their position encoding from an anchor point placed by farthest point sampling
over the units and refined by every prediction, and their mask logits get a Gaussian prior around the anchor.
With ``spatial_attention`` (also this library's, :mod:`univlg.model.spatial_attention`) step 2 adds to the
query-to-query attention logits a sentence-weighted function of where the two queries' previous masks lie.
With ``relation_head`` (:mod:`univlg.model.relation_head`) every prediction's span logits of a query get a
sentence-weighted score of its mask's geometry relative to the queries the sentence names as anchors.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from univlg.config import MaskDecoderConfig
from univlg.model.anchors import QueryAnchors, gaussian_prior, sample_frame
from univlg.model.heads import PredictionHeads
from univlg.model.layers import (
    CrossAttentionBlock,
    FeedForwardBlock,
    LearnedPositionEncoding3D,
    SelfAttentionBlock,
    sine_position_encoding_2d,
)
from univlg.model.relation_head import RelationHead
from univlg.model.spatial_attention import SpatialAttentionBias, pair_features, query_geometry


class DecoderLayer(nn.Module):
    """One post-norm decoder layer (steps 1-4 of the module docstring)."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, vis_lang_attn: bool, spatial_attention: bool = False):
        super().__init__()
        self.cross_attn = CrossAttentionBlock(dim, num_heads)
        self.self_attn = SelfAttentionBlock(dim, num_heads)
        self.spatial_bias = SpatialAttentionBias(dim, num_heads) if spatial_attention else None
        self.ffn = FeedForwardBlock(dim, ffn_dim)
        self.unit_cross_attn = CrossAttentionBlock(dim, num_heads) if vis_lang_attn else None
        self.unit_ffn = FeedForwardBlock(dim, ffn_dim) if vis_lang_attn else None

    def forward(
        self,
        x: torch.Tensor,
        pos: torch.Tensor,
        token_valid: torch.Tensor,
        units: torch.Tensor,
        unit_pos: torch.Tensor,
        attend_units: torch.Tensor,
        pair_geometry: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x, pos: (B, Q + T, C); token_valid: (B, Q + T) bool; units, unit_pos: (B, S, C);
        attend_units: (B, Q + T, S) bool; pair_geometry: (B, Q, Q, F) query pair features, needed by the spatial
        bias. Returns the new x and units."""
        x = self.cross_attn(x, units, attend_units, query_pos=pos, memory_pos=unit_pos)
        bias = None
        if self.spatial_bias is not None:
            if pair_geometry is None:
                raise ValueError("the spatial attention bias needs the query pair geometry")
            q = pair_geometry.shape[1]
            query_bias = self.spatial_bias(x[:, q:], token_valid[:, q:], pair_geometry)  # (B, H, Q, Q)
            b, h, _, _ = query_bias.shape
            bias = query_bias.new_zeros(b, h, x.shape[1], x.shape[1])
            bias[:, :, :q, :q] = query_bias
        x = self.self_attn(x, token_valid[:, None, :], pos=pos, bias=bias)
        x = self.ffn(x)
        if self.unit_cross_attn is not None:
            units = self.unit_cross_attn(units, x, token_valid[:, None, :], query_pos=unit_pos, memory_pos=pos)
            units = self.unit_ffn(units)
        return x, units


@dataclass
class DecoderOutput:
    """Per prediction (L = layers + 1): span_logits (L, B, Q, T), mask_logits (L, B, Q, S), queries (L, B, Q, C)
    (the layer-normed query features); unit_span_logits (B, S, T): the span head on the final units, when asked
    for (training with ``loss.unit_span``), else None; anchor_word_logits (L, B, T), anchor_logits (L, B, Q),
    geometry_weights (L, B, F) and relation_logits (L, B, K): the relation head's
    (:class:`~univlg.model.relation_head.RelationScores`), None without the head (relation_logits: without its
    classifier)."""

    span_logits: torch.Tensor
    mask_logits: torch.Tensor
    queries: torch.Tensor
    unit_span_logits: torch.Tensor | None
    anchor_word_logits: torch.Tensor | None = None
    anchor_logits: torch.Tensor | None = None
    geometry_weights: torch.Tensor | None = None
    relation_logits: torch.Tensor | None = None


class MaskDecoder(nn.Module):
    """See the module docstring. ``max_text_len``: rows of the learned text position table."""

    def __init__(self, cfg: MaskDecoderConfig, max_text_len: int):
        super().__init__()
        d = cfg.dim
        self.num_queries = cfg.num_queries
        self.pos_3d = LearnedPositionEncoding3D(d)
        if cfg.anchored_queries:
            self.query_feat = nn.Embedding(1, d)
            self.anchors = QueryAnchors(d, cfg.anchor_sigma)
        else:
            self.query_feat = nn.Embedding(cfg.num_queries, d)
            self.query_pos = nn.Embedding(cfg.num_queries, d)
            self.anchors = None
        self.text_pos = nn.Embedding(max_text_len, d)
        self.layers = nn.ModuleList(
            DecoderLayer(d, cfg.num_heads, cfg.ffn_dim, cfg.vis_lang_attn, cfg.spatial_attention)
            for _ in range(cfg.num_layers)
        )
        self.spatial_attention = cfg.spatial_attention
        self.confident_geometry = cfg.confident_geometry
        self.relation_head = RelationHead(d, len(cfg.relation_classes)) if cfg.relation_head else None
        self.heads = PredictionHeads(d, cfg.temperature)

    def unit_position(self, xyz: torch.Tensor, pos2d: torch.Tensor | None) -> torch.Tensor:
        """Position encoding of the units: xyz (B, S, 3) metres, or pos2d (B, S, 2) in [0, 1] -> (B, S, C)."""
        if pos2d is not None:
            return sine_position_encoding_2d(pos2d, self.query_feat.embedding_dim)
        return self.pos_3d(xyz)

    def forward(
        self,
        units: torch.Tensor,
        unit_pos: torch.Tensor,
        unit_valid: torch.Tensor,
        text: torch.Tensor,
        text_valid: torch.Tensor,
        unit_xyz: torch.Tensor | None = None,
        with_unit_span: bool = False,
    ) -> DecoderOutput:
        """units: (B, S, C) unit features; unit_pos: (B, S, C); unit_valid: (B, S) bool;
        text: (B, T, C) projected text tokens; text_valid: (B, T) bool; unit_xyz: (B, S, 3) unit centroids
        (needed with anchored queries, the spatial bias and the relation head); with_unit_span: also score the
        final units against the text."""
        b, t = text_valid.shape
        q = self.num_queries
        if t > self.text_pos.num_embeddings:
            raise ValueError(f"{t} text tokens exceed the position table ({self.text_pos.num_embeddings})")
        # a sample without any valid unit attends to its (zero) padding instead of producing NaN
        visible = unit_valid | ~unit_valid.any(dim=1, keepdim=True)
        text_rows = visible[:, None, :].expand(b, t, -1)
        anchors = centre = spread = None
        uses_geometry = self.spatial_attention or self.relation_head is not None
        if (self.anchors is not None or uses_geometry) and unit_xyz is None:
            raise ValueError("anchored queries, the spatial bias and the relation head need the unit centroids")
        if self.anchors is not None:
            anchors, centre, spread = self.anchors.place(unit_xyz, unit_valid, q)
            query_pos = self.anchors.encode(anchors, centre, spread)
        else:
            query_pos = self.query_pos.weight.expand(b, -1, -1)
        if uses_geometry and centre is None:
            centre, spread = sample_frame(unit_xyz, unit_valid)
        x = torch.cat([self.query_feat.weight.expand(b, q, -1), text], dim=1)
        text_pos = self.text_pos.weight[:t].expand(b, -1, -1)
        token_valid = torch.cat([text_valid.new_ones(b, q), text_valid], dim=1)

        spans, masks, queries, anchor_words, anchor_queries, weights, relations = [], [], [], [], [], [], []
        pairs = None  # pair features of the latest prediction's masks, with uses_geometry

        def predict(x: torch.Tensor, units: torch.Tensor) -> torch.Tensor:
            nonlocal anchors, query_pos, pairs
            span, mask, normed = self.heads(x[:, :q], x[:, q:], units)
            if self.anchors is not None:
                refined, sigma = self.anchors.update(normed, anchors, spread)
                mask = mask + gaussian_prior(unit_xyz, refined, sigma)
                anchors = refined.detach()  # each layer refines from the previous anchors, without a gradient path
                query_pos = self.anchors.encode(anchors, centre, spread)
            if uses_geometry:
                geometry = query_geometry(mask.detach(), unit_xyz, visible, centre, spread, self.confident_geometry)
                pairs = pair_features(*geometry)
            if self.relation_head is not None:
                relation = self.relation_head(span, x[:, q:], text_valid, pairs, *geometry)
                span = span + relation.score[..., None]
                anchor_words.append(relation.anchor_word_logits)
                anchor_queries.append(relation.anchor_logits)
                weights.append(relation.geometry_weights)
                if relation.relation_logits is not None:
                    relations.append(relation.relation_logits)
            spans.append(span)
            masks.append(mask)
            queries.append(normed)
            return mask

        mask = predict(x, units)
        for layer in self.layers:
            query_rows = (mask.detach() > 0) & visible[:, None, :]
            query_rows = torch.where(query_rows.any(-1, keepdim=True), query_rows, visible[:, None, :])
            attend = torch.cat([query_rows, text_rows], dim=1)
            pos = torch.cat([query_pos, text_pos], dim=1)
            x, units = layer(x, pos, token_valid, units, unit_pos, attend, pairs)
            mask = predict(x, units)
        unit_spans = self.heads.unit_span(units, x[:, q:]) if with_unit_span else None
        return DecoderOutput(
            torch.stack(spans),
            torch.stack(masks),
            torch.stack(queries),
            unit_spans,
            torch.stack(anchor_words) if anchor_words else None,
            torch.stack(anchor_queries) if anchor_queries else None,
            torch.stack(weights) if weights else None,
            torch.stack(relations) if relations else None,
        )


def build_mask_decoder(cfg: MaskDecoderConfig, max_text_len: int) -> MaskDecoder:
    """The mask decoder with a text position table of ``max_text_len`` rows."""
    return MaskDecoder(cfg, max_text_len)
