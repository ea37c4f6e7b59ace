"""Grounding sentences in a scene (reference 1.11): encode the scene once, decode the sentences in batches, pick
the query with the highest mean span probability over the target span, report its mask over the scene's points
(cut to its main connected parts when the model's ``output.grounding_component_cell`` is set).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from univlg.data.batch import collate_visual, scene_to_sample
from univlg.data.noun_phrase import find_target_span
from univlg.data.scene import Scene
from univlg.data.spans import tokens_in_spans
from univlg.geometry import boxes_from_masks
from univlg.geometry.components import main_parts

logger = logging.getLogger(__name__)


@dataclass
class Grounding:
    """The object one sentence refers to.

    sentence: the input; span: (start, end) character span of the target phrase used; phrase: its text;
    query: the chosen decoder query; score: its mean span probability (sigmoid) over the span's tokens;
    mask: (P,) bool over ``points`` (sigmoid(logit) > 0.5; only its main connected parts when the model's
    ``output.grounding_component_cell`` is set); box: (6,) float (xmin, ymin, zmin, xmax, ymax, zmax) of
    the masked points in the scene's axis-aligned frame (NaN when the mask is empty);
    points: (P, 3) float32 the points the mask refers to, axis-aligned: the scene's point set, or the lifted
    sensor cloud when the scene has none (the same array for every sentence of a call).
    """

    sentence: str
    span: tuple[int, int]
    phrase: str
    query: int
    score: float
    mask: np.ndarray
    box: np.ndarray
    points: np.ndarray


def target_token_mask(offsets: torch.Tensor, valid: torch.Tensor, spans: list[tuple[int, int]]) -> torch.Tensor:
    """The tokens of each sentence's target span: (n, T) bool.

    Args:
        offsets: (n, T, 2) long token character ranges; valid: (n, T) bool real tokens; spans: n (start, end).

    Returns:
        the real tokens overlapping each span; all real (non-special) tokens where the span has none (e.g. it was
        truncated away).
    """
    rows = []
    for tokens, ok, span in zip(offsets.cpu().numpy(), valid.cpu().numpy(), spans, strict=True):
        hit = tokens_in_spans(tokens, [span]) & ok
        if not hit.any():
            hit = ok & (tokens[:, 1] > tokens[:, 0])
        rows.append(hit)
    return torch.from_numpy(np.stack(rows))


def mean_span_probability(span_probs: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Each query's mean span probability over a set of tokens (how queries are ranked for a phrase).

    Args:
        span_probs: (n, Q, T) float, the sigmoid of the last layer's span logits (n may be 1 and broadcast);
        tokens: (n, T) bool, the tokens of the phrase of each row (a target span, or a class name).

    Returns:
        (n, Q) float; 0 for a row without tokens.
    """
    return (span_probs * tokens[:, None, :]).sum(-1) / tokens.sum(-1, keepdim=True).clamp_min(1)


def best_queries(span_logits: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The query of each sentence with the highest :func:`mean_span_probability` over its target tokens.

    Args:
        span_logits: (n, Q, T) float, the last decoder layer's span logits; tokens: (n, T) bool.

    Returns:
        best: (n,) long query index; scores: (n, Q) float mean span probabilities.
    """
    scores = mean_span_probability(span_logits.sigmoid(), tokens)
    return scores.argmax(dim=1), scores


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``model`` in eval mode, then give every submodule back the mode it had."""
    modes = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in modes:
            module.training = training


def check_sentences(sentences) -> list[str]:
    """``sentences`` as a list; TypeError for a single string (it would be read as one sentence per character)."""
    if isinstance(sentences, str):
        raise TypeError(f"sentences must be a list of strings, got the string {sentences[:60]!r}: pass [sentence]")
    return list(sentences)


def encode_scene(model, scene: Scene, max_frames: int | None, max_size: int | None):
    """Encode ``scene`` (axis-aligned) once: its :class:`VisualFeatures` (batch of 1) and the (P, 3) float32 points
    its masks are over. ``max_size`` None: the image encoder's ``max_image_size``. Call under ``no_grad``."""
    scene = scene.aligned()
    size = model.cfg.image_encoder.max_image_size if max_size is None else max_size
    sample = scene_to_sample(
        scene, model.patch_size, max_size=size, max_frames=max_frames, lifted_voxel_size=model.cfg.output.voxel_size
    )
    return model.encode_visual(collate_visual([sample]).to(model.device)), sample.points.numpy()


def ground_sentences(
    model,
    scene: Scene,
    sentences: list[str],
    spans: list[tuple[int, int] | None] | None = None,
    batch_size: int = 8,
    max_frames: int | None = 450,
    max_size: int | None = None,
) -> list[Grounding]:
    """Ground each sentence in ``scene``.

    Args:
        model: a :class:`~univlg.model.univlg.UniVLG`.
        scene: posed RGB-D frames (50-450 of them, non-finite poses and zero depth allowed) with or without a
            point set; it is used in its axis-aligned frame.
        sentences: utterances; spans: per sentence the (start, end) character span of the target phrase, or
            None to let :func:`~univlg.data.noun_phrase.find_target_span` pick the head noun.
        batch_size: sentences decoded together (the scene is encoded once for all of them).
        max_frames: frames kept (uniform subset) when the scene has more; max_size: longer image side in pixels
            (default: the image encoder's ``max_image_size``).

    Returns:
        one :class:`Grounding` per sentence, in order. The model runs in eval mode; its modes are restored after.

    Raises:
        TypeError: ``sentences`` is a single string.
    """
    sentences = check_sentences(sentences)
    spans = [None] * len(sentences) if spans is None else list(spans)
    if len(spans) != len(sentences):
        raise ValueError(f"{len(spans)} spans for {len(sentences)} sentences")
    spans = [find_target_span(s) if span is None else tuple(span) for s, span in zip(sentences, spans, strict=True)]
    cell, fraction = model.cfg.output.grounding_component_cell, model.cfg.output.grounding_component_fraction
    results = []
    with eval_mode(model), torch.no_grad():
        visual, points = encode_scene(model, scene, max_frames, max_size)
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            chunk_spans = spans[start : start + batch_size]
            text = model.tokenize(chunk).to(model.device)
            index = torch.zeros(len(chunk), dtype=torch.long, device=model.device)
            preds = model.decode(visual, text, visual_index=index, with_boxes=False)
            target = target_token_mask(text.offsets, text.attention_mask, chunk_spans).to(model.device)
            best, scores = best_queries(preds.span_logits[-1], target)
            logits = preds.point_logits()[torch.arange(len(chunk)), best]  # (n, P)
            masks = (logits > 0).cpu().numpy()
            if cell is not None:
                masks = np.stack([main_parts(points, mask, cell, fraction) for mask in masks])
            boxes = boxes_from_masks(torch.from_numpy(points), torch.from_numpy(masks)).numpy()
            for i, sentence in enumerate(chunk):
                span = chunk_spans[i]
                results.append(
                    Grounding(
                        sentence=sentence,
                        span=span,
                        phrase=sentence[span[0] : span[1]],
                        query=int(best[i]),
                        score=float(scores[i, best[i]]),
                        mask=masks[i],
                        box=boxes[i],
                        points=points,
                    )
                )
    logger.debug("grounded %d sentences in %s", len(results), scene.scene_id)
    return results
