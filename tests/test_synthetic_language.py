"""Synthetic language read back through the official-format readers and checked against the written scans."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from univlg.data.formats.coco import segmentation_mask
from univlg.data.formats.fields import Where
from univlg.data.formats.refcoco import read_refcoco
from univlg.data.formats.referit3d import SR3D_COLUMNS, decode_stimulus_id, read_sr3d_csv
from univlg.data.formats.scanqa import read_scanqa_json
from univlg.data.formats.scanrefer import read_scanrefer_json
from univlg.data.synthetic.generate import generate
from univlg.data.synthetic.generate_scene import SynthSettings
from univlg.data.synthetic.verify import check_referral, read_objects, relation_holds

SETTINGS = replace(SynthSettings(), frames=12, width=96, height=72)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    manifest = generate(out, {"train": 3, "val": 2}, seed=11, settings=SETTINGS, progress=False)
    return out, manifest


@pytest.fixture(scope="module")
def objects(dataset):
    out, _ = dataset
    return {folder.name: read_objects(folder) for folder in sorted((out / "scans").iterdir())}


def _referrals(out, split):
    return read_sr3d_csv(out / "referit3d" / f"sr3d_{split}.csv") + read_scanrefer_json(
        out / "scanrefer" / f"ScanRefer_filtered_{split}.json"
    )


def test_every_expression_picks_out_exactly_its_target(dataset, objects):
    out, _ = dataset
    relations = Counter()
    for split in ("train", "val"):
        referrals = _referrals(out, split)
        assert len(referrals) > 40
        for referral in referrals:
            assert check_referral(referral, objects[referral.scene_id]) == [], referral.utterance
            relations[referral.relation or referral.meta["reference_type"]] += 1
    assert len(relations) >= 8, relations


def test_sr3d_rows_have_the_official_columns_and_consistent_fields(dataset, objects, realdata):
    out, _ = dataset
    header = (out / "referit3d" / "sr3d_train.csv").read_text().splitlines()[0].split(",")
    real = (realdata / "scannet_scene0000_00" / "annotations" / "sr3d_train_scene0000_00.csv").read_text()
    assert header[: len(SR3D_COLUMNS)] == SR3D_COLUMNS == real.splitlines()[0].split(",")
    for r in read_sr3d_csv(out / "referit3d" / "sr3d_train.csv"):
        scene = objects[r.scene_id]
        assert r.target_class == scene[r.target_id].label and r.dataset == "sr3d"
        assert r.meta["anchor_types"] == [scene[a].label for a in r.anchor_ids]
        assert all(scene[a].label != r.target_class for a in r.anchor_ids)
        stimulus = decode_stimulus_id(r.meta["stimulus_id"], Where("test"))
        assert stimulus.target_id == r.target_id and set(stimulus.distractor_ids) == set(r.distractor_ids)
        assert r.meta["mentions_target_class"] and r.utterance == r.utterance.lower()


def test_class_only_baseline_is_the_expected_chance_and_well_below_the_target(dataset, objects):
    out, manifest = dataset
    referrals = read_sr3d_csv(out / "referit3d" / "sr3d_val.csv")
    rng = np.random.default_rng(0)
    exact = np.mean([1 / sum(o.label == r.target_class for o in objects[r.scene_id].values()) for r in referrals])
    hits = []
    for r in referrals * 200:
        peers = [i for i, o in objects[r.scene_id].items() if o.label == r.target_class]
        hits.append(peers[rng.integers(len(peers))] == r.target_id)
    assert abs(np.mean(hits) - exact) < 0.02
    assert np.isclose(manifest["splits"]["val"]["class_only_baseline_sr3d"]["overall"], exact, atol=1e-4)
    assert exact <= 0.55


def test_scanrefer_entries_look_like_scanrefer(dataset):
    out, _ = dataset
    entries = json.loads((out / "scanrefer" / "ScanRefer_filtered_train.json").read_text())
    for entry in entries:
        assert {"scene_id", "object_id", "object_name", "ann_id", "description", "token"} <= set(entry)
        assert isinstance(entry["object_id"], str) and isinstance(entry["ann_id"], str)
        assert entry["description"].count(".") >= 2 and entry["entities"]


def test_questions_have_answers_that_the_scene_confirms(dataset, objects, realdata):
    out, _ = dataset
    real_keys = set(json.loads((realdata / "scannet_val_annotations/scanqa/ScanQA_v1.0_val.json").read_text())[0])
    entries = json.loads((out / "scanqa" / "ScanQA_v1.0_train.json").read_text())
    assert set(entries[0]) == real_keys | {"question_type"}  # the official keys plus the question's kind
    questions = read_scanqa_json(out / "scanqa" / "ScanQA_v1.0_train.json")
    kinds = Counter()
    for q in questions:
        scene = objects[q.scene_id]
        text = q.question
        if text.startswith("how many") and text.endswith("in the room?"):
            label = next(o.label for i, o in scene.items() if i in q.object_ids)
            assert int(q.answers[0]) == sum(o.label == label for o in scene.values()) == len(q.object_ids)
            kinds["count"] += 1
        elif text.startswith("is there"):
            label = text[len("is there a ") :].removeprefix("n ").removesuffix(" in the room?")
            present = any(o.label == label for o in scene.values())
            assert q.answers == (("yes",) if present else ("no",))
            kinds["exists"] += 1
        elif text.startswith("what color"):
            assert q.answers == (scene[q.object_ids[0]].colour,)
            kinds["color"] += 1
        elif text.startswith("what is closest to"):
            answer = scene[q.object_ids[0]]
            assert q.answers == (answer.label,)
            kinds["closest"] += 1
        elif text.startswith("what is on") or text.startswith("where is"):
            named = q.answers[-1] if text.startswith("where is") else text
            host_ids = [i for i, o in scene.items() if o.label in named and i not in q.object_ids]
            assert any(all(relation_holds("on", t, [h], scene) for t in q.object_ids) for h in host_ids), text
            kinds["support"] += 1
    assert len(kinds) >= 4, kinds


def test_image_referrals_have_masks_boxes_and_same_class_distractors_in_the_frame(dataset, objects):
    out, _ = dataset
    referrals = read_refcoco(out / "refcoco" / "refs(synth_train).p", out / "refcoco" / "instances_train.json")
    assert len(referrals) >= 6
    for r in referrals:
        frame = out / "scans" / r.file_name
        assert frame.is_file() and r.split == "train" and r.category in r.utterance
        ids = np.asarray(Image.open(str(frame).replace("/color/", "/instance-filt/").replace(".jpg", ".png")))
        target = r.ann_id % 100
        expected = ids.astype(int) - 1 == target
        assert (segmentation_mask(r.segmentation, r.height, r.width) == expected).all()
        rows, cols = np.flatnonzero(expected.any(1)), np.flatnonzero(expected.any(0))
        assert r.box_xyxy == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
        scene = objects[frame.parent.parent.name]
        same = [i for i, o in scene.items() if o.label == r.category and (ids.astype(int) - 1 == i).sum() >= 20]
        assert target in same and len(same) >= 2
