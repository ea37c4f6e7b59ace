"""Where a grounding model fails: in its masks or in choosing among them.

For referrals of a benchmark file (SR3D CSV, ScanRefer JSON, ...) over scenes on disk, every query's mask
(point logit > 0) is compared with the target instance by point IoU:

- ``oracle``: some query's mask has IoU > 0.25 with the target (what a perfect chooser would reach);
- ``chosen``: the query the model picks (highest mean span probability over the target phrase: the annotated
  span, else the rule-based head noun) has IoU > 0.25;
- ``chosen_on_target_class`` / ``chosen_on_anchor``: the instance covering most of the chosen mask has the
  target's class / is one of the referral's anchors; ``chosen_empty``: the chosen mask has no point;
- for referrals with anchors, of a model with a relation head: ``anchor_covered``: some query's mask has IoU >
  0.25 with an anchor; ``head_anchor_on_anchor``: the query the head weighs most as the anchor
  (``Predictions.anchor_logits``) lies mostly on an anchor; ``chosen_with_true_anchors``: the chosen query has
  IoU > 0.25 when the head's relation score is recomputed with the true anchors (its anchor weights spread evenly
  over the query of best IoU with each covered anchor) in place of its own (what perfect anchor finding would
  give; referrals without anchors, or whose anchors no query covers, keep their own choice).

Each rate is over the referrals it applies to (``*_referrals`` counts them).

Usage (the synthetic validation split, 15 scenes, at most 12 referrals each)::

    .venv/bin/python benchmarks/query_coverage.py --model checkpoints/tiny-synth \\
        --scans data/synth/scans --annotations data/synth/referit3d/sr3d_val.csv --scenes 15
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from univlg.benchmark_data import read_benchmark_referrals
from univlg.data.noun_phrase import find_target_span
from univlg.data.records import Referral
from univlg.data.scene import Scene
from univlg.data.scene_store import SceneStore
from univlg.model.anchors import sample_frame
from univlg.model.grounding import best_queries, encode_scene, eval_mode, target_token_mask
from univlg.model.predictions import Predictions
from univlg.model.relation_head import relation_features
from univlg.model.spatial_attention import pair_features, query_geometry
from univlg.model.univlg import UniVLG

logger = logging.getLogger("query_coverage")
IOU = 0.25
MAX_FRAMES = 450  # as UniVLG.ground


def dominant_instance(instance_ids: torch.Tensor, mask: torch.Tensor) -> int:
    """The instance id covering most points of ``mask`` (P,) bool; -1 for an empty mask."""
    ids, counts = torch.unique(instance_ids[mask], return_counts=True)
    return int(ids[counts.argmax()]) if len(ids) else -1


def choose_with_true_anchors(
    preds: Predictions, tokens: torch.Tensor, anchor_ious: list[torch.Tensor | None]
) -> torch.Tensor:
    """The query grounding would pick, (n,) long, with the relation head's score recomputed from the true anchors:
    its anchor weights spread evenly over the query of best IoU with each anchor some query covers (IoU > 0.25),
    from the same geometry and sentence weights the head used; a referral without such an anchor keeps the head's
    own score. tokens: (n, T) bool target tokens; anchor_ious: per referral (A, Q) IoU of each query's mask with
    each anchor, None without anchors."""
    true_anchors = torch.zeros(preds.anchor_logits.shape[1:])
    for i, ious in enumerate(anchor_ious):
        for anchor_iou in () if ious is None else ious:
            if anchor_iou.max() > IOU:
                true_anchors[i, anchor_iou.argmax()] += 1.0
    true_anchors = true_anchors.to(preds.anchor_logits.device)
    count = true_anchors.sum(-1, keepdim=True)
    visible = preds.unit_valid | ~preds.unit_valid.any(1, keepdim=True)
    centre, spread = sample_frame(preds.unit_xyz, preds.unit_valid)
    centroids, log_extent = query_geometry(preds.mask_logits[-1], preds.unit_xyz, visible, centre, spread)
    pairs = pair_features(centroids, log_extent)
    own = relation_features(preds.anchor_logits[-1].softmax(-1), pairs, centroids, log_extent)
    true = relation_features(true_anchors / count.clamp_min(1), pairs, centroids, log_extent)
    change = ((true - own) * preds.geometry_weights[-1][:, None, :]).sum(-1)  # the score is linear in the features
    return best_queries(preds.span_logits[-1] + torch.where(count > 0, change, 0.0)[..., None], tokens)[0]


def scene_rows(model: UniVLG, scene: Scene, referrals: list[Referral]) -> list[dict]:
    """One row of booleans per referral of ``scene`` (the fields of the module docstring)."""
    scene = scene.aligned()
    instance_ids = torch.from_numpy(scene.points.instance_ids.astype(np.int64))
    with eval_mode(model), torch.no_grad():
        visual, _ = encode_scene(model, scene, MAX_FRAMES, None)
        text = model.tokenize([r.utterance for r in referrals]).to(model.device)
        index = torch.zeros(len(referrals), dtype=torch.long, device=model.device)
        preds = model.decode(visual, text, visual_index=index, with_boxes=False)
        spans = [r.target_spans[0] if r.target_spans else find_target_span(r.utterance) for r in referrals]
        tokens = target_token_mask(text.offsets, text.attention_mask, spans)
        chosen, _ = best_queries(preds.span_logits[-1], tokens.to(model.device))
        masks = (preds.point_logits() > 0).cpu()  # (n, Q, P)
        relation_head = preds.anchor_logits is not None
        if relation_head:
            anchor_ious = [
                torch.stack([mask_iou(masks[i], instance_ids == a) for a in r.anchor_ids]) if r.anchor_ids else None
                for i, r in enumerate(referrals)
            ]  # per referral (A, Q)
            chosen_true = choose_with_true_anchors(preds, tokens.to(model.device), anchor_ious)
    rows = []
    for i, referral in enumerate(referrals):
        iou = mask_iou(masks[i], instance_ids == referral.target_id)
        pick = int(chosen[i])
        covering = dominant_instance(instance_ids, masks[i, pick])
        target_class = scene.objects.get(referral.target_id)
        row = {
            "oracle": bool(iou.max() > IOU),
            "chosen": bool(iou[pick] > IOU),
            "chosen_on_target_class": target_class is not None and scene.objects.get(covering) == target_class,
            "chosen_on_anchor": covering in referral.anchor_ids,
            "chosen_empty": not bool(masks[i, pick].any()),
        }
        if relation_head:
            row["chosen_with_true_anchors"] = bool(iou[int(chosen_true[i])] > IOU)
        if relation_head and referral.anchor_ids:
            head_anchor = int(preds.anchor_logits[-1, i].argmax())
            row["anchor_covered"] = bool(anchor_ious[i].max() > IOU)
            row["head_anchor_on_anchor"] = dominant_instance(instance_ids, masks[i, head_anchor]) in referral.anchor_ids
        rows.append(row)
    return rows


def mask_iou(masks: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
    """Point IoU of each mask (Q, P) bool with one instance's points (P,) bool -> (Q,)."""
    return (masks & instance).sum(1) / (masks | instance).sum(1).clamp_min(1)


