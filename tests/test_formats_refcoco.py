"""RefCOCO refs pickle + COCO instances: real COCO file, writer round trip, the restricted unpickler, bad refs."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from tests.conftest import require_realdata
from univlg.data.formats.coco import read_coco_instances, segmentation_mask
from univlg.data.formats.refcoco import read_refcoco, read_refcoco_refs, write_refcoco
from univlg.data.formats.safe_pickle import load_plain_pickle
from univlg.data.records import ImageReferral
from univlg.errors import FormatError


def test_real_coco_instances_file_reads():
    instances = read_coco_instances(require_realdata("coco_refcoco_samples", "coco_val2017", "test_coco.json"))
    assert sorted(instances.images) == [785, 40083, 196141, 197388]
    assert len(instances.annotations) == 14 and instances.categories[1] == "person"
    ann = instances.annotations[442619]  # bbox [280.79, 44.73, 218.7, 346.68] in the file
    assert ann.image_id == 785 and ann.bbox_xyxy == pytest.approx((280.79, 44.73, 499.49, 391.41))
    image = instances.images[785]
    mask = segmentation_mask(ann.segmentation, image.height, image.width)
    ys, xs = np.nonzero(mask)  # the polygon's raster lies inside its box (1 px of rasterisation slack)
    assert xs.min() >= 280.79 - 1 and xs.max() <= 499.49 + 1 and ys.min() >= 44.73 - 1 and ys.max() <= 391.41 + 1
    assert abs(mask.sum() - ann.area) / ann.area < 0.05


def test_segmentation_mask_of_a_hand_drawn_square():
    square = [[2.0, 1.0, 6.0, 1.0, 6.0, 4.0, 2.0, 4.0]]  # x 2..6, y 1..4
    mask = segmentation_mask(square, 8, 10)
    assert mask.shape == (8, 10) and mask[2, 3] and not mask[6, 8]
    assert 10 <= mask.sum() <= 20  # a 4 x 3 area, rasterised


def _referrals() -> list[ImageReferral]:
    square = [[10.0, 20.0, 50.0, 20.0, 50.0, 60.0, 10.0, 60.0]]
    return [
        ImageReferral(11, "frame_0011.jpg", 64, 48, "the red chair", (10.0, 20.0, 50.0, 60.0), square, "chair",
                      split="train"),
        ImageReferral(11, "frame_0011.jpg", 64, 48, "chair on the left", (10.0, 20.0, 50.0, 60.0), square, "chair",
                      split="train"),
        ImageReferral(12, "frame_0012.jpg", 64, 48, "the lamp", (1.0, 2.0, 5.5, 9.0), None, "lamp", split="val"),
    ]  # fmt: skip


def test_writer_round_trips_through_reader(tmp_path):
    original = _referrals()
    write_refcoco(tmp_path / "refs(unc).p", tmp_path / "instances.json", original)
    refs = read_refcoco_refs(tmp_path / "refs(unc).p")
    assert len(refs) == 2 and [len(r["sentences"]) for r in refs] == [2, 1]  # the two chair sentences share a ref
    back = read_refcoco(tmp_path / "refs(unc).p", tmp_path / "instances.json")
    for before, after in zip(original, back, strict=True):
        for name in ("image_id", "file_name", "width", "height", "utterance", "segmentation", "category", "split"):
            assert getattr(after, name) == getattr(before, name), name
        assert after.box_xyxy == pytest.approx(before.box_xyxy)
    assert back[0].ann_id == back[1].ann_id != back[2].ann_id and back[0].ref_id == back[1].ref_id
    assert [r.utterance for r in read_refcoco(tmp_path / "refs(unc).p", tmp_path / "instances.json", split="val")] == [
        "the lamp"
    ]


def test_ref_pointing_to_a_missing_annotation_is_reported(tmp_path):
    write_refcoco(tmp_path / "refs.p", tmp_path / "instances.json", _referrals())
    refs = read_refcoco_refs(tmp_path / "refs.p")
    refs[1]["ann_id"] = 424242
    with (tmp_path / "refs.p").open("wb") as handle:
        pickle.dump(refs, handle, protocol=2)
    with pytest.raises(FormatError, match=r"refs.p: ref 1: field 'ann_id': 424242 is not in the COCO instances"):
        read_refcoco(tmp_path / "refs.p", tmp_path / "instances.json")


def test_coco_annotation_of_an_unknown_image_is_reported(tmp_path):
    path = tmp_path / "instances.json"
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 4, "height": 4}],
        "categories": [{"id": 1, "name": "cat"}],
        "annotations": [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [0, 0, 1, 1]}],
    }
    path.write_text(json.dumps(data))
    with pytest.raises(FormatError, match=r"instances.json: annotation 0: field 'image_id': 2 is not an image"):
        read_coco_instances(path)


class _RunsCode:
    """Pickles to a call of ``open(<marker>, "w")``: loading it with plain pickle would create the file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_pickle_that_would_run_code_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "refs(unc).p"
    with path.open("wb") as handle:
        pickle.dump([{"ref_id": 1, "payload": _RunsCode(str(marker))}], handle, protocol=2)
    with pytest.raises(FormatError, match=r"refused to load global \w+\.open"):
        load_plain_pickle(path)
    assert not marker.exists()
    with path.open("wb") as handle:  # a plain old-protocol pickle of classes is refused too
        pickle.dump({"x": ImageReferral}, handle, protocol=0)
    with pytest.raises(FormatError, match="refused to load global"):
        read_refcoco_refs(path)


