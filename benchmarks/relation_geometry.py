"""How far geometry alone tells a referral's target from the other objects of its class.

For SR3D-style referrals over scenes on disk, each candidate (the target and every other object of its class) is
described by the relation head's geometry features (:func:`univlg.model.relation_head.geometry_features`)
computed on the true objects: the centroid and extent of their points, seen from the true anchors, in the frame
of the scene's points (their centre and spread, as the head's sample frame). Two scorers pick one candidate per
referral:

- ``fitted``: one linear scorer per reference type, fitted (softmax cross-entropy over the candidates) on the
  referrals of ``--fit-annotations``: what the head's features allow with per-type weights;
- ``model`` (with ``--model``): the model's own weights for the sentence, the relation head's ``g`` at the last
  prediction when the sentence is decoded against the scene: whether training taught it the relations.

Prints, per reference type, the accuracy within the class and chance (the mean of 1 / candidates).

Usage (fit on 40 training rooms, score the 30 validation rooms)::

    .venv/bin/python benchmarks/relation_geometry.py --scans data/synth/scans \\
        --fit-annotations data/synth/referit3d/sr3d_train.csv --fit-scenes 40 \\
        --annotations data/synth/referit3d/sr3d_val.csv --model checkpoints/tiny-synth
"""

from __future__ import annotations

import argparse
import logging
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from univlg.benchmark_data import read_benchmark_referrals
from univlg.data.records import Referral
from univlg.data.scene import Scene
from univlg.data.scene_store import SceneStore
from univlg.model.anchors import sample_frame
from univlg.model.grounding import encode_scene, eval_mode
from univlg.model.relation_head import NUM_GEOMETRY_FEATURES, anchored_geometry_features
from univlg.model.spatial_attention import mask_geometry
from univlg.model.univlg import UniVLG

logger = logging.getLogger("relation_geometry")
MAX_FRAMES = 450  # as UniVLG.ground
FIT_STEPS = 300


def candidate_features(
    scene: Scene, referral: Referral, xyz: torch.Tensor, centre: torch.Tensor, spread: torch.Tensor
) -> torch.Tensor | None:
    """(C, NUM_GEOMETRY_FEATURES) features of the target (row 0) and the other objects of its class, from the
    points of the (aligned) ``scene``: xyz (1, P, 3) and their frame, centre (1, 1, 3) and spread (1, 1, 1)
    (:func:`~univlg.model.anchors.sample_frame`); None when the target has no other object of its class."""
    target_class = scene.objects.get(referral.target_id)
    others = [o for o, name in scene.objects.items() if name == target_class and o != referral.target_id]
    anchors = [a for a in referral.anchor_ids if a != referral.target_id]
    if not others:
        return None
    ids = scene.points.instance_ids
    masks = torch.from_numpy(np.stack([ids == o for o in [referral.target_id, *others, *anchors]]).astype(np.float32))
    centroids, log_extent = mask_geometry(masks[None], xyz, centre, spread)
    return anchored_geometry_features(centroids[0], log_extent[0], 1 + len(others))


def scene_features(store: SceneStore, by_scene: dict[str, list[Referral]], scene_ids: list[str], desc: str):
    """[(referral, features)] of the referrals whose target has another object of its class, scene by scene."""
    rows = []
    for scene_id in tqdm(scene_ids, desc=desc, unit="scene"):
        scene = store.get(scene_id).aligned()
        xyz = torch.from_numpy(scene.points.xyz.astype(np.float32))[None]
        centre, spread = sample_frame(xyz, torch.ones(xyz.shape[:2], dtype=torch.bool))
        for referral in by_scene[scene_id]:
            features = candidate_features(scene, referral, xyz, centre, spread)
            if features is not None:
                rows.append((referral, features))
    return rows


def fit_weights(examples: list[torch.Tensor]) -> torch.Tensor:
    """(F,) weights maximising the target's (row 0) softmax probability over each example's rows (small L2)."""
    weights = torch.zeros(NUM_GEOMETRY_FEATURES, requires_grad=True)
    optimizer = torch.optim.Adam([weights], lr=0.05)
    for _ in range(FIT_STEPS):
        loss = sum((f @ weights).logsumexp(0) - (f @ weights)[0] for f in examples) / max(len(examples), 1)
        loss = loss + 1e-3 * weights.square().sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return weights.detach()


