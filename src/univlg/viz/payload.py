"""The data a viewer page embeds: a deterministic subsample of the points and base64 arrays the browser decodes.

Arrays travel as base64 of their little-endian bytes with their dtype and shape, so the page's JavaScript turns
them into typed arrays without parsing numbers and a test can decode them with ``numpy.frombuffer``.
"""

from __future__ import annotations

import base64

import numpy as np

SUBSAMPLE_SEED = 0
WIRE_DTYPES = {"float32": "<f4", "uint32": "<u4", "uint8": "u1"}


def subsample_indices(
    num_points: int, max_points: int, preferred: np.ndarray | None = None, candidates: np.ndarray | None = None
) -> np.ndarray:
    """The points a page keeps: all of them when they fit, otherwise ``preferred`` ones first.

    Args:
        num_points: P, the size of the point set.
        max_points: the most points kept (>= 1).
        preferred: (P,) bool, points kept before any other (the highlighted ones); None = no preference.
        candidates: (P,) bool, points that may be kept at all (e.g. the finite ones); None = every point.

    Returns:
        (N,) int64 sorted indices into the P points, N = min(max_points, candidates.sum()). When more than
        ``max_points`` are preferred, a uniform random subset of them is kept; otherwise every preferred point and
        a uniform random subset of the rest. The draw uses a fixed seed, so the same input gives the same pages.
    """
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    allowed = np.ones(num_points, dtype=bool) if candidates is None else np.asarray(candidates, dtype=bool)
    first = np.zeros(num_points, dtype=bool) if preferred is None else np.asarray(preferred, dtype=bool)
    if allowed.shape != (num_points,) or first.shape != (num_points,):
        raise ValueError(f"preferred and candidates must be ({num_points},) bool")
    first &= allowed
    if allowed.sum() <= max_points:
        return np.flatnonzero(allowed)
    rng = np.random.default_rng(SUBSAMPLE_SEED)
    preferred_idx = np.flatnonzero(first)
    if preferred_idx.size >= max_points:
        return np.sort(rng.choice(preferred_idx, size=max_points, replace=False))
    rest = np.flatnonzero(allowed & ~first)
    picked = rng.choice(rest, size=max_points - preferred_idx.size, replace=False)
    return np.sort(np.concatenate([preferred_idx, picked]))


def encode_array(array: np.ndarray, dtype: str) -> dict:
    """``array`` (any shape) as ``{"dtype", "shape", "base64"}`` of its little-endian ``dtype`` bytes.

    dtype: one of ``float32``, ``uint32``, ``uint8``.
    """
    wire = WIRE_DTYPES[dtype]
    data = np.ascontiguousarray(np.asarray(array).astype(wire, copy=False))
    return {"dtype": dtype, "shape": list(data.shape), "base64": base64.b64encode(data.tobytes()).decode("ascii")}
