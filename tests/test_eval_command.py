"""``univlg eval`` end to end on the synthetic fixture with a random tiny model: the command's JSON against
independent computations (model outputs scored by hand), oracles (GT masks in place of the model -> perfect
scores through the whole command path), QA notes and clear errors."""

from __future__ import annotations

import csv
import hashlib
import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tests.conftest import require_realdata
from univlg.cli import main
from univlg.data.formats.coco import segmentation_mask
from univlg.data.formats.refcoco import read_refcoco
from univlg.data.formats.referit3d import read_sr3d_csv
from univlg.data.formats.scannet import read_color
from univlg.data.formats.sqa3d import write_sqa3d
from univlg.data.records import Question
from univlg.data.scene import load_scene
from univlg.data.scene_store import SceneStore
from univlg.eval.instance_ap import instance_average_precision
from univlg.eval.refcoco import refcoco_box_accuracy, refcoco_mask_metrics
from univlg.model import UniVLG
from univlg.predict import predict_instances
from univlg.predict_images import predict_image_referrals


def run_eval(checkpoint, root, benchmark, tmp_path, *extra) -> dict:
    out = tmp_path / f"{benchmark}.json"
    argv = ["eval", "--checkpoint", str(checkpoint), "--benchmark", benchmark, "--data-root", str(root)]
    assert main([*argv, "--out", str(out), "--quiet", *extra]) == 0
    return json.loads(out.read_text())


def _box(points: np.ndarray) -> np.ndarray | None:
    return None if len(points) == 0 else np.concatenate([points.min(0), points.max(0)]).astype(np.float64)


def _box_iou(a, b) -> float:
    """3D box IoU written out (NaN when a box is missing)."""
    if a is None or b is None:
        return float("nan")
    inter = np.prod(np.clip(np.minimum(a[3:], b[3:]) - np.maximum(a[:3], b[:3]), 0, None))
    union = np.prod(a[3:] - a[:3]) + np.prod(b[3:] - b[:3]) - inter
    return float(inter / union) if union > 0 else 0.0


def _val_referrals(root):
    return [r for r in read_sr3d_csv(root / "referit3d" / "sr3d_val.csv") if r.meta.get("mentions_target_class", 1)]


def _nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def test_synthetic_grounding_matches_the_model_scored_by_hand(eval_checkpoint, synthetic_root, tmp_path, capsys):
    result = run_eval(eval_checkpoint, synthetic_root, "synthetic", tmp_path)
    table = capsys.readouterr().out
    referrals = _val_referrals(synthetic_root)
    model = UniVLG.from_pretrained(eval_checkpoint)
    ious, mask_ious = np.zeros(len(referrals)), np.zeros(len(referrals))
    for scene_id in sorted({r.scene_id for r in referrals}):
        indices = [i for i, r in enumerate(referrals) if r.scene_id == scene_id]
        scene = load_scene(synthetic_root / "scans" / scene_id).aligned()
        hits = model.ground(scene, [referrals[i].utterance for i in indices],
                            [referrals[i].target_spans[0] for i in indices])  # fmt: skip
        for i, hit in zip(indices, hits, strict=True):
            gt = scene.points.instance_ids == referrals[i].target_id
            ious[i] = _box_iou(_box(scene.points.xyz[hit.mask]), _box(scene.points.xyz[gt]))
            mask_ious[i] = np.count_nonzero(hit.mask & gt) / np.count_nonzero(hit.mask | gt)
    assert np.allclose(_nan(result["per_item"]["iou"]), ious, equal_nan=True, atol=1e-6)
    assert np.allclose(result["per_item"]["mask_iou"], mask_ious, atol=1e-9)
    assert np.isfinite(ious).any() and (ious > 0).any()  # the check is not vacuous: some boxes overlap
    grounding = result["metrics"]["grounding"]
    for t in (0.25, 0.5, 0.75):
        assert grounding["overall"][f"acc@{t:g}"] == pytest.approx(np.mean(np.nan_to_num(ious, nan=-1) > t))
        assert grounding["mask_iou"][f"acc@{t:g}"] == pytest.approx(np.mean(mask_ious > t))
    for relation in {r.relation for r in referrals}:
        chosen = np.array([r.relation == relation for r in referrals])
        row = grounding["relation"][relation]
        assert row["count"] == chosen.sum()
        assert row["acc@0.25"] == pytest.approx(np.mean(np.nan_to_num(ious[chosen], nan=-1) > 0.25))
    assert result["counts"]["referrals"] == len(referrals) and result["counts"]["scenes"] == 1
    assert "overall (box IoU)" in table and "relation: " in table


