"""Building blocks shared by the model's modules: attention, residual attention/FFN blocks, position encodings.

Attention keeps separate q/k/v/out projections (the official checkpoint's packed ``in_proj_weight`` = [Wq; Wk; Wv]
splits into them, see :mod:`univlg.model.official`). Masks follow ``scaled_dot_product_attention``: a boolean
``attend`` mask is True where a query may look at a key.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def xavier_init_(module: nn.Module) -> None:
    """Xavier-uniform every weight matrix of ``module`` (dim > 1) and zero every Linear bias, as DETR does."""
    for sub in module.modules():
        if isinstance(sub, nn.Linear):
            nn.init.xavier_uniform_(sub.weight)
            if sub.bias is not None:
                nn.init.zeros_(sub.bias)


class MultiheadAttention(nn.Module):
    """Multi-head attention with separate q/k/v/out projections over batched sequences."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        xavier_init_(self)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        attend: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """query: (B, Lq, C); key, value: (B, Lk, C); attend: (B, Lq, Lk) or (B, 1, Lk) bool or None;
        bias: (B, H, Lq, Lk) float added to the attention logits, or None.

        Returns (B, Lq, C). Every query row of ``attend`` must allow at least one key.
        """
        b, lq, c = query.shape
        h = self.num_heads

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, x.shape[1], h, c // h).transpose(1, 2)

        q, k, v = heads(self.q_proj(query)), heads(self.k_proj(key)), heads(self.v_proj(value))
        mask = None if attend is None else attend.unsqueeze(1)
        if bias is not None:
            mask = bias if mask is None else bias.masked_fill(~mask, float("-inf"))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.out_proj(out.transpose(1, 2).reshape(b, lq, c))

    def forward_neighbours(
        self,
        query: torch.Tensor,
        source: torch.Tensor,
        idx: torch.Tensor,
        valid: torch.Tensor,
        key_pos: torch.Tensor,
    ) -> torch.Tensor:
        """kNN attention: query i attends to keys ``source[idx[i]] + key_pos[i]`` with values ``source[idx[i]]``.

        The projections run on the N source rows before gathering (the value and the source part of the key are
        the same for every query that sees a row), so only the position part is projected per (query, neighbour).

        Args:
            query: (N, C); source: (M, C); idx: (N, k) long into source; valid: (N, k) bool (at least one True
            per row); key_pos: (N, k, C).

        Returns:
            (N, C), equal to ``forward(query[:, None], source[idx] + key_pos, source[idx], valid[:, None])[:, 0]``.
        """
        n, c = query.shape
        h = self.num_heads
        q = self.q_proj(query).view(n, h, c // h)
        k = (self.k_proj(source)[idx] + F.linear(key_pos, self.k_proj.weight)).view(n, -1, h, c // h)
        v = self.v_proj(source)[idx].view(n, -1, h, c // h)
        scores = torch.einsum("nhd,nkhd->nhk", q, k) / math.sqrt(c // h)
        weights = scores.masked_fill(~valid[:, None, :], float("-inf")).softmax(-1)
        return self.out_proj(torch.einsum("nhk,nkhd->nhd", weights, v).reshape(n, c))


class CrossAttentionBlock(nn.Module):
    """Residual cross-attention: post-norm x = LN(x + attn(x + pos_q, mem + pos_k, mem)), or pre-norm
    x = x + attn(LN(x) + pos_q, mem + pos_k, mem)."""

    def __init__(self, dim: int, num_heads: int, pre_norm: bool = False):
        super().__init__()
        self.attn = MultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)
        self.pre_norm = pre_norm

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor,
        attend: torch.Tensor | None = None,
        query_pos: torch.Tensor | None = None,
        memory_pos: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, Lq, C); memory: (B, Lk, C); positions broadcastable to them; attend as in MultiheadAttention."""
        key = memory if memory_pos is None else memory + memory_pos
        if self.pre_norm:
            q = self.norm(x)
            q = q if query_pos is None else q + query_pos
            return x + self.attn(q, key, memory, attend)
        q = x if query_pos is None else x + query_pos
        return self.norm(x + self.attn(q, key, memory, attend))

    def forward_neighbours(
        self, x: torch.Tensor, idx: torch.Tensor, valid: torch.Tensor, query_pos: torch.Tensor, key_pos: torch.Tensor
    ) -> torch.Tensor:
        """Residual kNN cross-attention of the rows of x (N, C) to their neighbours ``x[idx]`` (idx, valid:
        (N, k)); query_pos broadcastable to (N, C), key_pos (N, k, C). Returns (N, C)."""
        q = (self.norm(x) if self.pre_norm else x) + query_pos
        out = self.attn.forward_neighbours(q, x, idx, valid, key_pos)
        return x + out if self.pre_norm else self.norm(x + out)


