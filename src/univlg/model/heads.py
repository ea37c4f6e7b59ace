"""Prediction heads of the mask decoder (reference 1.10): span logits over text tokens and mask logits over units.

Span logits are cosine similarities between ``class_embed`` of the normalised queries and the current (decoder-
updated) text features, divided by a temperature (0.07). Mask logits are dot products between ``mask_embed`` of
the normalised queries (a 3-layer MLP) and the current unit features. There is no "no object" class: a query
matches nothing when all its span logits are low.

``unit_span`` scores units against the text with the same ``norm`` and ``class_embed``, so units and queries
share one space: a training-time auxiliary loss (``loss.unit_span``) can tell every unit which words refer to its
object, and a query that gathers those units inherits the words.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from univlg.model.layers import MLP


class PredictionHeads(nn.Module):
    """``norm`` (LayerNorm of the queries), ``class_embed`` (Linear), ``mask_embed`` (3-layer MLP)."""

    def __init__(self, dim: int, temperature: float):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.class_embed = nn.Linear(dim, dim)
        self.mask_embed = MLP(dim, dim, dim, 3)
        self.temperature = temperature

    def forward(
        self, queries: torch.Tensor, text: torch.Tensor, units: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """queries: (B, Q, C); text: (B, T, C); units: (B, S, C).

        Returns:
            span_logits (B, Q, T), mask_logits (B, Q, S), normed queries (B, Q, C).
        """
        q = self.norm(queries)
        span = F.normalize(self.class_embed(q), dim=-1) @ F.normalize(text, dim=-1).transpose(1, 2)
        masks = self.mask_embed(q) @ units.transpose(1, 2)
        return span / self.temperature, masks, q

    def unit_span(self, units: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """units: (B, S, C); text: (B, T, C) -> (B, S, T) span logits of every unit (as a query's)."""
        u = F.normalize(self.class_embed(self.norm(units)), dim=-1)
        return u @ F.normalize(text, dim=-1).transpose(1, 2) / self.temperature
