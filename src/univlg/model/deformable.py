"""Multi-scale deformable attention (Deformable DETR) in pure PyTorch, and its post-norm encoder layer.

Each query samples ``num_points`` locations per head and level around its reference point by bilinear
interpolation (``grid_sample``, align_corners=False, zeros outside) and averages them with softmax weights over
the levels x points of its head. Parameterisation (so released weights map 1:1): ``sampling_offsets`` outputs
(heads, levels, points, xy) flattened in that order, offsets in units of the level's width/height;
``attention_weights`` outputs (heads, levels * points).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class MSDeformAttn(nn.Module):
    """Multi-scale deformable attention with separate value/output projections."""

    def __init__(self, dim: int, num_levels: int, num_heads: int, num_points: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} not divisible by num_heads {num_heads}")
        self.num_levels, self.num_heads, self.num_points = num_levels, num_heads, num_points
        self.sampling_offsets = nn.Linear(dim, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(dim, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([angles.cos(), angles.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for linear in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(linear.weight)
            nn.init.zeros_(linear.bias)

    def forward(
        self,
        query: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """Args:
            query: (N, Lq, C); reference_points: (N or 1, Lq, 2) normalised (x, y) in [0, 1], shared by the levels;
            value: (N, sum_l h_l * w_l, C), levels flattened row-major in the order of ``spatial_shapes``.

        Returns:
            (N, Lq, C).
        """
        n, lq, c = query.shape
        h, lv, p = self.num_heads, self.num_levels, self.num_points
        d = c // h
        value = self.value_proj(value).view(n, -1, h, d)
        offsets = self.sampling_offsets(query).view(n, lq, h, lv, p, 2)
        weights = self.attention_weights(query).view(n, lq, h, lv * p).softmax(-1).view(n, lq, h, lv, p)
        normalizer = torch.tensor([[w, hh] for hh, w in spatial_shapes], dtype=query.dtype, device=query.device)
        locations = reference_points[:, :, None, None, None, :] + offsets / normalizer[None, None, None, :, None, :]
        grids = 2 * locations - 1  # (N, Lq, h, lv, p, 2) in grid_sample's [-1, 1]
        out = query.new_zeros(n * h, d, lq)
        start = 0
        for level, (hl, wl) in enumerate(spatial_shapes):
            v = value[:, start : start + hl * wl].permute(0, 2, 3, 1).reshape(n * h, d, hl, wl)
            start += hl * wl
            g = grids[:, :, :, level].transpose(1, 2).reshape(n * h, lq, p, 2)
            sampled = F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False)
            w = weights[:, :, :, level].transpose(1, 2).reshape(n * h, 1, lq, p)
            out = out + (sampled * w).sum(-1)
        out = out.view(n, h * d, lq).transpose(1, 2)
        return self.output_proj(out)


class DeformableEncoderLayer(nn.Module):
    """Post-norm encoder layer: x = LN(x + MSDeformAttn(x + pos)); x = LN(x + FFN(x)) (ReLU, no dropout)."""

    def __init__(self, dim: int, num_levels: int, num_heads: int, num_points: int, ffn_dim: int):
        super().__init__()
        self.attn = MSDeformAttn(dim, num_levels, num_heads, num_points)
        self.norm1 = nn.LayerNorm(dim)
        self.linear1 = nn.Linear(dim, ffn_dim)
        self.linear2 = nn.Linear(ffn_dim, dim)
        self.norm2 = nn.LayerNorm(dim)

    def forward(
        self,
        query: torch.Tensor,
        query_pos: torch.Tensor,
        reference_points: torch.Tensor,
        value: torch.Tensor,
        spatial_shapes: list[tuple[int, int]],
    ) -> torch.Tensor:
        """query: (N, Lq, C) (all tokens, or only some levels' tokens on the last layer); query_pos like query;
        reference_points: (N or 1, Lq, 2); value: (N, L, C) every level's tokens -> (N, Lq, C)."""
        x = self.norm1(query + self.attn(query + query_pos, reference_points, value, spatial_shapes))
        return self.norm2(x + self.linear2(F.relu(self.linear1(x))))


def reference_points(spatial_shapes: list[tuple[int, int]], device, dtype=torch.float32) -> torch.Tensor:
    """Normalised pixel centres of every level's grid, flattened in level order: (1, sum_l h_l * w_l, 2) (x, y)."""
    points = []
    for h, w in spatial_shapes:
        ys, xs = torch.meshgrid(
            (torch.arange(h, device=device, dtype=dtype) + 0.5) / h,
            (torch.arange(w, device=device, dtype=dtype) + 0.5) / w,
            indexing="ij",
        )
        points.append(torch.stack([xs.reshape(-1), ys.reshape(-1)], -1))
    return torch.cat(points)[None]
