"""Hungarian matching of predicted queries to ground-truth objects (UniVLG reference 3.2).

C = w_class * C_class + w_mask * C_bce + w_dice * C_dice + w_bbox * C_L1 + w_giou * C_giou, solved per sample and
per decoder layer with ``scipy.optimize.linear_sum_assignment``:

- C_class = -(sigmoid(span logits) @ positive_map^T): minus the mean span probability (rows of the map sum to 1);
- C_bce = mean over points of the binary cross-entropy between mask logits and the target mask;
- C_dice = 1 - (2 sum(p t) + 1) / (sum p + sum t + 1) with p = sigmoid(mask logits);
- C_L1 = L1 distance of (cx, cy, cz, w, h, d) boxes, C_giou = -GIoU of the corner boxes (3D data only).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from univlg.geometry.boxes import box_corners_to_center, generalized_box_iou_3d
from univlg.train.config import LossConfig
from univlg.train.targets import SampleTargets

INVALID_COST = 1e6  # stands in for NaN/inf box costs (an empty predicted mask has no box)


def mask_bce_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(Q, P) logits, (G, P) {0,1} targets -> (Q, G) mean binary cross-entropy over the P points."""
    positive = F.softplus(-logits)  # -log sigmoid(x)
    negative = F.softplus(logits)  # -log(1 - sigmoid(x))
    return (positive @ targets.T + negative @ (1 - targets).T) / max(logits.shape[1], 1)


def mask_dice_cost(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """(Q, P) logits, (G, P) {0,1} targets -> (Q, G) dice cost with +1 smoothing."""
    probs = logits.sigmoid()
    numerator = 2 * probs @ targets.T
    denominator = probs.sum(-1)[:, None] + targets.sum(-1)[None, :]
    return 1 - (numerator + 1) / (denominator + 1)


class HungarianMatcher:
    """One-to-one assignment of queries to objects minimising the weighted cost above (default weights:
    :class:`~univlg.train.config.LossConfig`'s)."""

    def __init__(
        self,
        cost_class: float = LossConfig.match_class,
        cost_mask: float = LossConfig.match_mask,
        cost_dice: float = LossConfig.match_dice,
        cost_bbox: float = LossConfig.match_bbox,
        cost_giou: float = LossConfig.match_giou,
    ):
        self.cost_class = cost_class
        self.cost_mask = cost_mask
        self.cost_dice = cost_dice
        self.cost_bbox = cost_bbox
        self.cost_giou = cost_giou

    @torch.no_grad()
    def cost_matrix(
        self,
        span_logits: torch.Tensor,
        mask_logits: torch.Tensor,
        targets: SampleTargets,
        boxes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(Q, G) matching cost of one sample.

        span_logits: (Q, T); mask_logits: (Q, P) over the sample's valid points only; targets: masks (G, P);
        boxes: (Q, 6) predicted corner boxes, used with ``targets.boxes`` when both are given.
        """
        span_logits, mask_logits = span_logits.float(), mask_logits.float()
        target_masks = targets.masks.float()
        cost = -self.cost_class * (span_logits.sigmoid() @ targets.positive_map.float().T)
        cost = cost + self.cost_mask * mask_bce_cost(mask_logits, target_masks)
        cost = cost + self.cost_dice * mask_dice_cost(mask_logits, target_masks)
        if boxes is not None and targets.boxes is not None and (self.cost_bbox or self.cost_giou):
            pred, gt = boxes.float(), targets.boxes.float()
            l1 = torch.cdist(box_corners_to_center(pred), box_corners_to_center(gt), p=1)
            box_cost = self.cost_bbox * l1 - self.cost_giou * generalized_box_iou_3d(pred, gt)
            cost = cost + torch.nan_to_num(box_cost, nan=INVALID_COST, posinf=INVALID_COST, neginf=INVALID_COST)
        return cost

    @torch.no_grad()
    def match(
        self,
        span_logits: torch.Tensor,
        mask_logits: torch.Tensor,
        targets: SampleTargets,
        boxes: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(query_idx (G,), target_idx (G,)) long tensors of the optimal assignment of one sample.

        Arguments as in :meth:`cost_matrix`. With more objects than queries, only Q objects are matched.
        """
        if len(targets) == 0:
            empty = torch.zeros(0, dtype=torch.long, device=span_logits.device)
            return empty, empty
        cost = self.cost_matrix(span_logits, mask_logits, targets, boxes)
        rows, cols = linear_sum_assignment(cost.cpu().numpy())
        device = span_logits.device
        return torch.as_tensor(rows, dtype=torch.long, device=device), torch.as_tensor(
            cols, dtype=torch.long, device=device
        )
