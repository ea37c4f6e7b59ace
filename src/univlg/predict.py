"""Running a model over language records (the step between the model and the metrics).

The model never reads files and the metrics never run the model: these functions group records by scene, encode
each scene once for all its sentences (:meth:`UniVLG.ground`) and return what the metrics of :mod:`univlg.eval`
score.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from univlg.data.records import Referral
from univlg.data.scene_store import SceneStore
from univlg.eval.grounding import GroundingReport, evaluate_grounding

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
