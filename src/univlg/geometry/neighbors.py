"""Exact k-nearest neighbours (batched, memory-bounded), inverse-distance interpolation, farthest point sampling.

kNN backends: ``"kdtree"`` (``scipy.spatial.cKDTree`` per batch element, the default for CPU tensors) and
``"torch"`` (chunked ``torch.cdist`` + ``topk``, the default for CUDA tensors; it also runs on CPU, which is how
it is tested). Both only choose the indices; the returned distances are always recomputed in torch from the
gathered coordinates, so they carry gradient w.r.t. query and reference points.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.spatial import cKDTree

__all__ = ["knn", "idw_interpolate", "farthest_point_sample", "batched_farthest_point_sample"]

# Upper bound on the elements of one (chunk x M) distance block of the torch backend: 2**24 floats (64 MiB fp32)
# on CPU; 2**26 (256 MiB) on CUDA, where fewer, larger blocks keep the kernel launches from dominating.
CPU_BLOCK_ELEMENTS = 2**24
CUDA_BLOCK_ELEMENTS = 2**26
IDW_EPS = 1e-8


def _groups(query_batch: torch.Tensor | None, ref_batch: torch.Tensor | None, num_query: int, num_ref: int):
    """Yield (query rows, ref rows) per batch element; None means all rows (unbatched)."""
    if (query_batch is None) != (ref_batch is None):
        raise ValueError("give both query_batch and ref_batch, or neither")
    if query_batch is None:
        yield None, None
        return
    if query_batch.shape != (num_query,) or ref_batch.shape != (num_ref,):
        raise ValueError(
            f"query_batch must be ({num_query},) and ref_batch ({num_ref},), "
            f"got {tuple(query_batch.shape)} and {tuple(ref_batch.shape)}"
        )
    ref_batch = ref_batch.to(query_batch.device)
    for element in torch.unique(query_batch).tolist():
        yield (query_batch == element).nonzero().squeeze(1), (ref_batch == element).nonzero().squeeze(1)


def _kdtree_search(query: torch.Tensor, ref: torch.Tensor, k: int, workers: int) -> torch.Tensor:
    """(n, k) long indices into ``ref`` (n, D) of the k <= len(ref) nearest rows, by cKDTree."""
    tree = cKDTree(ref.detach().cpu().numpy(), balanced_tree=False, compact_nodes=False)
    _, idx = tree.query(query.detach().cpu().numpy(), k=k, workers=workers)
    return torch.from_numpy(np.asarray(idx, dtype=np.int64).reshape(query.shape[0], k)).to(query.device)


def _torch_search(query: torch.Tensor, ref: torch.Tensor, k: int, chunk_size: int | None) -> torch.Tensor:
    """(n, k) long indices by exact cdist in query chunks; each block holds at most chunk_size x M distances."""
    budget = CUDA_BLOCK_ELEMENTS if query.device.type == "cuda" else CPU_BLOCK_ELEMENTS
    rows = chunk_size or max(1, budget // max(1, ref.shape[0]))
    out = torch.empty(query.shape[0], k, dtype=torch.long, device=query.device)
    for start in range(0, query.shape[0], rows):
        # Direct differences, not the |x|^2 + |y|^2 - 2xy matmul form, which loses centimetres in float32.
        block = torch.cdist(query[start : start + rows], ref, compute_mode="donot_use_mm_for_euclid_dist")
        out[start : start + rows] = block.topk(k, dim=1, largest=False, sorted=False).indices
    return out


def knn(
    query: torch.Tensor,
    ref: torch.Tensor,
    k: int,
    query_batch: torch.Tensor | None = None,
    ref_batch: torch.Tensor | None = None,
    backend: str = "auto",
    chunk_size: int | None = None,
    workers: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k nearest reference points of every query point (Euclidean), within the same batch element.

    Args:
        query: (N, D) float (D = 3 for points); ref: (M, D) float on the same device.
        k: neighbours per query, >= 1.
        query_batch: (N,) long and ref_batch: (M,) long batch element of each point (both or neither).
        backend: "auto" (kdtree for CPU tensors, torch otherwise), "kdtree" or "torch".
        chunk_size: query rows per cdist block of the torch backend (default: 2**24 // M on CPU and
            2**26 // M on CUDA, i.e. at most 64 / 256 MiB of fp32 distances per block).
        workers: threads of the kdtree query (default: torch's intra-op threads, ``torch.get_num_threads()``, so
            that ``torch.set_num_threads`` also bounds it; -1 = all cores). Results do not depend on it.

    Returns:
        dist: (N, k) dtype of ``query``, ascending per row, recomputed from the coordinates (differentiable).
        idx: (N, k) long indices into ``ref``. When a batch element has fewer than k reference points, the
        missing neighbours come last with idx -1 and dist inf. Ties are broken arbitrarily.
    """
    if query.dim() != 2 or ref.dim() != 2 or query.shape[1] != ref.shape[1]:
        raise ValueError(f"query (N, D) and ref (M, D) must agree, got {tuple(query.shape)} and {tuple(ref.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if backend == "auto":
        backend = "kdtree" if query.device.type == "cpu" else "torch"
    if backend not in ("kdtree", "torch"):
        raise ValueError(f"backend must be 'auto', 'kdtree' or 'torch', got {backend!r}")

    idx = torch.full((query.shape[0], k), -1, dtype=torch.long, device=query.device)
    if ref.shape[0] == 0:
        return torch.full(idx.shape, float("inf"), dtype=query.dtype, device=query.device), idx
    with torch.no_grad():
        for query_rows, ref_rows in _groups(query_batch, ref_batch, query.shape[0], ref.shape[0]):
            q = query if query_rows is None else query[query_rows]
            r = ref if ref_rows is None else ref[ref_rows]
            found = min(k, r.shape[0])
            if q.shape[0] == 0 or found == 0:
                continue
            if backend == "kdtree":
                local = _kdtree_search(q, r, found, torch.get_num_threads() if workers is None else workers)
            else:
                local = _torch_search(q, r.to(q.dtype), found, chunk_size)
            chosen = local if ref_rows is None else ref_rows[local]
            if query_rows is None:
                idx[:, :found] = chosen
            else:
                idx[query_rows, :found] = chosen

    neighbours = ref.to(query.dtype)[idx.clamp_min(0)]
    dist = torch.linalg.vector_norm(query[:, None, :] - neighbours, dim=-1)
    dist = torch.where(idx >= 0, dist, torch.full_like(dist, float("inf")))
    dist, order = dist.sort(dim=1, stable=True)
    return dist, idx.gather(1, order)


def idw_interpolate(
    ref_xyz: torch.Tensor,
    ref_feat: torch.Tensor,
    query_xyz: torch.Tensor,
    k: int = 8,
    ref_batch: torch.Tensor | None = None,
    query_batch: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """Inverse-distance-weighted average of the features of the k nearest reference points.

    w_j = (1 / (d_j + 1e-8)) / sum_i (1 / (d_i + 1e-8)) over the k nearest references of the same batch element
    (UniVLG's pointops interpolation).

    Args:
        ref_xyz: (M, 3) float; ref_feat: (M, C) float; query_xyz: (N, 3) float.
        k: neighbours; fewer are used where a batch element has fewer than k references.
        ref_batch: (M,) long and query_batch: (N,) long, both or neither.
        backend: kNN backend, see :func:`knn`.

    Returns:
        (N, C) dtype of ``ref_feat``; differentiable w.r.t. ``ref_feat`` (and the coordinates). A query whose
        batch element has no reference point gets zeros.
    """
    if ref_feat.dim() != 2 or ref_feat.shape[0] != ref_xyz.shape[0]:
        raise ValueError(f"ref_feat must be ({ref_xyz.shape[0]}, C), got {tuple(ref_feat.shape)}")
    dist, idx = knn(query_xyz, ref_xyz, k, query_batch=query_batch, ref_batch=ref_batch, backend=backend)
    inverse = 1.0 / (dist + IDW_EPS)  # padded neighbours: 1 / inf = 0
    total = inverse.sum(dim=1, keepdim=True)
    weights = (inverse / torch.where(total > 0, total, torch.ones_like(total))).to(ref_feat.dtype)
    safe_idx = idx.clamp_min(0)
    out = torch.zeros(query_xyz.shape[0], ref_feat.shape[1], dtype=ref_feat.dtype, device=ref_feat.device)
    for j in range(idx.shape[1]):  # one (N, C) gather at a time instead of an (N, k, C) block
        out = out + weights[:, j, None] * ref_feat[safe_idx[:, j]]
    return out


def farthest_point_sample(
    x: torch.Tensor,
    n_samples: int,
    initial: Sequence[int] | torch.Tensor | None = None,
    start: int = 0,
) -> torch.Tensor:
    """Greedy farthest point sampling in any dimension (3D points or embedding vectors); deterministic.

    Each step picks the row with the largest Euclidean distance to its nearest already-chosen row; ties go to
    the lowest index.

    Args:
        x: (N, D) float.
        n_samples: rows to choose.
        initial: indices already chosen; they come first in the output in the given order (duplicates
            dropped), and the rest are chosen farthest from all of them. If there are more than ``n_samples``,
            the first ``n_samples`` are returned.
        start: first index when ``initial`` is empty.

    Returns:
        (min(n_samples, N),) long. With n_samples >= N this is every index once, in farthest-first order (so a
        prefix of it is the FPS of that length).
    """
    if x.dim() != 2:
        raise ValueError(f"x must be (N, D), got {tuple(x.shape)}")
    num = x.shape[0]
    count = min(int(n_samples), num)
    chosen = [] if initial is None else list(dict.fromkeys(int(i) for i in torch.as_tensor(initial).tolist()))
    if any(not 0 <= i < num for i in chosen) or (not chosen and count > 0 and not 0 <= start < num):
        raise ValueError(f"initial indices and start must lie in [0, {num})")
    if not chosen and count > 0:
        chosen = [start]
    if len(chosen) >= count:
        return torch.tensor(chosen[:count], dtype=torch.long, device=x.device)

    points = x.detach()
    out = torch.empty(count, dtype=torch.long, device=x.device)
    out[: len(chosen)] = torch.tensor(chosen, dtype=torch.long, device=x.device)
    nearest = torch.full((num,), float("inf"), dtype=points.dtype, device=x.device)
    for i in chosen:
        nearest = torch.minimum(nearest, (points - points[i]).square().sum(dim=1))
    nearest[out[: len(chosen)]] = -1.0  # never chosen twice, even among duplicate rows
    for step in range(len(chosen), count):
        pick = nearest.argmax()
        out[step] = pick
        nearest = torch.minimum(nearest, (points - points[pick]).square().sum(dim=1))
        nearest[pick] = -1.0
    return out


def batched_farthest_point_sample(xyz: torch.Tensor, valid: torch.Tensor, k: int) -> torch.Tensor:
    """Farthest point sampling of k points in every sample of a padded batch at once; deterministic.

    Unlike :func:`farthest_point_sample` (one set, optional initial picks, no repeats) this always returns k
    picks per sample: the first is the sample's first valid point, and a sample with fewer than k valid points
    repeats picks. Padding is never picked.

    Args:
        xyz: (B, S, 3); valid: (B, S) bool.

    Returns:
        (B, k) long indices into S (0 for a sample without valid points).
    """
    xyz = xyz.detach()
    b = xyz.shape[0]
    rows = torch.arange(b, device=xyz.device)
    distance = torch.where(valid, torch.full_like(valid, float("inf"), dtype=xyz.dtype), -1.0)
    picks = []
    for _ in range(k):
        pick = distance.argmax(dim=1)
        picks.append(pick)
        step = ((xyz - xyz[rows, pick][:, None, :]) ** 2).sum(-1)
        distance = torch.where(valid, torch.minimum(distance, step), distance)
    return torch.stack(picks, dim=1)
