"""ScanRefer / ScanEnts3D / Locate3D JSON: real samples, writer round trip, bad entries."""

from __future__ import annotations

import json

import pytest

from tests.conftest import require_realdata
from univlg.data.formats.compact_grounding import read_compact_grounding_json
from univlg.data.formats.scanrefer import read_scanrefer_json, write_scanrefer_json
from univlg.data.records import Referral
from univlg.errors import FormatError


def test_real_locate3d_entries_parse_with_entity_spans():
    path = require_realdata("scannet_val_annotations", "locate3d", "l3dd_val_scannet.subset.json")
    rows = read_scanrefer_json(path, dataset="locate3d")
    assert len(rows) == 83 and {r.scene_id for r in rows} == {"scene0025_00", "scene0435_00"}
    first = rows[0]  # {"description": "bag beside bed", entities [[0], 48_backpack], [[2], 11_bed]}
    assert (first.target_id, first.target_class, first.utterance) == (48, "backpack", "bag beside bed")
    assert first.spans == {48: ((0, 3),), 11: ((11, 14),)} and first.anchor_ids == (11,)
    assert first.meta["ann_id"] == 0 and first.meta["scene_dataset"] == "ScanNet"
    second = rows[1]  # "dust bin next to toilet seat": [0, 1] -> 32_trash_can, [4, 5] -> 12_toilet
    assert [second.utterance[s:e] for s, e in second.spans[32]] == ["dust bin"]
    assert [second.utterance[s:e] for s, e in second.spans[12]] == ["toilet seat"]
    assert second.meta["entity_names"] == {32: "trash can", 12: "toilet"}
    for row in rows:  # every entity of the real file lands on text
        for spans in row.spans.values():
            assert all(0 <= s < e <= len(row.utterance) for s, e in spans)


def test_writer_round_trips_through_reader(tmp_path):
    text = "this is a brown chair . it is next to the round table near the window ."
    original = [
        Referral("scene0011_00", text, 4, anchor_ids=(9, 2),
                 spans={4: ((10, 21),), 9: ((42, 53),), 2: ((63, 69),)}, target_class="chair"),
        Referral("scene0011_00", "the other brown chair .", 4, target_class="chair"),
        Referral("scene0011_00", "a kitchen cabinet", 6, target_class="kitchen cabinets"),
    ]  # fmt: skip
    path = tmp_path / "scanrefer.json"
    write_scanrefer_json(path, original)
    raw = json.loads(path.read_text())
    assert [e["ann_id"] for e in raw] == ["0", "1", "0"] and raw[0]["object_id"] == "4"
    assert raw[2]["object_name"] == "kitchen_cabinets" and "entities" not in raw[1]
    back = read_scanrefer_json(path)
    for before, after in zip(original, back, strict=True):
        assert (after.scene_id, after.utterance, after.target_id, after.target_class) == (
            before.scene_id, before.utterance, before.target_id, before.target_class)  # fmt: skip
        assert after.spans == before.spans and set(after.anchor_ids) == set(before.anchor_ids)
        assert after.dataset == "scanrefer"


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"scene_id": "scene0011_00", "description": "a chair"}, r"item 1: field 'object_id': missing"),
        ({"scene_id": "scene0011_00", "object_id": "x", "description": "a"}, r"item 1: field 'object_id'"),
        ({"scene_id": "scene0011_00", "object_id": 1, "description": 5}, r"item 1: field 'description'"),
        ({"scene_id": "s", "object_id": 1, "description": "a b", "token": ["a", "b"], "entities": [[[0], ["x_y"]]]},
         r"item 1: field 'entities\[0\]\[1\]\[0\]': expected an integer"),
    ],
)  # fmt: skip
def test_bad_entries_are_reported_with_index_and_field(tmp_path, entry, message):
    path = tmp_path / "bad.json"
    good = {"scene_id": "scene0011_00", "object_id": "1", "description": "a chair"}
    path.write_text(json.dumps([good, entry]))
    with pytest.raises(FormatError, match=rf"bad.json: {message}"):
        read_scanrefer_json(path)


def test_a_file_that_is_not_a_list_is_refused(tmp_path):
    path = tmp_path / "dict.json"
    path.write_text('{"scene_id": "x"}')
    with pytest.raises(FormatError, match="expected a JSON list"):
        read_scanrefer_json(path)
    path.write_text("[{]")
    with pytest.raises(FormatError, match="line 1: invalid JSON"):
        read_scanrefer_json(path)


def test_compact_zero_shot_grounding_samples_parse():
    root = require_realdata("scannet_val_annotations")
    scanrefer = read_compact_grounding_json(root / "scanrefer" / "scanrefer_val.zsvg3d.subset.json", "scanrefer")
    nr3d = read_compact_grounding_json(root / "nr3d" / "nr3d_val.zsvg3d.subset.json", "nr3d")
    assert (len(scanrefer), len(nr3d)) == (235, 265)
    assert (scanrefer[0].scene_id, scanrefer[0].target_id) == ("scene0435_00", 60)
    assert scanrefer[0].utterance.startswith("it is a black suitcase") and "program" in scanrefer[0].meta
    first = nr3d[0]  # {"caption": "the bed closer to the window", "easy": true, "view_dep": false}
    assert (first.target_id, first.meta["hard"], first.meta["view_dependent"]) == (11, False, False)
    assert {r.dataset for r in nr3d} == {"nr3d"}


def test_compact_grounding_bad_flag_is_reported(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps([{"scan_id": "s", "target_id": 1, "caption": "a", "easy": "maybe"}]))
    with pytest.raises(FormatError, match=r"c.json: item 0: field 'easy': expected a boolean"):
        read_compact_grounding_json(path, "nr3d")
