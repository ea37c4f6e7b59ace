"""Collating training samples: visual padding, tokenisation, positive maps (UniVLG reference 1.11, 3.1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from univlg.data.batch import Batch, TextBatch, collate_visual
from univlg.data.datasets import TrainingSample
from univlg.data.spans import positive_map


@dataclass
class TrainingBatch:
    """A model :class:`Batch` and, per sample, its ground truth.

    positive_maps[b]: (G_b, T) float rows summing to 1 over each object's tokens; point_masks[b]: (G_b, P_b) bool
    over the sample's own output points (unpadded); boxes[b]: (G_b, 6) or None (images); infos: sample ids;
    ``batch.answer_labels`` carries the answers when a sample has one and an answer tokenizer was given.
    """

    batch: Batch
    positive_maps: list[torch.Tensor]
    point_masks: list[torch.Tensor]
    boxes: list[torch.Tensor | None]
    infos: list[dict]

    def to(self, device) -> TrainingBatch:
        return TrainingBatch(
            batch=self.batch.to(device),
            positive_maps=[m.to(device) for m in self.positive_maps],
            point_masks=[m.to(device) for m in self.point_masks],
            boxes=[None if b is None else b.to(device) for b in self.boxes],
            infos=self.infos,
        )


def collate_training(
    samples: list[TrainingSample],
    tokenize: Callable[[list[str]], TextBatch],
    answer_labels: Callable[[list[str | None]], torch.Tensor] | None = None,
) -> TrainingBatch:
    """Pad visual samples into one batch, tokenise the texts with the model's ``tokenize`` and map spans to tokens.
    ``answer_labels`` (the generation head's ``labels``) turns the samples' answers into (B, A) labels when some
    sample has one; without it answers are not used.

    Objects whose spans were truncated away by the tokenizer keep an all-zero positive-map row (they still get
    masks; their span loss has no positive token).
    """
    text = tokenize([s.text for s in samples])
    num_tokens = text.input_ids.shape[1]
    maps = [torch.from_numpy(positive_map(text.offsets[b].numpy(), s.spans, num_tokens)) for b, s in enumerate(samples)]
    answers = [s.answer for s in samples]
    labels = answer_labels(answers) if answer_labels is not None and any(a is not None for a in answers) else None
    return TrainingBatch(
        batch=Batch(visual=collate_visual([s.visual for s in samples]), text=text, answer_labels=labels),
        positive_maps=maps,
        point_masks=[s.point_masks for s in samples],
        boxes=[s.boxes for s in samples],
        infos=[s.info for s in samples],
    )
