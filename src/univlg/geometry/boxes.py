"""Axis-aligned boxes: from point masks (hard and soft), IoU and generalized IoU in 3D and 2D, format changes.

Formats: 3D corners (xmin, ymin, zmin, xmax, ymax, zmax), 2D corners (x0, y0, x1, y1); centre form
(cx, cy, cz, w, h, d) / (cx, cy, w, h). NaN policy (see docs/geometry.md): a box with any NaN coordinate gives NaN
IoU and GIoU with everything (an empty mask's hard box is all-NaN, and the grounding metric counts NaN as a
miss); a finite box of zero volume (flat, or inverted with max < min) gives IoU 0 with everything, itself included.
"""

from __future__ import annotations

import torch

__all__ = [
    "boxes_from_masks",
    "soft_boxes_from_masks",
    "box_iou_3d",
    "generalized_box_iou_3d",
    "box_iou_2d",
    "generalized_box_iou_2d",
    "box_corners_to_center",
    "box_center_to_corners",
]

# Upper bound on the elements of one (B, Q-chunk, P) block in boxes_from_masks.
BLOCK_ELEMENTS = 2**24


def _batched(points: torch.Tensor, masks: torch.Tensor, point_valid: torch.Tensor | None):
    """Add a leading batch axis where missing; returns points (B,P,3), masks (B,Q,P), valid (B,P) or None, flag."""
    unbatched = points.dim() == 2
    if unbatched:
        points, masks = points.unsqueeze(0), masks.unsqueeze(0)
        point_valid = None if point_valid is None else point_valid.unsqueeze(0)
    if points.dim() != 3 or points.shape[-1] != 3 or masks.dim() != 3 or masks.shape[::2] != points.shape[:2]:
        raise ValueError(
            f"expected points (P, 3) with masks (Q, P), or (B, P, 3) with (B, Q, P); got "
            f"{tuple(points.shape)} and {tuple(masks.shape)}"
        )
    if point_valid is not None and point_valid.shape != points.shape[:2]:
        raise ValueError(f"point_valid must match the points' leading shape, got {tuple(point_valid.shape)}")
    return points, masks, point_valid, unbatched