def test_mask_parts_setting_is_applied_recorded_and_can_be_switched_off(eval_checkpoint, synthetic_root, tmp_path):
    from tests.test_geometry_components import brute_force_parts

    model = UniVLG.from_pretrained(eval_checkpoint)
    model.cfg.output.grounding_component_cell = 0.1
    model.cfg.output.grounding_component_fraction = 0.5
    cut_checkpoint = model.save_pretrained(tmp_path / "cut")
    cut = run_eval(cut_checkpoint, synthetic_root, "synthetic", tmp_path, "--limit", "2")
    raw = run_eval(cut_checkpoint, synthetic_root, "synthetic", tmp_path, "--limit", "2", "--raw-masks")
    assert cut["settings"]["mask_parts"] == {"cell": 0.1, "min_fraction": 0.5}
    assert raw["settings"]["mask_parts"] is None
    referrals = _val_referrals(synthetic_root)[:2]  # masks small enough for the brute-force parts
    model.cfg.output.grounding_component_cell = None
    scene = load_scene(synthetic_root / "scans" / referrals[0].scene_id).aligned()
    hits = model.ground(scene, [r.utterance for r in referrals], [r.target_spans[0] for r in referrals])
    split = 0
    for k, (referral, hit) in enumerate(zip(referrals, hits, strict=True)):
        gt = scene.points.instance_ids == referral.target_id
        inside = np.flatnonzero(hit.mask)
        parts = brute_force_parts(scene.points.xyz[inside], 0.1)
        largest = max((len(part) for part in parts), default=0)
        kept = np.zeros_like(hit.mask)
        kept[[inside[i] for part in parts if len(part) >= 0.5 * largest for i in part]] = True
        split += kept.sum() < hit.mask.sum()
        assert cut["per_item"]["mask_iou"][k] == pytest.approx(
            np.count_nonzero(kept & gt) / np.count_nonzero(kept | gt)
        )
        assert raw["per_item"]["mask_iou"][k] == pytest.approx(
            np.count_nonzero(hit.mask & gt) / np.count_nonzero(hit.mask | gt)
        )
        expected_iou = _box_iou(_box(scene.points.xyz[kept]), _box(scene.points.xyz[gt]))
        assert np.allclose(_nan([cut["per_item"]["iou"][k]]), expected_iou, equal_nan=True, atol=1e-6)
    assert split > 0  # some mask had more than one part


def test_oracle_grounding_scores_one_through_the_command(eval_checkpoint, synthetic_root, tmp_path, monkeypatch):
    targets = {(r.scene_id, r.utterance): r.target_id for r in _val_referrals(synthetic_root)}

    def oracle_ground(self, scene, sentences, spans=None, batch_size=8, **options):
        ids = scene.points.instance_ids
        return [SimpleNamespace(mask=ids == targets[(scene.scene_id, s)], score=1.0) for s in sentences]

    monkeypatch.setattr(UniVLG, "ground", oracle_ground)
    grounding = run_eval(eval_checkpoint, synthetic_root, "synthetic", tmp_path)["metrics"]["grounding"]
    for key in ("overall", "mask_iou"):
        assert [grounding[key][f"acc@{t}"] for t in (0.25, 0.5, 0.75)] == [1.0, 1.0, 1.0]
    assert all(row["acc@0.5"] == 1.0 for row in grounding["relation"].values())


def _manifest_classes(root) -> tuple[list[str], list[int]]:
    table = json.loads((root / "manifest.json").read_text())["classes"]
    objects = [c for c in table if c["kind"] == "object"]
    return [c["name"] for c in objects], [c["id"] for c in objects]


