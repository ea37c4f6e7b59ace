"""Cross-view 3D attention: every voxel attends to its k nearest voxels of the same sample (reference 1.6).

Pixel features are averaged into voxels (all views of a sample together, so information flows across views),
each voxel runs pre-norm cross-attention over its neighbours with a learned MLP encoding of the relative offset
(the query's own encoding is PE(0)), then a pre-norm FFN and a LayerNorm; pixels then take their voxel's output.
:class:`Backbone3D` uses it to modulate the image-encoder levels (reference 1.4), really applied when enabled.
"""

from __future__ import annotations

import torch
from torch import nn

from univlg.config import Backbone3DConfig, CrossViewConfig
from univlg.errors import ConfigError
from univlg.model.layers import CrossAttentionBlock, FeedForwardBlock, LearnedPositionEncoding3D
from univlg.model.lifting import PatchCloud, VoxelGrid


class CrossViewAttention(nn.Module):
    """``num_layers`` layers of kNN attention over voxels, sharing one neighbour search and one position MLP."""

    def __init__(self, dim: int, num_heads: int, ffn_dim: int, num_layers: int, knn: int):
        super().__init__()
        self.knn = knn
        self.pos = LearnedPositionEncoding3D(dim)
        self.attention = nn.ModuleList(CrossAttentionBlock(dim, num_heads, pre_norm=True) for _ in range(num_layers))
        self.ffn = nn.ModuleList(FeedForwardBlock(dim, ffn_dim, pre_norm=True) for _ in range(num_layers))
        self.out_norm = nn.ModuleList(nn.LayerNorm(dim) for _ in range(num_layers))

    def forward(self, features: torch.Tensor, grid: VoxelGrid) -> torch.Tensor:
        """features: (K, C) per voxel of ``grid`` -> (K, C)."""
        idx, valid = grid.knn(self.knn)
        offsets = grid.xyz[idx] - grid.xyz[:, None, :]  # (K, k, 3)
        key_pos = self.pos(offsets)
        query_pos = self.pos(grid.xyz.new_zeros(1, 3))
        x = features
        for attention, ffn, norm in zip(self.attention, self.ffn, self.out_norm, strict=True):
            # the voxel itself is always among its valid neighbours
            x = attention.forward_neighbours(x, idx, valid, query_pos, key_pos)
            x = norm(ffn(x))
        return x

    def contextualize(self, features: torch.Tensor, grid: VoxelGrid) -> torch.Tensor:
        """features: (M, C) per point of ``grid`` -> (M, C): mean per voxel, attention, back to the points."""
        return grid.unpool(self(grid.pool(features), grid))


def build_cross_view(cfg: CrossViewConfig, num_layers: int) -> CrossViewAttention:
    """``num_layers`` cross-view layers of the configured width, heads, FFN and k."""
    return CrossViewAttention(cfg.dim, cfg.num_heads, cfg.ffn_dim, num_layers, cfg.knn)


class Backbone3D(nn.Module):
    """3D blocks on the image-encoder levels: f <- f * (1 + scale) + shift with (scale, shift) from cross-view
    attention over f's voxels. ``up`` ends in a zero-initialised Linear, so a fresh block is the identity.

    Args:
        in_dim: image feature channels; layers_per_level: cross-view layers of each level (one entry per level).
    """

    def __init__(self, in_dim: int, layers_per_level: tuple[int, ...], cfg: CrossViewConfig):
        super().__init__()
        self.voxel_size = cfg.voxel_size
        self.down = nn.ModuleList(
            nn.Sequential(nn.Linear(in_dim, cfg.dim), nn.LayerNorm(cfg.dim)) for _ in layers_per_level
        )
        self.cross_view = nn.ModuleList(build_cross_view(cfg, n) for n in layers_per_level)
        self.up = nn.ModuleList(
            nn.Sequential(nn.SiLU(), nn.LayerNorm(cfg.dim), nn.Linear(cfg.dim, 2 * in_dim)) for _ in layers_per_level
        )
        for up in self.up:
            nn.init.zeros_(up[2].weight)
            nn.init.zeros_(up[2].bias)

    def forward(self, levels: list[torch.Tensor], cloud: PatchCloud) -> list[torch.Tensor]:
        """levels: per level (N, h, w, C) -> same shapes; invalid patches (no 3D point) are left unchanged."""
        grid = cloud.voxels(self.voxel_size)
        out = []
        for feat, down, cross_view, up in zip(levels, self.down, self.cross_view, self.up, strict=True):
            valid = cloud.gather(feat)
            scale, shift = up(cross_view.contextualize(down(valid), grid)).chunk(2, dim=-1)
            out.append(cloud.replace(feat, valid * (1 + scale) + shift))
        return out


def build_backbone_3d(cfg: Backbone3DConfig, in_dim: int, num_levels: int) -> Backbone3D | None:
    """The backbone 3D blocks, or None when ``cfg.layers_per_level`` is empty."""
    if not cfg.layers_per_level:
        return None
    if len(cfg.layers_per_level) != num_levels:
        raise ConfigError(
            f"backbone_3d.layers_per_level has {len(cfg.layers_per_level)} entries for {num_levels} image levels"
        )
    return Backbone3D(in_dim, cfg.layers_per_level, cfg.cross_view)
