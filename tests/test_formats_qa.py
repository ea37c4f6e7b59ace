"""ScanQA and SQA3D: the full real ScanQA val file, the real SQA3D pair, writer round trips, bad entries."""

from __future__ import annotations

import json

import pytest

from tests.conftest import require_realdata
from univlg.data.formats.scanqa import read_scanqa_json, write_scanqa_json
from univlg.data.formats.sqa3d import read_sqa3d, read_sqa3d_flat, sqa3d_question_type, write_sqa3d
from univlg.data.records import Question
from univlg.errors import FormatError


def test_full_real_scanqa_val_file_parses():
    questions = read_scanqa_json(require_realdata("scannet_val_annotations", "scanqa", "ScanQA_v1.0_val.json"))
    assert len(questions) == 4675
    assert len({q.scene_id for q in questions}) == 71
    first = questions[0]
    assert first.question == "What color is the chair in the kitchen?"
    assert first.answers == ("dark brown", "brown") and first.object_ids == tuple(range(4, 14))
    assert first.question_id == "val-scene0011-0" and first.dataset == "scanqa"
    assert all(q.answers and q.object_ids for q in questions)


def test_scanqa_writer_round_trips(tmp_path):
    original = [
        Question("synth_0001", "what color is the sofa?", ("red",), (3,), question_id="q0", question_type="color"),
        Question("synth_0001", "how many chairs are there?", ("2", "two"), (4, 5)),
    ]
    path = tmp_path / "scanqa.json"
    write_scanqa_json(path, original, object_names={("synth_0001", 3): "sofa"})
    raw = json.loads(path.read_text())
    assert raw[0]["object_names"] == ["sofa"] and raw[1]["question_id"] == "synth_0001-1"
    assert raw[0]["question_type"] == "color" and "question_type" not in raw[1]  # official files have none
    back = read_scanqa_json(path)
    assert [q.question_type for q in back] == ["color", ""]
    for before, after in zip(original, back, strict=True):
        assert (after.scene_id, after.question, after.answers, after.object_ids) == (
            before.scene_id, before.question, before.answers, before.object_ids)  # fmt: skip


def test_scanqa_test_file_without_answers_parses_and_bad_answers_are_reported(tmp_path):
    path = tmp_path / "test.json"
    path.write_text(json.dumps([{"scene_id": "scene0707_00", "question": "Where is the tv?", "question_id": "t-0"}]))
    assert read_scanqa_json(path)[0].answers == ()
    path.write_text(json.dumps([{"scene_id": "s", "question": "q?", "answers": "brown"}]))
    with pytest.raises(FormatError, match=r"test.json: item 0: field 'answers': expected a list"):
        read_scanqa_json(path)
    path.write_text(json.dumps([{"scene_id": "s", "question": "q?", "answers": ["a"], "object_ids": [1, -2]}]))
    with pytest.raises(FormatError, match=r"item 0: field 'object_ids\[1\]': expected an integer >= 0"):
        read_scanqa_json(path)


def test_real_sqa3d_questions_join_their_annotations():
    root = require_realdata("scannet_val_annotations", "sqa3d")
    questions = read_sqa3d(
        root / "v1_balanced_questions_test_scannetv2.subset.json",
        root / "v1_balanced_sqa_annotations_test_scannetv2.subset.json",
    )
    assert len(questions) == 145
    first = questions[0]
    assert first.question == "What is under the bed, suitcase or mat?" and first.answers == ("suitcase",)
    assert first.situation.startswith("I am facing the door") and first.question_id == "220602000062"
    assert first.question_type == "what" and first.scene_id == "scene0435_00"
    assert {q.question_type for q in questions} <= {"what", "is", "how", "can", "which", "others"}


def test_sqa3d_question_types_follow_the_first_word():
    assert [sqa3d_question_type(q) for q in ("What is it?", "Are there two?", "is it on", "How many?",
                                              "Can I sit?", "Which way?", "Where is it?", "")] == [
        "what", "is", "is", "how", "can", "which", "others", "others"]  # fmt: skip


def test_sqa3d_writer_round_trips_and_flat_files_read(tmp_path):
    original = [
        Question("synth_0001", "What is in front of me?", ("sofa",), situation="I sit on the bed.", question_id="7"),
        Question("synth_0002", "Is the lamp on?", ("yes",), situation="I face the desk."),
    ]
    write_sqa3d(tmp_path / "q.json", tmp_path / "a.json", original)
    back = read_sqa3d(tmp_path / "q.json", tmp_path / "a.json")
    for before, after in zip(original, back, strict=True):
        assert (after.scene_id, after.question, after.answers, after.situation) == (
            before.scene_id, before.question, before.answers, before.situation)  # fmt: skip
    assert [q.question_type for q in back] == ["what", "is"]
    flat = tmp_path / "SQA_val.json"
    flat.write_text(json.dumps([{"scene_id": "s", "situation": "I sit.", "question": "How?", "answers": ["x"],
                                 "question_id": 3}]))  # fmt: skip
    (q,) = read_sqa3d_flat(flat)
    assert (q.answers, q.question_id, q.question_type) == (("x",), "3", "how")


