"""ReferIt3D SR3D/NR3D CSV and ScanEnts3D entities: real rows, round trips through the writers, bad rows."""

from __future__ import annotations

import csv
import re

import pytest

from tests.conftest import require_realdata
from univlg.data.formats.fields import Where
from univlg.data.formats.referit3d import (
    decode_stimulus_id,
    encode_stimulus_id,
    read_nr3d_csv,
    read_referit3d_csv,
    read_sr3d_csv,
    write_nr3d_csv,
    write_sr3d_csv,
)
from univlg.data.formats.tokens import align_tokens
from univlg.data.records import Referral
from univlg.errors import FormatError

SCENE = "scannet_scene0000_00"


def test_real_sr3d_rows_of_scene0000_load_with_official_fields():
    path = require_realdata(SCENE, "annotations", "sr3d_train_scene0000_00.csv")
    rows = read_sr3d_csv(path)
    assert len(rows) == 19
    assert {r.scene_id for r in rows} == {"scene0000_00"} and {r.dataset for r in rows} == {"sr3d"}
    first = rows[0]  # the CSV's first data row, read by eye
    assert first.utterance == "choose the table that is near the kitchen counter"
    assert (first.target_id, first.anchor_ids, first.distractor_ids) == (2, (3,), (35,))
    assert (first.target_class, first.relation) == ("table", "closest")
    assert first.meta["anchor_types"] == ["kitchen counter"] and first.meta["coarse_relation"] == "horizontal"
    assert first.meta["hard"] is False  # stimulus scene0000_00-table-2-2-35: 2 tables
    third = rows[2]  # scene0000_00-trash_can-3-14-12-13
    assert third.target_class == "trash can" and third.distractor_ids == (12, 13) and third.meta["hard"] is True


def test_real_nr3d_rows_of_scene0000_load():
    path = require_realdata(SCENE, "annotations", "nr3d_train_scene0000_00.csv")
    rows = read_nr3d_csv(path)
    assert len(rows) == 14 and {r.dataset for r in rows} == {"nr3d"}
    stools = rows[2]
    assert stools.target_id == 28 and stools.distractor_ids == (29, 30, 31)  # from the stimulus id
    assert stools.meta["hard"] is True and stools.meta["view_dependent"] is True  # "looking", "left", "back"
    assert stools.meta["correct_guess"] is False
    assert stools.meta["speaker_id"] == "501"  # unparsed columns stay verbatim


def test_hard_and_view_dependent_flags_agree_with_an_independent_annotation():
    """VLM-Grounder's nr3d_250.csv carries its own is_easy_referit3d / is_vd_referit3d columns."""
    rows = read_nr3d_csv(require_realdata("scannet_val_annotations", "nr3d", "nr3d_250.vlmgrounder.csv"))
    assert len(rows) == 250
    for row in rows:
        assert row.meta["hard"] == (row.meta["is_easy_referit3d"] == "False")
        assert row.meta["view_dependent"] == (row.meta["is_vd_referit3d"] == "True")


def test_scanrefer_rows_in_referit3d_csv_columns_parse():
    path = require_realdata("scannet_val_annotations", "scanrefer", "scanrefer_250.vlmgrounder.csv")
    rows = read_referit3d_csv(path, dataset="scanrefer")
    assert len(rows) == 250 and all(r.dataset == "scanrefer" for r in rows)
    with path.open(newline="") as handle:
        flags = [cell["is_unique_scanrefer"] == "True" for cell in csv.DictReader(handle)]
    assert [r.meta["unique"] for r in rows] == flags
    assert rows[1].utterance.startswith("the chair is west of the left-most table")


def _span(text: str, phrase: str) -> tuple[int, int]:
    start = re.search(rf"\b{re.escape(phrase)}\b", text).start()
    return (start, start + len(phrase))


def _synthetic_referrals() -> list[Referral]:
    a = "the red chair that is closest to the wooden table"
    b = "Facing the bed, it's the lamp on the left, between the sofa and the desk."
    return [
        Referral("synth_0001", a, 3, anchor_ids=(7,), distractor_ids=(4, 5),
                 spans={3: (_span(a, "red chair"),), 7: (_span(a, "wooden table"),)},
                 target_class="chair", relation="closest", meta={"anchor_types": ["table"]}),
        Referral("synth_0002", b, 12, anchor_ids=(2, 9), distractor_ids=(13,),
                 spans={12: (_span(b, "lamp"),), 2: (_span(b, "sofa"),), 9: (_span(b, "desk"),),
                        1: (_span(b, "bed"),)},
                 target_class="lamp", relation="between", meta={"anchor_types": ["sofa", "desk"]}),
    ]  # fmt: skip


@pytest.mark.parametrize("writer, reader, dataset", [(write_sr3d_csv, read_sr3d_csv, "sr3d"),
                                                     (write_nr3d_csv, read_nr3d_csv, "nr3d")])  # fmt: skip