def summarise(rows: list[dict]) -> dict:
    """The mean of each field over the rows that have it, and how many rows had it."""
    summary: dict = {"referrals": len(rows)}
    for key in dict.fromkeys(k for row in rows for k in row):
        values = [row[key] for row in rows if key in row]
        summary[key] = float(np.mean(values))
        if len(values) != len(rows):
            summary[f"{key}_referrals"] = len(values)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a saved model folder (UniVLG.save_pretrained)")
    parser.add_argument("--scans", required=True, help="folder of scan folders")
    parser.add_argument("--annotations", required=True, help="referral file (SR3D/NR3D CSV, ScanRefer JSON)")
    parser.add_argument("--scenes", type=int, default=15, help="first N scenes of the file")
    parser.add_argument("--per-scene", type=int, default=12, help="first K referrals of each scene")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    model = UniVLG.from_pretrained(args.model)
    by_scene: dict[str, list[Referral]] = defaultdict(list)
    for referral in read_benchmark_referrals(Path(args.annotations)):
        by_scene[referral.scene_id].append(referral)
    store = SceneStore(args.scans)
    rows = []
    for scene_id in tqdm(list(by_scene)[: args.scenes], desc="scenes", unit="scene"):
        rows += scene_rows(model, store.get(scene_id), by_scene[scene_id][: args.per_scene])
    if not rows:
        raise SystemExit(f"{args.annotations}: no referral to score")
    logger.info("%s", json.dumps(summarise(rows), indent=2))


if __name__ == "__main__":
    main()
