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
    """A model :class:`Batch` and, per utterance, its ground truth.

    Per utterance b (one per sample, or more with ``batch.visual_index``): positive_maps[b]: (G_b, T) float rows
    summing to 1 over each object's tokens; point_masks[b]: (G_b, P_b) bool over its visual sample's own output
    points (unpadded); boxes[b]: (G_b, 6) or None (images); infos: utterance ids; anchored[b]: its objects after
    the first are the sentence's anchors (``TrainingSample.anchored``); distractor_masks[b]: (D_b, P_b) bool masks
    of the other visible objects of its target's class, or None (``TrainingSample.distractor_masks``);
    ``batch.answer_labels`` carries the answers when a sample has one and an answer tokenizer was given.
    """

    batch: Batch
    positive_maps: list[torch.Tensor]
    point_masks: list[torch.Tensor]
    boxes: list[torch.Tensor | None]
    infos: list[dict]
    anchored: list[bool]
    distractor_masks: list[torch.Tensor | None]

    def to(self, device) -> TrainingBatch:
        """This batch with every tensor on ``device`` (infos unchanged)."""
        return TrainingBatch(
            batch=self.batch.to(device),
            positive_maps=[m.to(device) for m in self.positive_maps],
            point_masks=[m.to(device) for m in self.point_masks],
            boxes=[None if b is None else b.to(device) for b in self.boxes],
            infos=self.infos,
            anchored=self.anchored,
            distractor_masks=[None if m is None else m.to(device) for m in self.distractor_masks],
        )


def collate_training(
    samples: list[TrainingSample],
    tokenize: Callable[[list[str]], TextBatch],
    answer_labels: Callable[[list[str | None]], torch.Tensor] | None = None,
) -> TrainingBatch:
    """Pad visual samples into one batch, tokenise the texts with the model's ``tokenize`` and map spans to tokens.
    ``answer_labels`` (the generation head's ``labels``) turns the utterances' answers into (B_text, A) labels
    (one row per utterance) when some utterance has one; without it answers are not used.

    A sample's ``companions`` follow it as more utterances about its visual sample (``batch.visual_index``; None
    when no sample has companions): the ground-truth lists then run over utterances, not visual samples.
    Objects whose spans were truncated away by the tokenizer keep an all-zero positive-map row (they still get
    masks; their span loss has no positive token).
    """
    utterances = [u for s in samples for u in (s, *s.companions)]
    visual_index = None
    if len(utterances) > len(samples):
        visual_index = torch.tensor([b for b, s in enumerate(samples) for _ in range(1 + len(s.companions))])
    text = tokenize([u.text for u in utterances])
    num_tokens = text.input_ids.shape[1]
    maps = [
        torch.from_numpy(positive_map(text.offsets[i].numpy(), u.spans, num_tokens)) for i, u in enumerate(utterances)
    ]
    answers = [u.answer for u in utterances]
    labels = answer_labels(answers) if answer_labels is not None and any(a is not None for a in answers) else None
    visual = collate_visual([s.visual for s in samples])
    return TrainingBatch(
        batch=Batch(visual=visual, text=text, visual_index=visual_index, answer_labels=labels),
        positive_maps=maps,
        point_masks=[u.point_masks for u in utterances],
        boxes=[u.boxes for u in utterances],
        infos=[u.info for u in utterances],
        anchored=[u.anchored for u in utterances],
        distractor_masks=[u.distractor_masks for u in utterances],
    )
