"""Running a model over 3D scenes (the step between the model and the metrics).

The model never reads files and the metrics never run the model: these functions group records by scene, encode
each scene once for all its sentences and return what the metrics of :mod:`univlg.eval` score.

- :func:`predict_referrals`: referential grounding (SR3D, NR3D, ScanRefer, ScanQA's "relevant objects", synthetic)
  through :meth:`UniVLG.ground`; :func:`score_referrals` scores them.
- :func:`predict_instances`: instance segmentation in detection mode (reference 3.1 / 5.5): the prompt lists the
  class names ("chair. table. ..."), a (query, class) pair scores the mean sigmoid of the query's span logits over
  the class's tokens, the top-100 pairs become instances with mask = point logit > 0 and score = class score x the
  mean mask sigmoid inside the mask (:func:`detections_from_logits`).

2D images (RefCOCO) are in :mod:`univlg.predict_images`.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tqdm import tqdm

from univlg.data.datasets import detection_prompt
from univlg.data.records import Referral
from univlg.data.scene import Scene
from univlg.data.scene_store import SceneStore
from univlg.data.spans import tokens_in_spans
from univlg.errors import ConfigError, SceneError
from univlg.eval.grounding import GroundingReport, evaluate_grounding
from univlg.eval.instance_ap import ScenePrediction
from univlg.model.grounding import encode_scene, eval_mode, mean_span_probability

logger = logging.getLogger(__name__)


@dataclass
class GroundingPrediction:
    """The model's answer to one referral: mask (P,) bool over the scene's points (axis-aligned frame), its score."""

    referral: Referral
    mask: np.ndarray
    score: float


def predict_referrals(
    model,
    store: SceneStore,
    referrals: list[Referral],
    batch_size: int = 8,
    use_gt_spans: bool = True,
    max_frames: int | None = 450,
    progress: bool = False,
) -> list[GroundingPrediction]:
    """Ground every referral (in input order), one scene encoding per scene.

    ``use_gt_spans``: decode with the record's target span (as the training data annotates it); otherwise the
    model's head-noun finder picks the target phrase, as at test time without annotations.
    """
    by_scene: dict[str, list[int]] = defaultdict(list)
    for i, referral in enumerate(referrals):
        by_scene[referral.scene_id].append(i)
    results: list[GroundingPrediction | None] = [None] * len(referrals)
    for scene_id, indices in tqdm(by_scene.items(), desc="grounding", unit="scene", disable=not progress):
        scene = store.get(scene_id)
        group = [referrals[i] for i in indices]
        spans = [r.target_spans[0] if use_gt_spans and r.target_spans else None for r in group]
        hits = model.ground(scene, [r.utterance for r in group], spans, batch_size=batch_size, max_frames=max_frames)
        for i, referral, hit in zip(indices, group, hits, strict=True):
            results[i] = GroundingPrediction(referral=referral, mask=hit.mask, score=hit.score)
    return results


def score_referrals(store: SceneStore, predictions: list[GroundingPrediction]) -> GroundingReport:
    """Acc@k of ``predictions`` against the instance labels of their scenes (axis-aligned points)."""
    scenes = [store.get(p.referral.scene_id) for p in predictions]
    return evaluate_grounding(
        [p.mask for p in predictions],
        [s.points.xyz for s in scenes],
        [s.points.instance_ids for s in scenes],
        [p.referral.target_id for p in predictions],
        relations=[p.referral.relation or "all" for p in predictions],
    )


# --------------------------------------------------------------------------------------------- detection mode

DETECTION_TOP_K = 100  # (query, class) pairs kept per scene (reference 5.5)


def detection_prompts(tokenize, class_names: Sequence[str]) -> list[tuple[str, list[int], list[tuple[int, int]]]]:
    """The detection prompt(s) ``"chair. table. ..."`` listing ``class_names`` in the given order.

    One prompt when no class name loses a token to the tokenizer's truncation (the paper's setting); otherwise
    consecutive classes are split over as few prompts as fit, so every class is scored on all its tokens.

    Args:
        tokenize: texts -> :class:`~univlg.data.batch.TextBatch` (the model's ``tokenize``).
        class_names: C names.

    Returns:
        per prompt: (text, indices of its classes in ``class_names``, their character spans in the text).
    """

    def fits(indices: list[int]) -> bool:
        text, spans = detection_prompt([class_names[i] for i in indices])
        batch = tokenize([text])
        ends = batch.offsets[0][batch.attention_mask[0], 1]
        return bool(ends.numel()) and int(ends.max()) >= spans[class_names[indices[-1]]][1]

    groups: list[list[int]] = [[]]
    for index in range(len(class_names)):
        if not fits(groups[-1] + [index]):
            if not groups[-1] or not fits([index]):
                raise ConfigError(
                    f"class name {class_names[index]!r} does not fit the text encoder's token limit "
                    f"(text_encoder.max_length of the model)"
                )
            groups.append([])
        groups[-1].append(index)
    prompts = []
    for indices in groups:
        text, spans = detection_prompt([class_names[i] for i in indices])
        prompts.append((text, indices, [spans[class_names[i]] for i in indices]))
    if len(prompts) > 1:
        logger.warning("%d class names do not fit one prompt; using %d prompts", len(class_names), len(prompts))
    return prompts


def detections_from_logits(
    class_scores: torch.Tensor, point_logits: torch.Tensor, class_ids: Sequence[int], top_k: int = DETECTION_TOP_K
) -> ScenePrediction:
    """The top-``top_k`` (query, class) pairs as instances (reference 5.5, ``inference_scannet_ghost``).

    Pairs are ranked by class score over the flattened (Q, C) matrix; a pair's mask is its query's point
    logits > 0; its score is class score x the mean sigmoid of the point logits inside the mask (0 for an empty
    mask).

    Args:
        class_scores: (Q, C) float; point_logits: (Q, P) float (-inf at points the model did not see);
        class_ids: C dataset class ids (what the instance AP matches against the GT codes).

    Returns:
        a :class:`~univlg.eval.instance_ap.ScenePrediction` with K = min(top_k, Q * C) instances, best first.
    """
    q, c = class_scores.shape
    values, flat = class_scores.reshape(-1).topk(min(top_k, q * c))
    query, klass = flat // c, flat % c
    logits = point_logits[query]
    masks = logits > 0
    inside = masks.sum(dim=1)
    mask_score = torch.where(masks, logits.sigmoid(), torch.zeros_like(logits)).sum(dim=1) / inside.clamp_min(1)
    ids = torch.as_tensor(list(class_ids), dtype=torch.long)[klass.cpu()]
    return ScenePrediction(
        masks=masks.cpu().numpy(),
        classes=ids.numpy(),
        scores=(values * mask_score).cpu().numpy().astype(np.float64),
    )


def detection_logits(
    model, scene: Scene, class_names: Sequence[str], max_frames: int | None = 450
) -> tuple[torch.Tensor, torch.Tensor]:
    """Class scores and point logits of every query for the detection prompt(s), scene encoded once.

    Returns:
        class_scores: (Q * n_prompts, C) float (a query scores only the classes of its own prompt, 0 elsewhere);
        point_logits: (Q * n_prompts, P) float over the scene's points (axis-aligned scene, P = its points).
    """
    scene = scene.aligned()
    if scene.points is None:
        raise SceneError(f"scene {scene.scene_id}: no point set (mesh) to report instance masks on")
    prompts = detection_prompts(model.tokenize, class_names)
    scores, logits = [], []
    with eval_mode(model), torch.no_grad():
        visual, _ = encode_scene(model, scene, max_frames, None)
        text = model.tokenize([p[0] for p in prompts]).to(model.device)
        index = torch.zeros(len(prompts), dtype=torch.long, device=model.device)
        preds = model.decode(visual, text, visual_index=index, with_boxes=False)
        probs = preds.span_logits[-1].sigmoid()  # (n_prompts, Q, T)
        point_logits = preds.point_logits()  # (n_prompts, Q, P)
        offsets, valid = text.offsets.cpu().numpy(), text.attention_mask.cpu().numpy()
        for k, (_, indices, spans) in enumerate(prompts):
            tokens = np.stack([tokens_in_spans(offsets[k], [span]) & valid[k] for span in spans])
            full = probs.new_zeros(probs.shape[1], len(class_names))
            class_tokens = torch.from_numpy(tokens).to(probs.device)
            full[:, indices] = mean_span_probability(probs[k][None], class_tokens).T  # (Q, classes of the prompt)
            scores.append(full)
            logits.append(point_logits[k])
    return torch.cat(scores).cpu(), torch.cat(logits).cpu()


def predict_instances(
    model,
    store: SceneStore,
    scene_ids: Sequence[str],
    class_names: Sequence[str],
    class_ids: Sequence[int],
    top_k: int = DETECTION_TOP_K,
    max_frames: int | None = 450,
    progress: bool = False,
) -> list[ScenePrediction]:
    """Instance masks of every scene in detection mode: one :class:`ScenePrediction` per scene, masks over the
    scene's points (axis-aligned), classes from ``class_ids`` (parallel to ``class_names``)."""
    if len(class_names) != len(class_ids):
        raise ValueError(f"{len(class_names)} class names for {len(class_ids)} class ids")
    out = []
    for scene_id in tqdm(scene_ids, desc="instances", unit="scene", disable=not progress):
        scores, logits = detection_logits(model, store.get(scene_id), class_names, max_frames)
        out.append(detections_from_logits(scores, logits, class_ids, top_k))
    return out
