"""Per-sample training targets consumed by the matcher and the set criterion."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from univlg.model.answer_head import IGNORE


@dataclass
class SampleTargets:
    """Ground truth objects of one sample, G of them (the referred target first, then anchors).

    positive_map: (G, T) float, each row sums to 1 over the tokens that mention the object (T = the sample's
    text tokens, padding included); masks: (G, P) float in {0, 1} over the sample's output points or segments
    (P = the prediction's point count, padding included; padded columns are ignored through the valid mask);
    boxes: (G, 6) float (xmin, ymin, zmin, xmax, ymax, zmax) or None where boxes are not supervised (2D data);
    anchored: the objects after the first are the sentence's anchors (a referral), not further targets;
    distractors: (D, P) float in {0, 1}, the masks of the other objects of the target's class (referrals), or None.
    """

    positive_map: torch.Tensor
    masks: torch.Tensor
    boxes: torch.Tensor | None = None
    anchored: bool = False
    distractors: torch.Tensor | None = None

    def __post_init__(self) -> None:
        g = self.positive_map.shape[0]
        if self.masks.shape[0] != g or (self.boxes is not None and self.boxes.shape != (g, 6)):
            raise ValueError(
                f"targets disagree on the object count: positive_map {tuple(self.positive_map.shape)}, "
                f"masks {tuple(self.masks.shape)}, boxes {None if self.boxes is None else tuple(self.boxes.shape)}"
            )

    def __len__(self) -> int:
        return int(self.positive_map.shape[0])

    def to(self, device: torch.device | str) -> SampleTargets:
        boxes = None if self.boxes is None else self.boxes.to(device)
        distractors = None if self.distractors is None else self.distractors.to(device)
        return SampleTargets(self.positive_map.to(device), self.masks.to(device), boxes, self.anchored, distractors)


def relation_labels(infos: list[dict], classes: list[str]) -> torch.Tensor:
    """(B,) long index in ``classes`` of each utterance's reference type (``info["relation"]``), :data:`IGNORE`
    where it has none or one outside ``classes``."""
    index = {name: i for i, name in enumerate(classes)}
    return torch.tensor([index.get(info.get("relation") or "", IGNORE) for info in infos], dtype=torch.long)