def _gt_codes(scene, names, ids) -> np.ndarray:
    """GT codes written out: class id * 1000 + instance + 1 on points of objects of an evaluated class."""
    class_id = dict(zip(names, ids, strict=True))
    codes = np.zeros(len(scene.points), dtype=np.int64)
    for instance, label in scene.objects.items():
        if label in class_id:
            codes[scene.points.instance_ids == instance] = class_id[label] * 1000 + instance + 1
    return codes


def test_instance_ap_command_matches_the_api_run_by_hand(eval_checkpoint, synthetic_root, tmp_path):
    """Plumbing: the command's sharded, merged AP equals the library functions run in one loop (the metric itself
    is checked against hand-worked cases in test_eval_instance_ap.py and by the oracle test below)."""
    result = run_eval(eval_checkpoint, synthetic_root, "scannet200", tmp_path)
    names, ids = _manifest_classes(synthetic_root)
    model = UniVLG.from_pretrained(eval_checkpoint)
    store = SceneStore(synthetic_root / "scans")
    scene_ids = (synthetic_root / "splits" / "synth_val.txt").read_text().split()
    predictions = predict_instances(model, store, scene_ids, names, ids)
    assert all(len(p.scores) == 100 for p in predictions)
    expected = instance_average_precision(predictions, [_gt_codes(store.get(s), names, ids) for s in scene_ids],
                                          ids, names)  # fmt: skip
    metrics = result["metrics"]["instances"]
    for key in ("AP", "AP50", "AP25"):
        assert metrics[key] == pytest.approx(expected.overall[key], nan_ok=True)
    for name in names:
        for key, value in expected.per_class[name].items():
            assert (metrics["per_class"][name][key] is None) == np.isnan(value)
    assert result["counts"] == {"classes": len(names), "scenes": len(scene_ids)}


def test_oracle_instances_give_ap_one_through_the_command(eval_checkpoint, synthetic_root, tmp_path, monkeypatch):
    def oracle_logits(model, scene, class_names, max_frames=450):
        objects = [(i, class_names.index(label)) for i, label in scene.objects.items() if label in class_names]
        scores = torch.zeros(len(objects), len(class_names))
        logits = torch.full((len(objects), len(scene.points)), -5.0)
        for row, (instance, klass) in enumerate(objects):
            scores[row, klass] = 1.0
            logits[row, torch.from_numpy(scene.points.instance_ids == instance)] = 5.0
        return scores, logits

    monkeypatch.setattr("univlg.predict.detection_logits", oracle_logits)
    metrics = run_eval(eval_checkpoint, synthetic_root, "scannet200", tmp_path)["metrics"]["instances"]
    assert (metrics["AP"], metrics["AP50"], metrics["AP25"]) == (1.0, 1.0, 1.0)
    scene = load_scene(synthetic_root / "scans" / "synth_val_0000")
    present = {label for label in scene.objects.values()} & set(_manifest_classes(synthetic_root)[0])
    assert {n for n, row in metrics["per_class"].items() if row["AP"] is not None} <= present


def _image_referrals(root):
    return read_refcoco(root / "refcoco" / "refs(synth_val).p", root / "refcoco" / "instances_val.json", split="val")


def test_refcoco_command_matches_the_api_run_by_hand(eval_checkpoint, synthetic_root, tmp_path):
    """Plumbing: the command's numbers equal the library functions run in one loop (the metrics themselves are
    checked against hand-worked cases in their own tests and by the oracle test below)."""
    result = run_eval(eval_checkpoint, synthetic_root, "refcoco", tmp_path)
    referrals = _image_referrals(synthetic_root)
    model = UniVLG.from_pretrained(eval_checkpoint)
    scans = synthetic_root / "scans"
    predictions = predict_image_referrals(model, referrals, scans, SceneStore(scans))
    masks = [p.mask for p in predictions]
    assert all(p.lifted for p in predictions) and all(m.shape == (r.height, r.width) for m, r in zip(masks, referrals))
    box_accuracy, box_ious = refcoco_box_accuracy(masks, [r.box_xyxy for r in referrals])
    gt = [segmentation_mask(r.segmentation, r.height, r.width) for r in referrals]
    mask_metrics = refcoco_mask_metrics(masks, gt)
    metrics = result["metrics"]["refcoco"]
    assert metrics["box"] == pytest.approx(box_accuracy)
    assert result["per_item"]["box_iou"] == pytest.approx(box_ious.tolist())
    for key, value in mask_metrics.items():
        assert metrics["mask"][key] == pytest.approx(value)
    assert result["counts"] == {"sentences": len(referrals), "images": len({r.file_name for r in referrals}),
                                "lifted_sentences": len(referrals)}  # fmt: skip
    plain = run_eval(eval_checkpoint, synthetic_root, "refcoco", tmp_path, "--plain-2d", "--upsample", "nearest")
    assert plain["counts"]["lifted_sentences"] == 0 and plain["settings"]["upsample"] == "nearest"