def picks_target(scores: torch.Tensor) -> float:
    """1.0 when the target (row 0) scores strictly above every other candidate (a tie is a miss), else 0.0."""
    return float(scores[0] > scores[1:].max())


def model_weights(model: UniVLG, scene: Scene, referrals: list[Referral]) -> torch.Tensor:
    """(n, F) the relation head's geometry weights of each referral's sentence at the last prediction."""
    with eval_mode(model), torch.no_grad():
        visual, _ = encode_scene(model, scene.aligned(), MAX_FRAMES, None)
        text = model.tokenize([r.utterance for r in referrals]).to(model.device)
        index = torch.zeros(len(referrals), dtype=torch.long, device=model.device)
        preds = model.decode(visual, text, visual_index=index, with_boxes=False)
    if preds.geometry_weights is None:
        raise SystemExit("--model has no relation head (model.decoder.relation_head)")
    return preds.geometry_weights[-1].cpu()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", required=True, help="folder of scan folders")
    parser.add_argument("--annotations", required=True, help="SR3D-style CSV of the referrals to score")
    parser.add_argument("--fit-annotations", required=True, help="SR3D-style CSV to fit the per-type scorers on")
    parser.add_argument("--fit-scenes", type=int, default=40, help="first N scenes of the fitting file")
    parser.add_argument("--scenes", type=int, default=30, help="first N scenes of the scored file")
    parser.add_argument("--model", help="a saved model folder with a relation head, to score its own weights")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    store = SceneStore(args.scans, capacity=4)
    groups = {}
    for name, path in (("fit", args.fit_annotations), ("score", args.annotations)):
        by_scene: dict[str, list[Referral]] = defaultdict(list)
        for referral in read_benchmark_referrals(Path(path)):
            by_scene[referral.scene_id].append(referral)
        groups[name] = by_scene
    fit_scenes = list(groups["fit"])[: args.fit_scenes]
    score_scenes = list(groups["score"])[: args.scenes]
    fit_rows = scene_features(store, groups["fit"], fit_scenes, "fit scenes")
    score_rows = scene_features(store, groups["score"], score_scenes, "scored scenes")
    if not score_rows:
        raise SystemExit(f"{args.annotations}: no referral whose target has another object of its class")
    by_type = defaultdict(list)
    for referral, features in fit_rows:
        by_type[referral.relation].append(features)
    fitted = {relation: fit_weights(examples) for relation, examples in by_type.items()}
    learned: dict[int, torch.Tensor] = {}
    if args.model:
        model = UniVLG.from_pretrained(args.model)
        rows_by_scene = defaultdict(list)
        for i, (referral, _) in enumerate(score_rows):
            rows_by_scene[referral.scene_id].append(i)
        for scene_id, indices in tqdm(rows_by_scene.items(), desc="model", unit="scene"):
            weights = model_weights(model, store.get(scene_id), [score_rows[i][0] for i in indices])
            learned.update(zip(indices, weights, strict=True))
    table = defaultdict(lambda: defaultdict(list))
    zero = torch.zeros(NUM_GEOMETRY_FEATURES)  # a type absent from the fitting file: every candidate ties
    for i, (referral, features) in enumerate(score_rows):
        cell = table[referral.relation]
        cell["chance"].append(1 / len(features))
        cell["fitted"].append(picks_target(features @ fitted.get(referral.relation, zero)))
        if learned:
            cell["model"].append(picks_target(features @ learned[i]))
    columns = ["chance", "fitted"] + (["model"] if learned else [])
    logger.info("%-12s %5s %s", "relation", "n", " ".join(f"{c:>7s}" for c in columns))
    overall = {c: [v for cell in table.values() for v in cell[c]] for c in columns}
    for relation, cells in [*sorted(table.items()), ("all", overall)]:
        means = " ".join(f"{100 * np.mean(cells[c]):7.1f}" for c in columns)
        logger.info("%-12s %5d %s", relation, len(cells["chance"]), means)


if __name__ == "__main__":
    main()
