"""ScanNet label map and class lists, the axis-alignment matrices file, Mask3D npy point files."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from tests.conftest import require_realdata
from univlg.data.formats.axis_alignment import apply_axis_alignment, read_axis_alignments, write_axis_alignments
from univlg.data.formats.mask3d import (
    Mask3dPoints,
    instance_gt_ids,
    read_instance_gt_txt,
    read_mask3d_points,
    write_instance_gt_txt,
    write_mask3d_points,
)
from univlg.data.formats.scannet_labels import (
    SCANNET20_CLASS_IDS,
    SCANNET20_CLASS_NAMES,
    SCANNET200_CLASS_IDS,
    SCANNET200_CLASS_NAMES,
    SCANNET200_COMMON,
    SCANNET200_HEAD,
    SCANNET200_INSTANCE_CLASS_NAMES,
    SCANNET200_TAIL,
    read_label_map,
    scannet200_split,
)
from univlg.errors import FormatError

META = "scannet_meta"


def test_scannet200_class_list_matches_the_real_class_file_and_label_tsv():
    names = require_realdata(META, "scannet200_classes.txt").read_text().split("\n")
    assert set(SCANNET200_CLASS_NAMES) == {n for n in names if n} and len(SCANNET200_CLASS_NAMES) == 200
    assert len(set(SCANNET200_CLASS_IDS)) == 200
    first_category = {}  # independent reading of the tsv: first row of each category id
    with require_realdata(META, "scannetv2-labels.combined.tsv").open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            first_category.setdefault(int(row["id"]), row["category"])
    assert [first_category[i] for i in SCANNET200_CLASS_IDS] == list(SCANNET200_CLASS_NAMES)


def test_head_common_tail_splits_partition_the_200_classes():
    assert (len(SCANNET200_HEAD), len(SCANNET200_COMMON), len(SCANNET200_TAIL)) == (66, 68, 66)
    assert SCANNET200_HEAD | SCANNET200_COMMON | SCANNET200_TAIL == set(SCANNET200_CLASS_NAMES)
    assert not (SCANNET200_HEAD & SCANNET200_COMMON)
    assert [scannet200_split(n) for n in ("chair", "cushion", "paper")] == ["head", "common", "tail"]
    assert len(SCANNET200_INSTANCE_CLASS_NAMES) == 198 and "wall" not in SCANNET200_INSTANCE_CLASS_NAMES
    with pytest.raises(KeyError):
        scannet200_split("unicorn")


def test_label_map_reads_the_real_tsv_and_a_crlf_copy(tmp_path):
    path = require_realdata(META, "scannetv2-labels.combined.tsv")
    labels = read_label_map(path)
    assert len(labels.rows) == 607
    assert (labels.nyu40_id("chair"), labels.scannet200_id("chair")) == (5, 2)
    assert labels.scannet200_id("stack of chairs") == 2 and labels.scannet200_name("stack of chairs") == "chair"
    assert labels.scannet20_id("kitchen counter") == 12  # NYU40 counter
    assert labels.nyu40_id("no such thing") == 0 and labels.scannet200_name("no such thing") is None
    # the 20 benchmark classes are the tsv's NYU40 classes (this copy spells "refridgerator")
    nyu_names = {row.nyu40_id: row.nyu40_class for row in labels.rows.values()}
    expected = [n if n != "refrigerator" else "refridgerator" for n in SCANNET20_CLASS_NAMES]
    assert [nyu_names[i] for i in SCANNET20_CLASS_IDS] == expected
    crlf = tmp_path / "labels_crlf.tsv"
    crlf.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    assert read_label_map(crlf).rows == labels.rows


def test_label_map_reports_a_bad_id(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text(
        "id\traw_category\tcategory\tnyu40id\tnyu40class\n1\twall\twall\t1\twall\nx\tchair\tchair\t5\tchair\n"
    )
    with pytest.raises(FormatError, match=r"labels.tsv: line 3: field 'id': expected an integer, got 'x'"):
        read_label_map(path)


def test_axis_alignment_file_holds_every_scan_and_aligns_points(tmp_path):
    matrices = read_axis_alignments(require_realdata(META, "scans_axis_alignment_matrices.json"))
    assert len(matrices) == 1513
    single = json.loads(
        require_realdata("scannet_scene0000_00", "scan", "scene0000_00_axis_align_matrix.json").read_text()
    )
    np.testing.assert_allclose(matrices["scene0000_00"], np.array(single["scene0000_00"]).reshape(4, 4))
    a = matrices["scene0000_00"]  # by hand: rotation about z then translation
    point = np.array([[1.0, 2.0, 3.0]])
    expected = [0.945519 * 1 + 0.325568 * 2 - 5.38439, -0.325568 * 1 + 0.945519 * 2 - 2.87178, 3 - 0.06435]
    np.testing.assert_allclose(apply_axis_alignment(point, a)[0], expected, atol=1e-5)
    write_axis_alignments(tmp_path / "m.json", {"scene0000_00": a})
    np.testing.assert_allclose(read_axis_alignments(tmp_path / "m.json")["scene0000_00"], a)


def test_bad_axis_alignment_names_the_scene(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps({"scene0001_00": [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1], "scene0002_00": [1, 2]})
    )
    with pytest.raises(FormatError, match=r"m.json: scene scene0002_00: field 'matrix': expected 16 numbers"):
        read_axis_alignments(path)


def _points(n: int = 50, labelled: bool = True) -> Mask3dPoints:
    rng = np.random.default_rng(0)
    return Mask3dPoints(
        xyz=rng.normal(size=(n, 3)).astype(np.float32),
        colors=rng.integers(0, 256, (n, 3)).astype(np.uint8),
        normals=np.ones((n, 3), np.float32),
        segment_ids=rng.integers(0, 7, n),
        semantic_ids=rng.integers(0, 41, n) if labelled else None,
        instance_ids=rng.integers(-1, 5, n) if labelled else None,
    )


@pytest.mark.parametrize("labelled", [True, False])
def test_mask3d_points_round_trip(tmp_path, labelled):
    points = _points(labelled=labelled)
    write_mask3d_points(tmp_path / "0000_00.npy", points)
    raw = np.load(tmp_path / "0000_00.npy")
    assert raw.shape == (50, 12 if labelled else 10) and raw.dtype == np.float32
    back = read_mask3d_points(tmp_path / "0000_00.npy")
    np.testing.assert_array_equal(back.xyz, points.xyz)
    np.testing.assert_array_equal(back.colors, points.colors)
    np.testing.assert_array_equal(back.segment_ids, points.segment_ids)
    if labelled:
        np.testing.assert_array_equal(back.instance_ids, points.instance_ids)
        np.testing.assert_array_equal(back.semantic_ids, points.semantic_ids)
    else:
        assert back.semantic_ids is None and back.instance_ids is None


def test_mask3d_bad_files_are_reported(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((4, 11), np.float32))
    with pytest.raises(FormatError, match=r"wide.npy: expected a numeric \(P, 12\) or \(P, 10\) array"):
        read_mask3d_points(tmp_path / "wide.npy")
    data = np.zeros((4, 12), np.float32)
    data[2, 11] = 1.5
    np.save(tmp_path / "frac.npy", data)
    with pytest.raises(FormatError, match=r"frac.npy: point 2: field 'instance id \(column 11\)'"):
        read_mask3d_points(tmp_path / "frac.npy")


def test_instance_gt_codes_follow_the_benchmark_encoding(tmp_path):
    codes = instance_gt_ids(np.array([5, 5, 40, 3]), np.array([0, 7, -1, 2]))
    assert codes.tolist() == [5001, 5008, 0, 3003]
    write_instance_gt_txt(tmp_path / "scene.txt", codes)
    assert read_instance_gt_txt(tmp_path / "scene.txt").tolist() == codes.tolist()
    (tmp_path / "bad.txt").write_text("5001\n-3\n")
    with pytest.raises(FormatError, match=r"bad.txt: line 2"):
        read_instance_gt_txt(tmp_path / "bad.txt")
