"""``univlg demo``: generate a few unseen synthetic rooms and ground their sentences with the shipped model."""

from __future__ import annotations

import argparse
from pathlib import Path

from univlg.errors import CheckpointError

HELP = "ground sentences in freshly generated synthetic rooms with the shipped checkpoint and print the results"

DEMO_SEED = 2026  # outside the training data's seed (configs/tiny_synth.yaml uses seed 0)
DEFAULT_CHECKPOINT = "checkpoints/tiny-synth"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        default=DEFAULT_CHECKPOINT,
        help=f"model folder (default: the shipped one, {DEFAULT_CHECKPOINT})",
    )
    parser.add_argument("--scenes", type=int, default=3, help="rooms to generate (default 3)")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help=f"generation seed (default {DEMO_SEED})")
    parser.add_argument(
        "--out", help="where rooms, results and views go (default runs/demo/seed<SEED>, one folder per seed)"
    )
    parser.add_argument("--sentences", type=int, default=8, help="sentences shown per room (default 8)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when available, else the CPU), cpu, cuda[:N]")


def predicted_object(mask, instance_ids) -> int:
    """The instance holding most of the predicted points: ``mask`` (P,) bool over the scene points,
    ``instance_ids`` (P,) int (-1 for background). -1 for an empty mask or one on background only."""
    import numpy as np

    ids = instance_ids[mask]
    ids = ids[ids >= 0]
    return int(np.bincount(ids).argmax()) if ids.size else -1


def run(args: argparse.Namespace) -> str:
    from univlg.data.formats.referit3d import read_sr3d_csv
    from univlg.data.scene_store import SceneStore
    from univlg.data.synthetic.generate import generate
    from univlg.device import resolve_device
    from univlg.eval.grounding import mask_box
    from univlg.model import UniVLG
    from univlg.predict import predict_referrals, score_referrals
    from univlg.viz.scene_view import scene_html

    if not (Path(args.checkpoint) / "config.json").is_file():
        raise CheckpointError(
            f"{args.checkpoint}: no checkpoint there (expected config.json + model.safetensors). The repository "
            f"ships the trained model in {DEFAULT_CHECKPOINT} (run the demo from the repository root); or train "
            "one with `univlg train --config configs/tiny_synth.yaml` then `--config configs/tiny_synth_rank.yaml` "
            "(data: see the first file) and pass --checkpoint runs/tiny_synth_rank/model"
        )
    out = Path(args.out) if args.out is not None else Path("runs") / "demo" / f"seed{args.seed}"
    generate(out / "rooms", {"test": args.scenes}, seed=args.seed, progress=True)
    store = SceneStore(out / "rooms" / "scans")
    model = UniVLG.from_pretrained(args.checkpoint, map_location=resolve_device(args.device))
    referrals = read_sr3d_csv(out / "rooms" / "referit3d" / "sr3d_test.csv")
    predictions = predict_referrals(model, store, referrals, progress=True)
    report = score_referrals(store, predictions)
    lines = [f"UniVLG demo: {args.checkpoint} on {args.scenes} new synthetic rooms (seed {args.seed})", ""]
    header = f"{'sentence':<58} {'true':>10} {'predicted':>12} {'IoU':>5}"
    shown = {}
    for prediction, iou in zip(predictions, report.ious, strict=True):
        referral = prediction.referral
        if shown.get(referral.scene_id, 0) >= args.sentences:
            continue
        shown[referral.scene_id] = shown.get(referral.scene_id, 0) + 1
        if shown[referral.scene_id] == 1:
            lines += [f"room {referral.scene_id}", header]
        scene = store.get(referral.scene_id)
        guess = predicted_object(prediction.mask, scene.points.instance_ids)
        truth = f"{scene.objects[referral.target_id]} #{referral.target_id}"
        label = f"{scene.objects.get(guess, 'none')} #{guess}" if guess >= 0 else "nothing"
        mark = "ok" if iou > 0.25 else "--"
        lines.append(f"{referral.utterance[:58]:<58} {truth:>10} {label:>12} {iou:5.2f} {mark}")
    views = []
    for scene_id in shown:
        scene = store.get(scene_id)
        chosen = [p for p in predictions if p.referral.scene_id == scene_id][:3]
        marks = [
            {
                "mask": p.mask,
                "box": mask_box(scene.points.xyz, p.mask),
                "sentence": p.referral.utterance,
                "score": p.score,
            }
            for p in chosen
        ]
        views.append(scene_html(out / f"{scene_id}.html", scene, marks).path)
    acc = report.accuracy
    lines += [
        "",
        f"accuracy over all {len(predictions)} sentences: Acc@0.25 {acc['acc@0.25']:.1%}, Acc@0.5 {acc['acc@0.5']:.1%}",
        "3D views (open in a browser): " + ", ".join(str(v) for v in views),
    ]
    return "\n".join(lines)