class SelfAttentionBlock(nn.Module):
    """Post-norm residual self-attention: x = LN(x + attn(x + pos, x + pos, x))."""

    def __init__(self, dim: int, num_heads: int):
        super().__init__()
        self.attn = MultiheadAttention(dim, num_heads)
        self.norm = nn.LayerNorm(dim)

    def forward(
        self,
        x: torch.Tensor,
        attend: torch.Tensor | None = None,
        pos: torch.Tensor | None = None,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x: (B, L, C); attend: (B, L, L) or (B, 1, L) bool; pos: broadcastable to x; bias: (B, H, L, L) added
        to the attention logits."""
        qk = x if pos is None else x + pos
        return self.norm(x + self.attn(qk, qk, x, attend, bias))


class FeedForwardBlock(nn.Module):
    """Residual ReLU FFN, post-norm LN(x + W2 relu(W1 x)) or pre-norm x + W2 relu(W1 LN(x))."""

    def __init__(self, dim: int, hidden: int, pre_norm: bool = False):
        super().__init__()
        self.linear1 = nn.Linear(dim, hidden)
        self.linear2 = nn.Linear(hidden, dim)
        self.norm = nn.LayerNorm(dim)
        self.pre_norm = pre_norm
        xavier_init_(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C)."""
        if self.pre_norm:
            return x + self.linear2(F.relu(self.linear1(self.norm(x))))
        return self.norm(x + self.linear2(F.relu(self.linear1(x))))


class MLP(nn.Module):
    """``num_layers`` Linear layers with ReLU between them (Mask2Former's mask embedding)."""

    def __init__(self, in_dim: int, hidden: int, out_dim: int, num_layers: int):
        super().__init__()
        dims = [in_dim] + [hidden] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., in_dim) -> (..., out_dim)."""
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = F.relu(x)
        return x


class LearnedPositionEncoding3D(nn.Module):
    """MLP position encoding of 3D coordinates: Linear(3, C) -> LayerNorm -> ReLU -> Linear(C, C)."""

    def __init__(self, dim: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(3, dim), nn.LayerNorm(dim), nn.ReLU(), nn.Linear(dim, dim))
        xavier_init_(self)

    def forward(self, xyz: torch.Tensor) -> torch.Tensor:
        """xyz: (..., 3) metres -> (..., C)."""
        return self.mlp(xyz)


def sine_position_encoding_2d(xy: torch.Tensor, dim: int, temperature: float = 10000.0) -> torch.Tensor:
    """DETR's normalised sine encoding of 2D positions.

    Args:
        xy: (..., 2) float in [0, 1] (x = column / width, y = row / height).
        dim: output channels, divisible by 4; the first half encodes y, the second x (DETR's order).

    Returns:
        (..., dim) float.
    """
    if dim % 4:
        raise ValueError(f"dim must be divisible by 4, got {dim}")
    half = dim // 2
    freqs = temperature ** (2 * (torch.arange(half, device=xy.device, dtype=xy.dtype) // 2) / half)
    angles = xy.flip(-1)[..., None] * (2 * math.pi) / freqs  # (..., 2, half), y first
    enc = torch.stack([angles[..., 0::2].sin(), angles[..., 1::2].cos()], dim=-1).flatten(-2)
    return enc.flatten(-2)


def sample_group_norm(
    x: torch.Tensor,
    sample: torch.Tensor,
    num_samples: int,
    groups: int,
    weight: torch.Tensor,
    bias: torch.Tensor,
    eps: float = 1e-5,
) -> torch.Tensor:
    """GroupNorm over a flat set of points: statistics per (sample, channel group) over that sample's points.

    It equals ``nn.GroupNorm`` applied to each sample's (1, C, N_b) feature map alone, so padding never enters
    the statistics.

    Args:
        x: (M, C) float; sample: (M,) long in [0, num_samples), non-decreasing (each sample's rows contiguous);
        weight, bias: (C,).

    Returns:
        (M, C).
    """
    c = x.shape[1]
    per_group = c // groups
    normed = []
    for part in torch.split(x, torch.bincount(sample, minlength=num_samples).tolist()):
        size = max(1, part.shape[0] * per_group)
        # reductions over rows (contiguous) per channel, then per group: much faster than var_mean over (0, 2)
        mean = (part.sum(0).view(groups, per_group).sum(1) / size).repeat_interleave(per_group)
        centred = part - mean
        var = (centred.square().sum(0).view(groups, per_group).sum(1) / size).repeat_interleave(per_group)
        normed.append(centred * torch.rsqrt(var + eps))
    out = torch.cat(normed) if len(normed) > 1 else normed[0]
    return out * weight + bias


class SampleGroupNorm(nn.Module):
    """``nn.GroupNorm`` parameters applied with :func:`sample_group_norm` to flat per-sample point sets."""

    def __init__(self, groups: int, channels: int):
        super().__init__()
        if channels % groups:
            raise ValueError(f"channels {channels} not divisible by groups {groups}")
        self.groups = groups
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor, sample: torch.Tensor, num_samples: int) -> torch.Tensor:
        """x: (M, C); sample: (M,) long -> (M, C)."""
        return sample_group_norm(x, sample, num_samples, self.groups, self.weight, self.bias)