def boxes_from_masks(
    points: torch.Tensor,
    masks: torch.Tensor,
    threshold: float = 0.5,
    point_valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """Tight axis-aligned box (min/max) of the points inside each mask.

    Args:
        points: (P, 3) or (B, P, 3) float.
        masks: (Q, P) or (B, Q, P), bool or probabilities (a point is in the mask when prob > threshold).
        threshold: for non-bool masks.
        point_valid: optional (P,) or (B, P) bool; invalid (e.g. padding) points are never in a mask.

    Returns:
        (Q, 6) or (B, Q, 6) (xmin, ymin, zmin, xmax, ymax, zmax) in the dtype of ``points``; all NaN for an empty
        mask. Differentiable w.r.t. ``points`` only. Works in blocks of Q so that Q=100, P=100k stays small.
    """
    points, masks, point_valid, unbatched = _batched(points, masks, point_valid)
    inside = masks if masks.dtype == torch.bool else masks > threshold
    if point_valid is not None:
        inside = inside & point_valid[:, None, :]
    batch, queries, num_points = inside.shape
    step = max(1, BLOCK_ELEMENTS // max(1, batch * num_points))
    inf = torch.tensor(float("inf"), dtype=points.dtype, device=points.device)
    chunks = []
    for start in range(0, queries, step):
        block = inside[:, start : start + step]
        lows, highs = [], []
        for axis in range(3):
            coord = points[:, None, :, axis]
            lows.append(torch.where(block, coord, inf).amin(dim=-1))
            highs.append(torch.where(block, coord, -inf).amax(dim=-1))
        box = torch.stack(lows + highs, dim=-1)
        empty = ~block.any(dim=-1, keepdim=True)
        chunks.append(torch.where(empty, torch.full_like(box, float("nan")), box))
    boxes = torch.cat(chunks, dim=1) if chunks else points.new_zeros(batch, 0, 6)
    return boxes[0] if unbatched else boxes


def soft_boxes_from_masks(
    points: torch.Tensor,
    probs: torch.Tensor,
    temperature: float = 0.05,
    point_valid: torch.Tensor | None = None,
    length_scale: float = 1.0,
) -> torch.Tensor:
    """Differentiable box of soft masks; tends to ``boxes_from_masks(points, probs > 0.5)`` as temperature -> 0.

    Construction, per mask and axis (T = temperature, tau = T * length_scale; L, U = min and max of the valid
    points' coordinate, detached; A = L - (U - L) - length_scale, an anchor strictly below the cloud):
      gate      g_p = sigmoid((prob_p - 0.5) / T)
      lifted    y_p = A + g_p (x_p - A)          (points outside the mask sink to the anchor A)
      soft max  xmax = sum_p softmax_p(y_p / tau) x_p
    and xmin likewise with B = U + (U - L) + length_scale and softmax(-y_p / tau). xmax is a convex combination
    of the coordinates, so L <= xmin, xmax <= U. Its gradient w.r.t. prob_p has the sign of (x_p - xmax): making
    a point beyond the current soft extreme more likely pushes the extreme towards it.

    Limit T -> 0 for a mask with some prob > 0.5: in-mask points have g_p -> 1 with y_p - x_p = o(tau); points
    with prob < 0.5 have y_p -> A; a point with prob exactly 0.5 keeps g_p = 1/2, y_p = (A + x_p) / 2, which is
    below every in-mask coordinate because x_p - x_q <= U - L < x_q - A. The softmax therefore concentrates on the
    in-mask points of largest coordinate, and xmax -> max over the mask (likewise xmin): the hard box. At finite T
    the soft extremes lie about tau inside the hard ones.

    Args:
        points: (P, 3) or (B, P, 3) float.
        probs: (Q, P) or (B, Q, P) float mask probabilities in [0, 1].
        temperature: T > 0, the gate's width in probability units.
        point_valid: optional (P,) or (B, P) bool; invalid points are ignored.
        length_scale: turns T into the softness of the extremes in point units (tau = T * length_scale; the
            default 1.0 gives tau = 5 cm for metric points at T = 0.05).

    Returns:
        (Q, 6) or (B, Q, 6) in the dtype of ``points``, always finite. A mask with every prob below 0.5 tends to
        the zero-volume box at the centroid of the valid points (IoU 0 under this module's policy); a batch
        element without valid points gives zeros.
    """
    if temperature <= 0 or length_scale <= 0:
        raise ValueError(f"temperature and length_scale must be > 0, got {temperature} and {length_scale}")
    points, probs, point_valid, unbatched = _batched(points, probs.to(points.dtype), point_valid)
    if point_valid is None:
        point_valid = torch.ones(points.shape[:2], dtype=torch.bool, device=points.device)
    tau = temperature * length_scale
    gate = torch.sigmoid((probs - 0.5) / temperature)  # (B, Q, P)
    invalid = ~point_valid[:, None, :]
    fill = torch.finfo(points.dtype).min / 4  # finite, so rows without valid points stay NaN-free in backward
    inf = torch.tensor(float("inf"), dtype=points.dtype, device=points.device)
    has_points = point_valid.any(dim=1)[:, None]  # (B, 1)
    lows, highs = [], []
    for axis in range(3):
        coord = points[:, :, axis]
        cloud_min = torch.where(point_valid, coord, inf).amin(dim=1).detach()
        cloud_max = torch.where(point_valid, coord, -inf).amax(dim=1).detach()
        cloud_min = torch.where(has_points[:, 0], cloud_min, torch.zeros_like(cloud_min))
        cloud_max = torch.where(has_points[:, 0], cloud_max, torch.zeros_like(cloud_max))
        margin = cloud_max - cloud_min + length_scale
        x = coord[:, None, :]
        for sign, anchor, out in ((1.0, cloud_min - margin, highs), (-1.0, cloud_max + margin, lows)):
            anchor = anchor[:, None, None]
            lifted = anchor + gate * (x - anchor)
            weights = torch.softmax((sign * lifted / tau).masked_fill(invalid, fill), dim=-1)
            extreme = (weights @ coord[:, :, None]).squeeze(-1)  # (B, Q): never forms weights * x
            out.append(torch.where(has_points, extreme, torch.zeros_like(extreme)))
    boxes = torch.stack(lows + highs, dim=-1)
    return boxes[0] if unbatched else boxes


def _pairwise_iou(a: torch.Tensor, b: torch.Tensor, dims: int, generalized: bool) -> torch.Tensor:
    """(N, M) IoU or GIoU of corner boxes a (N, 2*dims) and b (M, 2*dims), with the module's NaN policy."""
    if a.shape[-1] != 2 * dims or b.shape[-1] != 2 * dims or a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"expected boxes (N, {2 * dims}) and (M, {2 * dims}), got {tuple(a.shape)}, {tuple(b.shape)}")
    a_lo, a_hi = a[:, None, :dims], a[:, None, dims:]
    b_lo, b_hi = b[None, :, :dims], b[None, :, dims:]
    vol_a = (a_hi - a_lo).clamp_min(0).prod(dim=-1)
    vol_b = (b_hi - b_lo).clamp_min(0).prod(dim=-1)
    inter = (torch.minimum(a_hi, b_hi) - torch.maximum(a_lo, b_lo)).clamp_min(0).prod(dim=-1)
    degenerate = (vol_a <= 0) | (vol_b <= 0)
    inter = torch.where(degenerate, torch.zeros_like(inter), inter)
    union = vol_a + vol_b - inter
    positive = union > 0
    iou = torch.where(positive, inter / torch.where(positive, union, torch.ones_like(union)), torch.zeros_like(union))
    if generalized:
        hull = (torch.maximum(a_hi, b_hi) - torch.minimum(a_lo, b_lo)).clamp_min(0).prod(dim=-1)
        has_hull = hull > 0
        safe_hull = torch.where(has_hull, hull, torch.ones_like(hull))
        iou = torch.where(has_hull, iou - (hull - union) / safe_hull, iou)
    has_nan = torch.isnan(a).any(dim=-1)[:, None] | torch.isnan(b).any(dim=-1)[None, :]
    return torch.where(has_nan, torch.full_like(iou, float("nan")), iou)


def box_iou_3d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of axis-aligned 3D boxes.

    Args:
        a: (N, 6), b: (M, 6) float, (xmin, ymin, zmin, xmax, ymax, zmax).

    Returns:
        (N, M) in [0, 1]; NaN where either box has a NaN coordinate; 0 where either box has zero volume.
    """
    return _pairwise_iou(a, b, 3, generalized=False)


def generalized_box_iou_3d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise generalized IoU (Rezatofighi et al. 2019) of axis-aligned 3D boxes.

    GIoU = IoU - (C - U) / C with C the volume of the smallest enclosing box and U the union.

    Args:
        a: (N, 6), b: (M, 6) float corner boxes.

    Returns:
        (N, M) in [-1, 1], symmetric; NaN where either box has a NaN coordinate; where the enclosing box has zero
        volume (both boxes flat in a shared plane) it equals the IoU, i.e. 0. Differentiable.
    """
    return _pairwise_iou(a, b, 3, generalized=True)


def box_iou_2d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of 2D boxes a (N, 4), b (M, 4) as (x0, y0, x1, y1) -> (N, M); same policy as 3D."""
    return _pairwise_iou(a, b, 2, generalized=False)


def generalized_box_iou_2d(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise generalized IoU of 2D boxes a (N, 4), b (M, 4) -> (N, M) in [-1, 1]; same policy as 3D."""
    return _pairwise_iou(a, b, 2, generalized=True)


def _half(boxes: torch.Tensor) -> int:
    if boxes.shape[-1] not in (4, 6):
        raise ValueError(f"boxes must end in 4 (2D) or 6 (3D) values, got {tuple(boxes.shape)}")
    return boxes.shape[-1] // 2


def box_corners_to_center(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 6) (xmin, ymin, zmin, xmax, ymax, zmax) -> (..., 6) (cx, cy, cz, w, h, d); also 2D (..., 4)."""
    dims = _half(boxes)
    lo, hi = boxes[..., :dims], boxes[..., dims:]
    return torch.cat([(lo + hi) / 2, hi - lo], dim=-1)


def box_center_to_corners(boxes: torch.Tensor) -> torch.Tensor:
    """(..., 6) (cx, cy, cz, w, h, d) -> (..., 6) (xmin, ymin, zmin, xmax, ymax, zmax); also 2D (..., 4)."""
    dims = _half(boxes)
    centre, size = boxes[..., :dims], boxes[..., dims:]
    return torch.cat([centre - size / 2, centre + size / 2], dim=-1)
