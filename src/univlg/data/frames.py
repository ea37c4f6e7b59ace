"""Choosing which frames of a scene a sample sees (UniVLG reference 3.7).

Every 3D training sample, referral and detection alike (:class:`~univlg.data.datasets.SceneSampler`), takes its
views with :func:`select_relevant_frames`: a few frames *relevant* to the objects the text talks about, drawn with
probability proportional to how many of their points each frame sees (:func:`object_visibility`, a depth-tested
projection of the target and anchors, or of every instance of the prompt's classes), and the rest by farthest
point sampling over the camera positions, so that the views both show the objects and cover the room. (The
official recipe ranks frames by CLIP text-image similarity; the function takes any per-frame relevance and
embeddings.) Inference takes an evenly spread subset, :func:`uniform_frames`.
"""

from __future__ import annotations

import numpy as np
import torch

from univlg.geometry import farthest_point_sample, project_points


def seen_by_frames(
    points: np.ndarray,
    depth: np.ndarray,
    intrinsics: np.ndarray,
    cam_to_world: np.ndarray,
    tolerance: float = 0.05,
) -> np.ndarray:
    """Which frames see which points: (V, P) bool.

    points: (P, 3) float; depth: (V, H, W) metres (0 invalid); intrinsics: (V, 3, 3); cam_to_world: (V, 4, 4)
    (affine maps are fine). A point is seen when it projects inside the image in front of the camera and its depth
    agrees with the sensor depth there within ``tolerance`` metres (occluded points are not seen).
    """
    v, h, w = depth.shape
    uv, z = project_points(
        torch.as_tensor(points, dtype=torch.float32),
        torch.as_tensor(intrinsics, dtype=torch.float32),
        torch.as_tensor(cam_to_world, dtype=torch.float32),
    )
    col, row = torch.round(uv[..., 0]), torch.round(uv[..., 1])
    inside = (z > 0) & (col >= 0) & (col <= w - 1) & (row >= 0) & (row <= h - 1)
    col = torch.where(inside, col, torch.zeros_like(col)).long()
    row = torch.where(inside, row, torch.zeros_like(row)).long()
    sensed = torch.as_tensor(depth, dtype=torch.float32)[torch.arange(v)[:, None], row, col]
    return (inside & (sensed > 0) & ((sensed - z).abs() < tolerance)).numpy()


def object_visibility(
    points: np.ndarray,
    instance_ids: np.ndarray,
    object_ids: list[int],
    depth: np.ndarray,
    intrinsics: np.ndarray,
    cam_to_world: np.ndarray,
    tolerance: float = 0.05,
    max_points_per_object: int = 2000,
) -> np.ndarray:
    """How many points of each object every frame sees (:func:`seen_by_frames`): (V, G) int64.

    instance_ids: (P,) int per point; object_ids: the G objects. Objects are subsampled to
    ``max_points_per_object`` points (deterministically) for speed.
    """
    counts = np.zeros((depth.shape[0], len(object_ids)), dtype=np.int64)
    for g, object_id in enumerate(object_ids):
        idx = np.flatnonzero(instance_ids == object_id)
        if idx.size == 0:
            continue
        idx = idx[:: max(1, idx.size // max_points_per_object)]
        counts[:, g] = seen_by_frames(points[idx], depth, intrinsics, cam_to_world, tolerance).sum(axis=1)
    return counts


def select_relevant_frames(
    num_frames: int,
    rng: np.random.Generator,
    relevance: np.ndarray | None = None,
    num_relevant: int | None = None,
    embeddings: np.ndarray | None = None,
) -> np.ndarray:
    """Indices of ``num_frames`` frames for a referential sample, sorted ascending.

    relevance: (V,) non-negative score per frame (visible object points, or text-image similarity); frames are
    drawn without replacement with probability proportional to it among the better half of the frames with a
    positive score: ``num_relevant`` of them (default ``num_frames // 3``). embeddings: (V, D) per-frame features
    for the farthest-point fill (frame poses or image embeddings); without them the rest is random.
    """
    total = len(relevance) if relevance is not None else len(embeddings) if embeddings is not None else None
    if total is None:
        raise ValueError("select_relevant_frames needs relevance scores or embeddings to know the frame count")
    if total <= num_frames:
        return np.arange(total)
    chosen: list[int] = []
    if relevance is not None:
        order = np.argsort(-relevance, kind="stable")
        candidates = order[: total - total // 2]
        candidates = candidates[relevance[candidates] > 0]
        want = min(num_relevant if num_relevant is not None else num_frames // 3, len(candidates), num_frames)
        if want > 0:
            weights = relevance[candidates].astype(np.float64)
            chosen = list(rng.choice(candidates, size=want, replace=False, p=weights / weights.sum()))
    if embeddings is not None:
        start = int(rng.integers(total))
        picked = farthest_point_sample(torch.as_tensor(embeddings, dtype=torch.float32), num_frames, chosen, start)
        chosen = picked.tolist()
    rest = np.setdiff1d(np.arange(total), chosen)
    fill = rng.choice(rest, size=num_frames - len(chosen), replace=False) if len(chosen) < num_frames else []
    return np.sort(np.concatenate([np.asarray(chosen, dtype=np.int64), np.asarray(fill, dtype=np.int64)]))


def uniform_frames(total: int, max_frames: int) -> np.ndarray:
    """At most ``max_frames`` evenly spread frame indices (all of them when there are few), for inference."""
    if total <= max_frames:
        return np.arange(total)
    return np.linspace(0, total - 1, max_frames).round().astype(np.int64)