def test_plain_data_pickles_load_including_python2_strings(tmp_path):
    path = tmp_path / "plain.p"
    data = [{"ref_id": 3, "sentences": [{"sent": "man", "sent_id": 1}], "box": (1.5, 2.0), "ok": True, "x": None}]
    with path.open("wb") as handle:
        pickle.dump(data, handle, protocol=2)
    assert load_plain_pickle(path) == data
    path.write_bytes(b"(lp0\n(dp1\nS'sent'\np2\nS'caf\\xe9'\np3\nsa.")  # a Python 2 protocol-0 str
    assert load_plain_pickle(path) == [{"sent": "caf\u00e9"}]
    path.write_bytes(b"not a pickle")
    with pytest.raises(FormatError, match="not a readable pickle"):
        load_plain_pickle(path)


def test_sentence_ids_tokens_and_raw_text_are_kept_in_meta_and_written_back(tmp_path):
    square = [[10.0, 20.0, 50.0, 20.0, 50.0, 60.0, 10.0, 60.0]]
    refs = [{"ref_id": 22758, "ann_id": 540661, "image_id": 7, "split": "val", "category_id": 1,
             "file_name": "COCO_train2014_000000000007_540661.jpg", "sent_ids": [64727, 64728],
             "sentences": [{"sent": "woman in front", "sent_id": 64727, "tokens": ["woman", "in", "front"],
                            "raw": "Woman in front."},
                           {"sent": "lady smiling", "sent_id": 64728, "tokens": ["lady", "smiling"],
                            "raw": "lady smiling"}]}]  # fmt: skip
    with (tmp_path / "refs(unc).p").open("wb") as handle:
        pickle.dump(refs, handle, protocol=2)
    image = {"id": 7, "file_name": "COCO_train2014_000000000007.jpg", "width": 64, "height": 80}
    annotation = {"id": 540661, "image_id": 7, "category_id": 1, "bbox": [10, 20, 40, 40], "segmentation": square,
                  "area": 1600, "iscrowd": 0}  # fmt: skip
    instances = {"images": [image], "annotations": [annotation], "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "instances.json").write_text(json.dumps(instances))
    back = read_refcoco(tmp_path / "refs(unc).p", tmp_path / "instances.json")
    assert [r.meta for r in back] == [
        {"sent_id": 64727, "tokens": ["woman", "in", "front"], "raw": "Woman in front."},
        {"sent_id": 64728, "tokens": ["lady", "smiling"], "raw": "lady smiling"},
    ]
    write_refcoco(tmp_path / "again.p", tmp_path / "again.json", back)
    (written,) = read_refcoco_refs(tmp_path / "again.p")
    assert written["sentences"] == refs[0]["sentences"] and written["sent_ids"] == [64727, 64728]
    assert read_refcoco(tmp_path / "again.p", tmp_path / "again.json") == back


def test_sentences_without_ids_are_numbered_after_the_largest_given(tmp_path):
    referrals = _referrals()
    referrals[1].meta = {"sent_id": 40}
    write_refcoco(tmp_path / "refs.p", tmp_path / "instances.json", referrals)
    sentences = [s for ref in read_refcoco_refs(tmp_path / "refs.p") for s in ref["sentences"]]
    assert [s["sent_id"] for s in sentences] == [41, 40, 42]
    assert sentences[2]["tokens"] == ["the", "lamp"] and sentences[2]["raw"] == "the lamp"
