"""Position-anchored queries for the mask decoder (an option of this library; the paper's queries are learned).

Each query carries an anchor point, placed at the start by farthest point sampling over the sample's unit
centroids and moved by every prediction (a predicted offset, iterative refinement as in Deformable DETR), and a
width sigma. Its mask logits get a Gaussian prior around the anchor::

    logit(q, u) = content(q, u) - |xyz_u - anchor_q|^2 / (2 sigma_q^2)     (clamped below at -MAX_PENALTY)

Offsets and widths are relative to the sample's spatial spread (RMS distance of its units from their mean, per
axis), so the same numbers serve rooms in metres and images in pixels. Why: with learned queries and features
that carry no position, two chairs get the same mask until the decoder has learned to tell them apart; the
prior makes every query's mask one place from the first step, so masks separate instances from the start.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from univlg.geometry import batched_farthest_point_sample
from univlg.model.layers import MLP

MAX_PENALTY = 30.0


def sample_frame(xyz: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Centre and spread of each sample's valid points.

    Args:
        xyz: (B, S, 3); valid: (B, S) bool.

    Returns:
        centre (B, 1, 3) mean of the valid points; spread (B, 1, 1) their RMS distance from it per axis
        (at least 1e-3; 1 for a sample without valid points).
    """
    weight = valid.to(xyz.dtype)[..., None]
    count = weight.sum(1, keepdim=True)
    centre = (xyz * weight).sum(1, keepdim=True) / count.clamp_min(1)
    var = (((xyz - centre) ** 2) * weight).sum((1, 2), keepdim=True) / (3 * count.clamp_min(1))
    spread = torch.where(count > 0, var.sqrt().clamp_min(1e-3), torch.ones_like(var))
    return centre, spread


def gaussian_prior(xyz: torch.Tensor, anchors: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """-|xyz_u - anchor_q|^2 / (2 sigma_q^2), clamped at -MAX_PENALTY.

    Args:
        xyz: (B, S, 3) unit centroids; anchors: (B, Q, 3); sigma: (B, Q, 1) > 0.

    Returns:
        (B, Q, S) logit offsets.
    """
    squared = ((anchors[:, :, None, :] - xyz[:, None, :, :]) ** 2).sum(-1)
    return (-0.5 * squared / sigma**2).clamp_min(-MAX_PENALTY)


class QueryAnchors(nn.Module):
    """Anchor placement, position encoding and refinement (see the module docstring).

    ``position``: MLP of the anchor in sample-normalised coordinates -> the query's position encoding (C);
    ``refine``: MLP of the normed query -> (3 offset, 1 log-width change), zero-initialised so the first
    prediction uses the sampled anchors and ``init_sigma`` (fraction of the spread).
    """

    def __init__(self, dim: int, init_sigma: float):
        super().__init__()
        if init_sigma <= 0:
            raise ValueError(f"init_sigma must be positive, got {init_sigma}")
        self.log_init_sigma = math.log(init_sigma)
        self.position = MLP(3, dim, dim, 2)
        self.refine = MLP(dim, dim, 4, 2)
        nn.init.zeros_(self.refine.layers[-1].weight)
        nn.init.zeros_(self.refine.layers[-1].bias)

    def place(self, xyz: torch.Tensor, valid: torch.Tensor, num_queries: int) -> tuple[torch.Tensor, ...]:
        """Initial anchors by farthest point sampling. xyz: (B, S, 3); valid: (B, S) bool.

        Returns:
            anchors (B, Q, 3); centre (B, 1, 3); spread (B, 1, 1) (see :func:`sample_frame`).
        """
        centre, spread = sample_frame(xyz, valid)
        index = batched_farthest_point_sample(xyz, valid, num_queries)
        anchors = xyz.detach().gather(1, index[..., None].expand(-1, -1, 3))
        return anchors, centre, spread

    def encode(self, anchors: torch.Tensor, centre: torch.Tensor, spread: torch.Tensor) -> torch.Tensor:
        """(B, Q, 3) anchors -> (B, Q, C) position encodings."""
        return self.position((anchors - centre) / spread)

    def update(
        self, queries: torch.Tensor, anchors: torch.Tensor, spread: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """queries: (B, Q, C) normed; anchors: (B, Q, 3) -> refined anchors (B, Q, 3) and widths (B, Q, 1)."""
        delta = self.refine(queries)
        anchors = anchors + delta[..., :3] * spread
        sigma = spread * torch.exp(self.log_init_sigma + delta[..., 3:].clamp(-4.0, 4.0))
        return anchors, sigma