def test_oracle_image_masks_give_full_mask_iou(eval_checkpoint, synthetic_root, tmp_path, monkeypatch):
    referrals = _image_referrals(synthetic_root)
    truth = {}
    for r in referrals:
        image = hashlib.md5(read_color(synthetic_root / "scans" / r.file_name).tobytes()).hexdigest()
        truth[(image, r.utterance)] = segmentation_mask(r.segmentation, r.height, r.width)

    def oracle(model, rgb, sentences, spans, point_map=None, batch_size=8, upsample="bilinear"):
        image = hashlib.md5(rgb.tobytes()).hexdigest()
        return [(truth[(image, s)], 1.0) for s in sentences]

    monkeypatch.setattr("univlg.predict_images.ground_image", oracle)
    metrics = run_eval(eval_checkpoint, synthetic_root, "refcoco", tmp_path)["metrics"]["refcoco"]
    assert metrics["mask"]["mIoU"] == 1.0 and metrics["mask"]["cIoU"] == 1.0 and metrics["box"]["acc@0.25"] == 1.0


def test_scanqa_grounds_relevant_objects_and_says_answers_need_a_head(eval_checkpoint, synthetic_root, tmp_path):
    result = run_eval(eval_checkpoint, synthetic_root, "scanqa", tmp_path)
    questions = json.loads((synthetic_root / "scanqa" / "ScanQA_v1.0_val.json").read_text())
    assert result["counts"]["referrals"] == sum(1 for q in questions if q["object_ids"])
    assert result["metrics"]["answers"] is None and "overall" in result["metrics"]["grounding"]
    assert any("generation head" in note for note in result["notes"])


def test_scanqa_scores_the_answers_of_a_model_with_a_generation_head(synthetic_root, tmp_path, monkeypatch):
    import dataclasses

    from tests.test_model_fixtures import micro_config
    from univlg.config import AnswerHeadConfig
    from univlg.model import build_model

    head = AnswerHeadConfig(enabled=True, dim=32, num_layers=1, num_heads=2, ffn_dim=64, max_new_tokens=2)
    checkpoint = build_model(dataclasses.replace(micro_config(), answer=head)).save_pretrained(tmp_path / "qa")
    rows = [r for r in json.loads((synthetic_root / "scanqa" / "ScanQA_v1.0_val.json").read_text()) if r["object_ids"]]
    # every other question gets its first reference answer, the rest a wrong one
    written = {
        (r["scene_id"], r["question"]): r["answers"][0] if i % 2 == 0 else "not an answer" for i, r in enumerate(rows)
    }

    def fake_answer(model, scene, questions, batch_size, max_frames):
        assert (batch_size, max_frames) == (8, 450)  # univlg eval's defaults, passed through
        return [written[(scene.scene_id, q)] for q in questions]

    monkeypatch.setattr("univlg.model.univlg.UniVLG.answer", fake_answer)
    result = run_eval(checkpoint, synthetic_root, "scanqa", tmp_path)
    answers = result["metrics"]["answers"]
    expected = np.mean([written[(r["scene_id"], r["question"])] in r["answers"] for r in rows])
    assert answers["count"] == len(rows) and 0 < expected < 1
    assert answers["EM"] == pytest.approx(expected)
    assert result["per_item"]["answer"] == [written[(r["scene_id"], r["question"])] for r in rows]


