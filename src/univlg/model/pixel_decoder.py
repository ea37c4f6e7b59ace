"""Pixel decoder (reference 1.5): deformable-attention encoder over the image levels, a 3D cross-view layer on
the finest decoder level, and the transfer of features onto the output voxels.

Levels: the image encoder returns [skip, l1, l2, l3] (e.g. DINOv2 blocks 5/11/17/23); the deformable encoder
runs on [l3, l2, l1] (deepest first, as released) and only the l1 output is used further, so its last layer
computes queries for that level alone. On the 3D path the l1 output goes through cross-view attention (voxels of
``cross_view.voxel_size``), is averaged into ``lift_voxel_size`` voxels and interpolated (inverse-distance kNN)
onto the output voxels; the skip level, projected without bias, is averaged into ``skip_voxel_size`` voxels and
interpolated likewise (the projection commutes with the averaging, so this equals projecting after). Then
``fuse`` = Linear + GroupNorm + ReLU of the sum and ``mask_features`` = Linear. GroupNorm statistics are per sample
over its output voxels. On the plain-2D path (no point maps) the same steps run per patch without 3D.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from univlg.config import PixelDecoderConfig
from univlg.model.cross_view import build_cross_view
from univlg.model.deformable import DeformableEncoderLayer, reference_points
from univlg.model.layers import SampleGroupNorm, sine_position_encoding_2d
from univlg.model.lifting import PatchCloud, VoxelGrid, idw_matrix, mean_pool


class InputProjection(nn.Module):
    """1x1 projection + GroupNorm of one image level (channels last)."""

    def __init__(self, in_dim: int, dim: int, groups: int):
        super().__init__()
        self.proj = nn.Linear(in_dim, dim)
        self.norm = nn.GroupNorm(groups, dim)
        nn.init.xavier_uniform_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, h, w, C_in) -> (N, h, w, C)."""
        return self.norm(self.proj(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)


class PixelDecoder(nn.Module):
    """See the module docstring. ``in_dim``: image feature channels; ``num_levels``: deformable levels (3)."""

    def __init__(self, in_dim: int, num_levels: int, cfg: PixelDecoderConfig):
        super().__init__()
        d = cfg.dim
        self.cfg = cfg
        self.input_proj = nn.ModuleList(InputProjection(in_dim, d, cfg.norm_groups) for _ in range(num_levels))
        self.level_embed = nn.Parameter(torch.randn(num_levels, d) * 0.02)
        self.encoder = nn.ModuleList(
            DeformableEncoderLayer(d, num_levels, cfg.num_heads, cfg.num_points, cfg.ffn_dim)
            for _ in range(cfg.encoder_layers)
        )
        self.cross_view = build_cross_view(cfg.cross_view, cfg.cross_view_layers) if cfg.cross_view_layers else None
        self.skip_proj = nn.Linear(in_dim, d, bias=False)
        self.skip_norm = SampleGroupNorm(cfg.norm_groups, d)
        self.fuse = nn.Linear(d, d)
        self.fuse_norm = SampleGroupNorm(cfg.norm_groups, d)
        self.mask_features = nn.Linear(d, d)
        for linear in (self.skip_proj, self.fuse, self.mask_features):
            nn.init.xavier_uniform_(linear.weight)
            if linear.bias is not None:
                nn.init.zeros_(linear.bias)

    def encode_2d(self, levels: list[torch.Tensor]) -> torch.Tensor:
        """Deformable encoder over the levels.

        Args:
            levels: the image levels after the skip level, shallow to deep: (N, h, w, C_in) each.

        Returns:
            (N, h1, w1, C): the encoder output at the shallowest of them (the one used further).
        """
        deep_first = levels[::-1]
        projected = [proj(x) for proj, x in zip(self.input_proj, deep_first, strict=True)]
        shapes = [(int(x.shape[1]), int(x.shape[2])) for x in projected]
        pos = []
        for level, (h, w) in enumerate(shapes):
            ys, xs = torch.meshgrid(
                torch.arange(1, h + 1, device=projected[0].device) / h,
                torch.arange(1, w + 1, device=projected[0].device) / w,
                indexing="ij",
            )
            xy = torch.stack([xs, ys], -1).reshape(-1, 2).to(projected[0].dtype)
            pos.append(sine_position_encoding_2d(xy, self.level_embed.shape[1]) + self.level_embed[level])
        pos = torch.cat(pos)[None]
        tokens = torch.cat([x.flatten(1, 2) for x in projected], dim=1)
        refs = reference_points(shapes, tokens.device, tokens.dtype)
        last = tokens.shape[1] - shapes[-1][0] * shapes[-1][1]
        for index, layer in enumerate(self.encoder):
            if index < len(self.encoder) - 1:
                tokens = layer(tokens, pos, refs, tokens, shapes)
            else:  # only the last level's queries are used downstream
                tokens = layer(tokens[:, last:], pos[:, last:], refs[:, last:], tokens, shapes)
        if not self.encoder:
            tokens = tokens[:, last:]
        h, w = shapes[-1]
        return tokens.reshape(tokens.shape[0], h, w, -1)

    def _head(self, x: torch.Tensor, skip: torch.Tensor, batch: torch.Tensor, num_samples: int) -> torch.Tensor:
        """fuse(x + GN(skip)) before ``mask_features`` (which is affine, so it is applied after unit pooling)."""
        skip = self.skip_norm(skip, batch, num_samples)
        return F.relu(self.fuse_norm(self.fuse(x + skip), batch, num_samples))

    def forward_3d(
        self,
        skip_level: torch.Tensor,
        decoded: torch.Tensor,
        cloud: PatchCloud,
        output: VoxelGrid,
        num_samples: int,
        unit_of_voxel: torch.Tensor | None = None,
        num_units: int = 0,
    ) -> torch.Tensor:
        """Mask features of the units.

        Args:
            skip_level: (N, h, w, C_in) the first image level; decoded: (N, h, w, C) from :meth:`encode_2d`.
            cloud: the valid patch points; output: the flat output voxels (xyz (K, 3), batch (K,)).
            unit_of_voxel: (K,) long unit of each output voxel and num_units U, or None when the units are the
            voxels themselves.

        Returns:
            (U, C) mask features per unit: the mean over its voxels (mean-pooling commutes with the final Linear),
            or (K, C) per voxel.
        """
        cur = cloud.gather(decoded)
        if self.cross_view is not None:
            cur = self.cross_view.contextualize(cur, cloud.voxels(self.cfg.cross_view.voxel_size))
        k = self.cfg.interp_knn
        lift = cloud.voxels(self.cfg.lift_voxel_size)
        cur = idw_matrix(output.xyz, output.batch, lift.xyz, lift.batch, k) @ lift.pool(cur)
        skip_grid = cloud.voxels(self.cfg.skip_voxel_size)
        skip = skip_grid.pool(self.skip_proj(cloud.gather(skip_level)))
        skip = idw_matrix(output.xyz, output.batch, skip_grid.xyz, skip_grid.batch, k) @ skip
        fused = self._head(cur, skip, output.batch, num_samples)
        if unit_of_voxel is not None:
            fused = mean_pool(fused, unit_of_voxel, num_units)
        return self.mask_features(fused)

    def forward_2d(
        self,
        skip_level: torch.Tensor,
        decoded: torch.Tensor,
        patch_valid: torch.Tensor,
        patch_batch: torch.Tensor,
        num_samples: int,
    ) -> torch.Tensor:
        """Features of the valid patches on the plain-2D path.

        Args:
            skip_level: (N, h, w, C_in); decoded: (N, h, w, C); patch_valid: (N, h, w) bool;
            patch_batch: (M,) long sample of each valid patch (row-major order of ``patch_valid``).

        Returns:
            (M, C) mask features per valid patch.
        """
        fused = self._head(decoded[patch_valid], self.skip_proj(skip_level[patch_valid]), patch_batch, num_samples)
        return self.mask_features(fused)


def build_pixel_decoder(cfg: PixelDecoderConfig, in_dim: int, num_levels: int) -> PixelDecoder:
    """The pixel decoder for ``in_dim``-channel image levels, ``num_levels`` of them after the skip level."""
    return PixelDecoder(in_dim, num_levels, cfg)