def test_writer_round_trips_through_reader(tmp_path, writer, reader, dataset):
    original = _synthetic_referrals()
    path = tmp_path / f"{dataset}.csv"
    writer(path, original)
    back = reader(path)
    assert len(back) == len(original)
    for before, after in zip(original, back, strict=True):
        for name in ("scene_id", "utterance", "target_id", "anchor_ids", "distractor_ids", "spans", "target_class",
                     "relation"):  # fmt: skip
            assert getattr(after, name) == getattr(before, name), name
        assert after.dataset == dataset
        assert after.meta["anchor_types"] == before.meta["anchor_types"]
    assert back[0].meta["hard"] is True and back[1].meta["hard"] is False  # 3 chairs / 2 lamps
    assert back[0].meta["view_dependent"] is False and back[1].meta["view_dependent"] is True
    # the target mention reads back as text
    assert [back[1].utterance[s:e] for s, e in back[1].target_spans] == ["lamp"]


def test_scanents3d_entities_become_char_spans_despite_rewritten_tokens(tmp_path):
    """NR3D tokens rewrite "it's" as "it", "is": the entity indices must still land on the right words."""
    path = tmp_path / "scanents3d_nr3d.csv"
    path.write_text(
        "scan_id,target_id,utterance,tokens,entities,stimulus_id\n"
        "scene0001_00,5,\"It's the chair by the desk.\",\"['it', 'is', 'the', 'chair', 'by', 'the', 'desk']\","
        "\"[[[3], ['5_chair']], [[6], ['9_desk']]]\",scene0001_00-chair-2-5-6\n"
    )
    (row,) = read_nr3d_csv(path)
    assert row.spans == {5: ((9, 14),), 9: ((22, 26),)}
    assert row.anchor_ids == (9,) and row.meta["entity_names"] == {5: "chair", 9: "desk"}


def test_token_alignment_leaves_unmatched_tokens_without_offsets():
    text = "It's the chair."
    assert align_tokens(text, ["it", "is", "the", "chair"]) == [(0, 2), None, (5, 8), (9, 14)]


def test_stimulus_ids_decode_including_hyphenated_class_names():
    where = Where("x.csv", "line", 2)
    s = decode_stimulus_id("scene0000_00-trash_can-3-14-12-13", where)
    assert (s.scene_id, s.instance_type, s.n_objects, s.target_id, s.distractor_ids) == (
        "scene0000_00", "trash can", 3, 14, (12, 13))  # fmt: skip
    s = decode_stimulus_id("scene0101_04-t-shirt-2-7-8", where)
    assert (s.instance_type, s.target_id, s.distractor_ids) == ("t-shirt", 7, (8,))
    assert encode_stimulus_id("scene0000_00", "trash can", 14, (12, 13)) == "scene0000_00-trash_can-3-14-12-13"
    with pytest.raises(FormatError, match=r"x.csv: line 2: field 'stimulus_id'"):
        decode_stimulus_id("scene0000_00-chair-3-1-2", where)  # says 3 objects, lists 2


@pytest.mark.parametrize(
    "row, message",
    [
        ("scene0000_00,abc,the chair,,", r"line 3: field 'target_id': expected an integer, got 'abc'"),
        ("scene0000_00,-1,the chair,,", r"line 3: field 'target_id': expected an integer >= 0"),
        ("scene0000_00,2,,,", r"line 3: field 'utterance': missing"),
        ("scene0000_00,2,the chair,\"[1, 'x']\",", r"line 3: field 'anchor_ids\[1\]': expected an integer"),
        ('scene0000_00,2,the chair,"[1, (",', r"line 3: field 'anchor_ids': not a valid literal"),
        ("scene0000_00,2,the chair", r"line 3: fewer cells than the 5 header columns"),
        ("scene0000_00,2,the chair,[],scene0000_00-chair-2-3-2", r"line 3: field 'stimulus_id'.*names scene/target"),
    ],
)
def test_bad_rows_are_reported_with_file_line_and_field(tmp_path, row, message):
    path = tmp_path / "bad.csv"
    header = "scan_id,target_id,utterance,anchor_ids,stimulus_id"
    path.write_text(f"{header}\nscene0000_00,1,a fine row,[],\n{row}\n")
    with pytest.raises(FormatError, match=rf"bad.csv: {message}"):
        read_sr3d_csv(path)


def test_missing_required_column_is_reported_on_the_header_line(tmp_path):
    path = tmp_path / "nocol.csv"
    path.write_text("scan_id,utterance\nscene0000_00,the chair\n")
    with pytest.raises(FormatError, match=r"nocol.csv: line 1: missing column\(s\) \['target_id'\]"):
        read_sr3d_csv(path)


def test_out_of_range_entity_token_is_reported(tmp_path):
    path = tmp_path / "ents.csv"
    path.write_text("scan_id,target_id,utterance,entities\nscene0000_00,1,the chair,\"[[[5], ['1_chair']]]\"\n")
    with pytest.raises(FormatError, match=r"line 2: field 'entities\[0\]\[0\]': token index 5 out of range"):
        read_nr3d_csv(path)