def test_sqa3d_reports_what_it_can_without_error(eval_checkpoint, tmp_path, capsys):
    questions = [Question("synth_val_0000", "What is on my left?", ("sofa",), situation="I sit on the bed."),
                 Question("synth_val_0000", "Is the lamp on?", ("yes",), situation="I face the desk.")]  # fmt: skip
    sqa = tmp_path / "root" / "sqa3d"
    write_sqa3d(sqa / "v1_balanced_questions_val_scannetv2.json",
                sqa / "v1_balanced_sqa_annotations_val_scannetv2.json", questions)  # fmt: skip
    result = run_eval(eval_checkpoint, tmp_path / "root", "sqa3d", tmp_path)
    assert result["counts"] == {"questions": 2} and result["metrics"] == {"answers": None}
    assert "generation head" in capsys.readouterr().out


def test_sqa3d_scores_answers_written_after_the_situation(synthetic_root, tmp_path, monkeypatch):
    import dataclasses
    import shutil

    from tests.test_model_fixtures import micro_config
    from univlg.config import AnswerHeadConfig
    from univlg.model import build_model

    head = AnswerHeadConfig(enabled=True, dim=32, num_layers=1, num_heads=2, ffn_dim=64, max_new_tokens=2)
    checkpoint = build_model(dataclasses.replace(micro_config(), answer=head)).save_pretrained(tmp_path / "qa")
    root = tmp_path / "root"
    shutil.copytree(synthetic_root / "scans" / "synth_val_0000", root / "scans" / "synth_val_0000")
    scene, desk = "synth_val_0000", "I face the desk."
    questions = [Question(scene, "What is on my left?", ("sofa",), situation="I sit on the bed."),
                 Question(scene, "Is the lamp on?", ("yes", "yes it is"), situation=desk),
                 Question(scene, "How many chairs are there?", ("two",), situation=desk)]  # fmt: skip
    write_sqa3d(root / "sqa3d" / "v1_balanced_questions_val_scannetv2.json",
                root / "sqa3d" / "v1_balanced_sqa_annotations_val_scannetv2.json", questions)  # fmt: skip
    written = {"What is on my left?": "sofa", "Is the lamp on?": "no", "How many chairs are there?": "two"}
    seen = []

    def fake_answer(model, scene, texts, batch_size, max_frames, situations):
        seen.extend(zip(texts, situations, strict=True))
        return [written[t] for t in texts]

    monkeypatch.setattr("univlg.model.univlg.UniVLG.answer", fake_answer)
    result = run_eval(checkpoint, root, "sqa3d", tmp_path)
    answers = result["metrics"]["answers"]
    assert sorted(seen) == sorted((q.question, q.situation) for q in questions)
    assert answers["count"] == 3 and answers["EM"] == pytest.approx(2 / 3)
    assert answers["EM_by_type"]["is"]["EM"] == 0.0 and answers["EM_by_type"]["what"]["EM"] == 1.0
    assert result["per_item"]["answer"] == ["sofa", "no", "two"]

    (root / "sqa3d" / "v1_balanced_sqa_annotations_val_scannetv2.json").unlink()  # a hidden test split
    hidden = run_eval(checkpoint, root, "sqa3d", tmp_path)
    assert hidden["metrics"] == {"answers": None} and any("not scored" in n for n in hidden["notes"])
    assert hidden["per_item"]["answer"] == ["sofa", "no", "two"]


def test_scanrefer_unique_multiple_from_the_labels_file(eval_checkpoint, synthetic_root, tmp_path):
    labels = require_realdata("scannet_meta", "scannetv2-labels.combined.tsv")
    result = run_eval(eval_checkpoint, synthetic_root, "scanrefer", tmp_path, "--labels", str(labels))
    unique = result["metrics"]["grounding"]["unique"]
    assert set(unique) <= {"unique", "multiple"} and sum(g["count"] for g in unique.values()) == len(
        result["per_item"]["iou"]
    )