def test_sqa3d_question_without_annotation_is_reported(tmp_path):
    write_sqa3d(tmp_path / "q.json", tmp_path / "a.json", [Question("s", "Is it?", ("yes",), situation="I am.")])
    data = json.loads((tmp_path / "q.json").read_text())
    data["questions"][0]["question_id"] = 99
    (tmp_path / "q.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"q.json: item 0: field 'question_id': 99 has no annotation"):
        read_sqa3d(tmp_path / "q.json", tmp_path / "a.json")


def test_scanqa_object_names_are_kept_in_meta_and_written_back(tmp_path):
    path = tmp_path / "ScanQA_v1.0_val.json"
    entry = {"scene_id": "scene0011_00", "question": "What color is the chair?", "answers": ["brown"],
             "object_ids": [4, 7], "object_names": ["chair", "office_chair"],
             "question_id": "val-scene0011-0"}  # fmt: skip
    path.write_text(json.dumps([entry]))
    (question,) = read_scanqa_json(path)
    assert question.meta == {"object_names": ["chair", "office_chair"]}
    write_scanqa_json(tmp_path / "again.json", [question])
    assert json.loads((tmp_path / "again.json").read_text()) == [entry]
    (again,) = read_scanqa_json(tmp_path / "again.json")
    assert again == question
    path.write_text(json.dumps([{**entry, "object_names": ["chair"]}]))
    with pytest.raises(FormatError, match=r"item 0: field 'object_names': 1 names for 2 object_ids"):
        read_scanqa_json(path)


def test_real_scanqa_object_names_reach_meta():
    questions = read_scanqa_json(require_realdata("scannet_val_annotations", "scanqa", "ScanQA_v1.0_val.json"))
    assert questions[0].meta["object_names"] == ["chair"] * 10
    assert all(len(q.meta["object_names"]) == len(q.object_ids) for q in questions)


def test_sqa3d_alternative_situations_position_and_rotation_round_trip(tmp_path):
    root = require_realdata("scannet_val_annotations", "sqa3d")
    questions_file = root / "v1_balanced_questions_test_scannetv2.subset.json"
    annotations_file = root / "v1_balanced_sqa_annotations_test_scannetv2.subset.json"
    questions = read_sqa3d(questions_file, annotations_file)
    first = questions[0]  # values as printed in the released file
    assert first.meta["alternative_situations"] == [
        "I am walking toward the door to leave the room.",
        "I just finished using the bathroom to my left, leaving hotel room to go to my conference via door in front "
        "of me.",
    ]
    assert first.meta["position"] == {"x": 2.6339116698445717, "y": -1.0039353585846786, "z": 0.0}
    assert first.meta["rotation"] == {"_x": 0.0, "_y": 0.0, "_z": -0.9995736030415048, "_w": -0.029199522301288958}
    assert (first.meta["sqa_question_type"], first.meta["answer_type"]) == ("N/A", "other")
    write_sqa3d(tmp_path / "q.json", tmp_path / "a.json", questions)
    assert read_sqa3d(tmp_path / "q.json", tmp_path / "a.json") == questions
    raw_questions = json.loads(questions_file.read_text())["questions"]
    raw_annotations = json.loads(annotations_file.read_text())["annotations"]
    written_questions = json.loads((tmp_path / "q.json").read_text())["questions"]
    written_annotations = json.loads((tmp_path / "a.json").read_text())["annotations"]
    assert written_questions == raw_questions
    for raw, written in zip(raw_annotations, written_annotations, strict=True):
        assert written["position"] == pytest.approx(raw["position"]) and written["rotation"] == raw["rotation"]
        assert [a["answer"] for a in written["answers"]] == [a["answer"] for a in raw["answers"]]


def test_sqa3d_bad_position_is_reported(tmp_path):
    write_sqa3d(tmp_path / "q.json", tmp_path / "a.json", [Question("s", "Is it?", ("yes",), situation="I am.")])
    data = json.loads((tmp_path / "a.json").read_text())
    data["annotations"][0]["position"] = {"x": 1, "y": "far"}
    (tmp_path / "a.json").write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"a.json: item 0: field 'position': expected an object with keys"):
        read_sqa3d(tmp_path / "q.json", tmp_path / "a.json")