def test_missing_files_are_reported_with_their_paths(eval_checkpoint, synthetic_root, tmp_path, capsys):
    argv = ["eval", "--checkpoint", str(eval_checkpoint), "--data-root", str(synthetic_root), "--quiet"]
    assert main([*argv, "--benchmark", "sr3d", "--split", "nosuch"]) == 2
    assert f"{synthetic_root / 'referit3d' / 'sr3d_nosuch.csv'}" in capsys.readouterr().err
    rows = (synthetic_root / "referit3d" / "sr3d_val.csv").read_text().splitlines()
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join([rows[0], rows[1].replace("synth_val_0000", "scene_missing")]) + "\n")
    assert main([*argv, "--benchmark", "sr3d", "--annotations", str(bad)]) == 2
    assert f"{synthetic_root / 'scans' / 'scene_missing'}: scene folder not found" in capsys.readouterr().err
    assert main([*argv, "--benchmark", "sr3d", "--batch-size", "0"]) == 2
    assert main(["eval", "--checkpoint", str(tmp_path), "--data-root", str(synthetic_root), "--benchmark", "sr3d"]) == 2
    assert "config.json: not found" in capsys.readouterr().err


def test_real_scene_sr3d_and_nr3d_rows_score_one_with_gt_masks_and_follow_the_filters(
    eval_checkpoint, tmp_path, monkeypatch
):
    scene_dir = require_realdata("scannet_scene0000_00")
    root = tmp_path / "real"
    (root / "scans").mkdir(parents=True)
    (root / "scans" / "scene0000_00").symlink_to(scene_dir)
    (root / "referit3d").mkdir()
    (root / "referit3d" / "sr3d_test.csv").symlink_to(scene_dir / "annotations" / "sr3d_train_scene0000_00.csv")
    with (scene_dir / "annotations" / "nr3d_train_scene0000_00.csv").open(newline="") as handle:
        reader = csv.DictReader(handle)
        columns, rows = reader.fieldnames, list(reader)
    assert rows[0]["mentions_target_class"] == rows[1]["correct_guess"] == "True"
    rows[0]["mentions_target_class"] = "False"  # dropped
    rows[1]["correct_guess"] = "False"  # kept: UniVLG evaluates every NR3D row
    with (root / "referit3d" / "nr3d_val.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, columns)
        writer.writeheader()
        writer.writerows(rows)
    targets = {}
    for name in ("sr3d_test.csv", "nr3d_val.csv"):
        for row in csv.DictReader((root / "referit3d" / name).open()):
            targets[(row["scan_id"], row["utterance"])] = int(row["target_id"])

    def oracle_ground(self, scene, sentences, spans=None, batch_size=8, **options):
        ids = scene.points.instance_ids
        return [SimpleNamespace(mask=ids == targets[(scene.scene_id, s)], score=1.0) for s in sentences]

    monkeypatch.setattr(UniVLG, "ground", oracle_ground)
    sr3d = run_eval(eval_checkpoint, root, "sr3d", tmp_path)
    assert sr3d["counts"] == {"rows": 19, "referrals": 19, "scenes": 1}
    grounding = sr3d["metrics"]["grounding"]
    assert grounding["overall"] == {"acc@0.25": 1.0, "acc@0.5": 1.0, "acc@0.75": 1.0, "count": 19}
    assert {"difficulty", "view", "coarse_relation", "relation"} <= set(grounding)
    nr3d = run_eval(eval_checkpoint, root, "nr3d", tmp_path)
    assert nr3d["counts"] == {"rows": 14, "dropped_mentions_target_class_false": 1, "referrals": 13, "scenes": 1}
    assert nr3d["metrics"]["grounding"]["overall"]["acc@0.5"] == 1.0
    assert sum(g["count"] for g in nr3d["metrics"]["grounding"]["difficulty"].values()) == 13


def test_synthetic_class_table_rows_are_checked_and_named(tmp_path):
    from univlg.benchmark_data import instance_classes
    from univlg.errors import FormatError

    rows = [{"id": 1, "name": "table", "kind": "object"}, {"id": 9, "name": "wall", "kind": "structure"}]
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": rows}))
    classes = instance_classes(tmp_path, None)
    assert classes.names == ("table",) and classes.ids == (1,) and classes.id_of_label("wall") == 0
    rows.append({"id": "seven", "name": "chair", "kind": "object"})
    (tmp_path / "manifest.json").write_text(json.dumps({"classes": rows}))
    with pytest.raises(FormatError, match=r"manifest.json: classes item 2: field 'id': expected an integer"):
        instance_classes(tmp_path, None)
    (tmp_path / "manifest.json").write_text('{"classes": [')
    with pytest.raises(FormatError, match=r"manifest.json: line 1: invalid JSON"):
        instance_classes(tmp_path, None)
