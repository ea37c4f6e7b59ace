"""HTML viewer: the page is self-contained, its embedded arrays decode back to the inputs (subsampling keeps the
highlighted points), scenes and grounding files turn into the right points, and ``univlg view`` works end to end.

The pages are decoded here independently of the library: the JSON is cut out of the HTML with a regex and each
base64 array is read with ``numpy.frombuffer`` in the dtype it declares.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from univlg.cli import main
from univlg.data.formats import scannet
from univlg.data.scene import load_scene
from univlg.errors import FormatError, SceneError
from univlg.viz import read_groundings, scene_html, sensor_cloud, write_groundings, write_scene_html
from univlg.viz.html import PALETTE, VIEWER_SCRIPTS

VOID_TAGS = {"meta", "input", "br", "img", "link", "hr", "source", "wbr"}


def page_data(path: Path) -> dict:
    """The JSON the page embeds, with every ``{"dtype", "shape", "base64"}`` entry decoded to a numpy array."""
    text = Path(path).read_text(encoding="utf-8")
    blocks = re.findall(r'<script type="application/json" id="univlg-data">(.*?)</script>', text, re.S)
    assert len(blocks) == 1

    def decode(value):
        if isinstance(value, dict) and set(value) == {"dtype", "shape", "base64"}:
            wire = {"float32": "<f4", "uint32": "<u4", "uint8": "u1"}[value["dtype"]]
            return np.frombuffer(base64.b64decode(value["base64"]), dtype=wire).reshape(value["shape"])
        if isinstance(value, dict):
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads(blocks[0]))


class TagBalance(HTMLParser):
    """Records open/close mismatches of non-void elements and the src/href attributes of every tag."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.links = [], [], []

    def handle_starttag(self, tag, attrs):
        self.links += [value for name, value in attrs if name in ("src", "href")]
        if tag not in VOID_TAGS:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


def random_cloud(num_points: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    xyz = rng.uniform(-2, 3, (num_points, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, (num_points, 3), dtype=np.uint8)
    return xyz, rgb


# ---------------------------------------------------------------------------------------------- the page


def test_page_is_self_contained_and_well_formed(tmp_path):
    xyz, rgb = random_cloud(50)
    out = write_scene_html(tmp_path / "v.html", xyz, rgb, boxes=[{"box": [0, 0, 0, 1, 1, 1], "label": "a box"}])
    text = out.path.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    parser = TagBalance()
    parser.feed(text)
    assert parser.errors == [] and parser.stack == []
    assert parser.links == []  # no <script src>, <link href>, <img src>: nothing is fetched
    assert "http://" not in text and "https://" not in text
    assert "plotly" not in text.lower()
    scripts = [resources.files("univlg.viz").joinpath(name).read_text(encoding="utf-8") for name in VIEWER_SCRIPTS]
    assert all(script in text for script in scripts)
    assert 'getContext("webgl"' in scripts[0] and 'getContext("2d")' in scripts[0]
    assert out.size_bytes == len(text.encode("utf-8"))


@pytest.mark.skipif(shutil.which("node") is None, reason="node.js is not installed (only used to check JS syntax)")
def test_viewer_scripts_parse(tmp_path):
    xyz, rgb = random_cloud(5)
    text = write_scene_html(tmp_path / "v.html", xyz, rgb).path.read_text(encoding="utf-8")
    inline = re.findall(r"<script>(.*?)</script>", text, re.S)
    assert len(inline) == 1
    (tmp_path / "page.js").write_text(inline[0], encoding="utf-8")
    result = subprocess.run(["node", "--check", str(tmp_path / "page.js")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_arrays_decode_to_the_inputs(tmp_path):
    xyz, rgb = random_cloud(300)
    xyz[0] = [1e5 + 0.125, -3.5, 2.0]  # far from the origin: the page must not lose it
    mask = np.zeros(300, dtype=bool)
    mask[[3, 17, 299]] = True
    out = write_scene_html(tmp_path / "v.html", xyz, rgb, highlights=[{"mask": mask, "label": "three points"}])
    data = page_data(out.path)
    assert data["total_points"] == 300 and out.shown_points == 300
    np.testing.assert_array_equal(data["points"], xyz)
    np.testing.assert_array_equal(data["colors"], rgb)
    np.testing.assert_array_equal(data["source_index"], np.arange(300))
    (highlight,) = data["highlights"]
    np.testing.assert_array_equal(highlight["indices"], [3, 17, 299])
    assert highlight["total"] == 3 and highlight["label"] == "three points"
    assert highlight["color"] == list(PALETTE[0]) and highlight["score"] is None


def test_subsampling_keeps_every_highlighted_point(tmp_path):
    xyz, rgb = random_cloud(5000, seed=1)
    rng = np.random.default_rng(2)
    first = np.zeros(5000, dtype=bool)
    first[rng.choice(5000, 250, replace=False)] = True
    second = np.zeros(5000, dtype=bool)
    second[rng.choice(5000, 120, replace=False)] = True
    highlights = [{"mask": first, "label": "one"}, {"mask": second, "label": "two", "color": (1, 2, 3)}]
    out = write_scene_html(tmp_path / "v.html", xyz, rgb, highlights=highlights, max_points=1000)
    data = page_data(out.path)
    kept = data["source_index"].astype(np.int64)
    assert len(kept) == 1000 and np.all(np.diff(kept) > 0) and out.shown_points == 1000
    assert set(np.flatnonzero(first | second)) <= set(kept)
    np.testing.assert_array_equal(data["points"], xyz[kept])
    np.testing.assert_array_equal(data["colors"], rgb[kept])
    for entry, mask in zip(data["highlights"], (first, second)):
        np.testing.assert_array_equal(kept[entry["indices"]], np.flatnonzero(mask))
    assert data["highlights"][1]["color"] == [1, 2, 3]
    again = write_scene_html(tmp_path / "w.html", xyz, rgb, highlights=highlights, max_points=1000)
    assert again.path.read_bytes() == out.path.read_bytes()  # deterministic


def test_more_highlighted_points_than_fit(tmp_path):
    xyz, rgb = random_cloud(2000, seed=3)
    mask = np.zeros(2000, dtype=bool)
    mask[::2] = True
    data = page_data(write_scene_html(tmp_path / "v.html", xyz, rgb, highlights=[{"mask": mask}], max_points=400).path)
    kept = data["source_index"]
    assert len(kept) == 400 and mask[kept].all()
    assert len(data["highlights"][0]["indices"]) == 400 and data["highlights"][0]["total"] == 1000


def test_non_finite_points_are_left_out(tmp_path):
    xyz, rgb = random_cloud(20)
    xyz[[4, 9]] = np.nan
    data = page_data(write_scene_html(tmp_path / "v.html", xyz, None).path)
    np.testing.assert_array_equal(data["source_index"], np.setdiff1d(np.arange(20), [4, 9]))
    assert (data["colors"] == 160).all()  # grey without colours


def test_labels_boxes_and_escaping(tmp_path):
    xyz, rgb = random_cloud(10)
    nasty = 'the "chair" </script><b>left</b> & right'
    boxes = [
        {"box": [0.5, -1, 0, 1.5, 1, 2.25], "label": nasty, "score": 0.75},
        {"box": [np.nan] * 6, "label": "nothing found", "score": float("nan")},
    ]
    out = write_scene_html(tmp_path / "v.html", xyz, rgb, boxes=boxes, title="scene <0>")
    text = out.path.read_text(encoding="utf-8")
    assert text.count("</script>") == 2  # the JSON block and the viewer; the label cannot close either
    assert "<title>scene &lt;0&gt;</title>" in text
    data = page_data(out.path)
    assert data["title"] == "scene <0>"
    assert [b["label"] for b in data["boxes"]] == [nasty, "nothing found"]
    assert data["boxes"][0]["box"] == [0.5, -1, 0, 1.5, 1, 2.25] and data["boxes"][0]["score"] == 0.75
    assert data["boxes"][1]["box"] is None and data["boxes"][1]["score"] is None
    assert data["boxes"][1]["color"] == list(PALETTE[1])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"highlights": [{"mask": np.ones(9, bool)}]}, r"mask must be \(10,\)"),
        ({"highlights": [{"label": "no mask"}]}, "no 'mask'"),
        ({"boxes": [{"box": [0, 0, 1, 1]}]}, r"box must be \(6,\)"),
        ({"boxes": [{"box": [0] * 6, "color": (0, 0, 300)}]}, "color must be"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    xyz, rgb = random_cloud(10)
    with pytest.raises(ValueError, match=message):
        write_scene_html(tmp_path / "v.html", xyz, rgb, **kwargs)
    with pytest.raises(ValueError, match="colors must be"):
        write_scene_html(tmp_path / "v.html", xyz, rgb[:5])


# ------------------------------------------------------------------------------------------- scenes

K = np.array([[4.0, 0.0, 3.5], [0.0, 4.0, 2.5], [0.0, 0.0, 1.0]])
CAMERA_STEP = 3.0  # metres between cameras: the footprints (2 m wide at 2 m depth) never overlap


def write_scene_folder(root: Path, with_mesh: bool, align_shift=(0.0, 0.0, 0.0)) -> Path:
    """Four cameras 3 m apart along x, looking down +z at a plane 2 m away; frame i is coloured (40 i, 10, 200)."""
    for folder in ("color", "depth", "pose"):
        (root / folder).mkdir(parents=True)
    for i in range(4):
        scannet.write_color(root / "color" / f"{i}.png", np.full((6, 8, 3), (40 * i, 10, 200), dtype=np.uint8))
        scannet.write_depth(root / "depth" / f"{i}.png", np.full((6, 8), 2.0))
        pose = np.eye(4)
        pose[0, 3] = CAMERA_STEP * i
        scannet.write_matrix_txt(root / "pose" / f"{i}.txt", pose)
    scannet.write_matrix_txt(root / "intrinsics.txt", K)
    if with_mesh:
        xyz, rgb = random_cloud(400, seed=5)
        scannet.write_mesh_ply(root / f"{root.name}_vh_clean_2.ply", xyz, rgb)
        align = np.eye(4)
        align[:3, 3] = align_shift
        scannet.write_scene_meta(root / f"{root.name}.txt", align)
    return root


def expected_sensor_points() -> tuple[np.ndarray, np.ndarray]:
    """Hand-worked lifting of write_scene_folder: pixel (v, u) of frame i -> (3 i + (u - cx) z / fx, ..., z)."""
    v, u = np.mgrid[0:6, 0:8]
    points, colors = [], []
    for i in range(4):
        cam = np.stack([(u - 3.5) * 2.0 / 4.0 + CAMERA_STEP * i, (v - 2.5) * 2.0 / 4.0, np.full(u.shape, 2.0)], -1)
        points.append(cam.reshape(-1, 3))
        colors.append(np.tile([40 * i, 10, 200], (48, 1)))
    return np.concatenate(points), np.concatenate(colors)


def sorted_rows(points: np.ndarray, colors: np.ndarray) -> np.ndarray:
    rows = np.concatenate([np.round(points, 4), colors], axis=1)
    return rows[np.lexsort(rows.T[::-1])]


def test_sensor_cloud_matches_hand_lifting(tmp_path):
    scene = load_scene(write_scene_folder(tmp_path / "cap", with_mesh=False))
    xyz, rgb = sensor_cloud(scene.frames)
    np.testing.assert_allclose(sorted_rows(xyz, rgb), sorted_rows(*expected_sensor_points()), atol=1e-4)
    # A pixel budget forces a stride of 2: every other row and column, with the intrinsics to match.
    xyz2, rgb2 = sensor_cloud(scene.frames, max_points=4 * 12)
    expected, colors = expected_sensor_points()
    v, u = np.mgrid[0:6, 0:8]
    every_other = np.tile(((v % 2 == 0) & (u % 2 == 0)).ravel(), 4)
    np.testing.assert_allclose(
        sorted_rows(xyz2, rgb2), sorted_rows(expected[every_other], colors[every_other]), atol=1e-4
    )


def test_scene_with_mesh_shows_aligned_vertices_and_groundings(tmp_path):
    root = write_scene_folder(tmp_path / "scene0007_00", with_mesh=True, align_shift=(10.0, 0.0, -1.0))
    scene = load_scene(root)
    aligned = scene.points.xyz + np.array([10.0, 0.0, -1.0], dtype=np.float32)
    mask = aligned[:, 0] < 9.0
    box = np.concatenate([aligned[mask].min(0), aligned[mask].max(0)])
    hits = [
        SimpleNamespace(sentence="the left part", mask=mask, box=box, score=0.9, points=aligned),
        {"label": "a box only", "box": np.array([10, 0, 0, 11, 1, 1.0]), "score": None},
    ]
    out = scene_html(tmp_path / "v.html", scene, hits)
    data = page_data(out.path)
    assert data["title"] == "scene0007_00" and data["total_points"] == 400
    np.testing.assert_allclose(data["points"], aligned, atol=1e-5)
    np.testing.assert_array_equal(data["colors"], scene.points.colors)
    (highlight,) = data["highlights"]
    np.testing.assert_array_equal(highlight["indices"], np.flatnonzero(mask))
    assert highlight["label"] == "the left part" and highlight["score"] == pytest.approx(0.9)
    assert [b["label"] for b in data["boxes"]] == ["the left part", "a box only"]
    np.testing.assert_allclose(data["boxes"][0]["box"], box, atol=1e-6)
    assert data["boxes"][0]["color"] == highlight["color"] and data["boxes"][1]["color"] == list(PALETTE[1])


def test_scene_without_mesh_uses_the_points_groundings_carry(tmp_path):
    scene = load_scene(write_scene_folder(tmp_path / "cap", with_mesh=False))
    # Points like the model's lifted cloud: near frames 0 and 2 (so their colours come from those frames).
    carried = np.array([[0.1, 0.2, 2.0], [0.3, -0.1, 2.01], [6.05, 0.0, 1.98]], dtype=np.float32)
    hit = {"sentence": "the right one", "mask": np.array([False, False, True]), "box": None, "points": carried}
    data = page_data(scene_html(tmp_path / "v.html", scene, [hit]).path)
    np.testing.assert_allclose(data["points"], carried)
    np.testing.assert_array_equal(data["colors"], [[0, 10, 200], [0, 10, 200], [80, 10, 200]])
    np.testing.assert_array_equal(data["highlights"][0]["indices"], [2])
    assert data["boxes"] == []


def test_scene_without_mesh_and_groundings_shows_the_sensor_cloud(tmp_path):
    scene = load_scene(write_scene_folder(tmp_path / "cap", with_mesh=False))
    data = page_data(scene_html(tmp_path / "v.html", scene).path)
    np.testing.assert_allclose(
        sorted_rows(data["points"], data["colors"]), sorted_rows(*expected_sensor_points()), atol=1e-4
    )


def test_mask_that_fits_no_point_set(tmp_path):
    scene = load_scene(write_scene_folder(tmp_path / "scene0001_00", with_mesh=True))
    with pytest.raises(SceneError, match=r"masks over \[7\] points but the scene has its 400 points"):
        scene_html(tmp_path / "v.html", scene, [{"sentence": "x", "mask": np.ones(7, bool)}])


# -------------------------------------------------------------------------------------- grounding files


def test_grounding_file_round_trip(tmp_path):
    points = np.random.default_rng(0).normal(size=(30, 3)).astype(np.float32)
    masks = [np.arange(30) < 5, np.zeros(30, bool)]
    hits = [
        SimpleNamespace(sentence="a", phrase="a", span=(0, 1), mask=masks[0], box=np.arange(6.0), score=0.5,
                        points=points),
        SimpleNamespace(sentence="b", phrase=None, mask=masks[1], box=np.full(6, np.nan), score=0.1, points=points),
    ]  # fmt: skip
    path = write_groundings(tmp_path / "out" / "result.json", hits, scene_id="s1")
    document = json.loads(path.read_text())
    assert document["scene"] == "s1" and document["sentences"] == ["a", "b"]
    assert document["results"][1]["box"] is None
    assert document["results"][0]["span"] == [0, 1] and "span" not in document["results"][1]
    back = read_groundings(path)
    assert back[0]["span"] == (0, 1) and back[1]["span"] is None
    for original, read in zip(hits, back):
        assert read["sentence"] == original.sentence and read["phrase"] == original.phrase
        assert read["score"] == pytest.approx(original.score)
        np.testing.assert_array_equal(read["mask"], original.mask)
        np.testing.assert_array_equal(read["points"], points)
    np.testing.assert_array_equal(back[0]["box"], np.arange(6.0))
    assert back[1]["box"] is None


def test_hand_written_grounding_file(tmp_path):
    np.save(tmp_path / "m.npy", np.array([1, 0, 1], dtype=np.uint8))
    (tmp_path / "r.json").write_text(json.dumps({"sentences": ["first", "second"], "results": [
        {"mask_file": "m.npy", "box": [0, 0, 0, 1, 1, 1], "score": 2},
        {"sentence": "explicit", "box": None},
    ]}))  # fmt: skip
    first, second = read_groundings(tmp_path / "r.json")
    assert first["sentence"] == "first" and second["sentence"] == "explicit"
    np.testing.assert_array_equal(first["mask"], [True, False, True])
    assert first["points"] is None and second["mask"] is None and second["box"] is None


@pytest.mark.parametrize(
    ("results", "message"),
    [
        ([{"sentence": "a"}, {"sentence": "b", "box": [1, 2]}], r"results\[1\]\.box"),
        ([{"sentence": 3}], r"results\[0\]\.sentence"),
        ([{"sentence": "a", "score": "high"}], r"results\[0\]\.score"),
        ([{"sentence": "a", "span": [1]}], r"results\[0\]\.span"),
        ([{"sentence": "a", "mask_file": "missing.npy"}], r"results\[0\]\.mask_file: .*missing\.npy not found"),
        ([{"sentence": "a", "mask_file": "float.npy"}], r"results\[0\]\.mask_file: expected a \(P,\) bool"),
    ],
)
def test_bad_grounding_files(tmp_path, results, message):
    np.save(tmp_path / "float.npy", np.array([0.5, 0.2]))
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"results": results}))
    with pytest.raises(FormatError, match=message) as info:
        read_groundings(path)
    assert str(path) in str(info.value)


# ------------------------------------------------------------------------------------------------ CLI


def test_cli_view_end_to_end(tmp_path, capsys):
    root = write_scene_folder(tmp_path / "scene0002_00", with_mesh=True)
    xyz = load_scene(root).points.xyz
    mask = xyz[:, 2] > 1.0
    np.save(tmp_path / "mask0.npy", mask)
    box = [float(v) for v in np.concatenate([xyz[mask].min(0), xyz[mask].max(0)])]
    (tmp_path / "result.json").write_text(json.dumps({
        "sentences": ["the high points"],
        "results": [{"sentence": "the high points", "box": box, "score": 0.42, "mask_file": "mask0.npy"}],
    }))  # fmt: skip
    out = tmp_path / "pages" / "view.html"
    args = ["view", "--scene", str(root), "--grounding", str(tmp_path / "result.json"), "--out", str(out)]
    assert main(args + ["--max-points", "300"]) == 0
    message = capsys.readouterr().out
    assert f"wrote {out}" in message and "300 of 400 points" in message and "1 grounding" in message
    data = page_data(out)
    kept = data["source_index"].astype(np.int64)
    assert len(kept) == 300 and set(np.flatnonzero(mask)) <= set(kept)
    np.testing.assert_array_equal(kept[data["highlights"][0]["indices"]], np.flatnonzero(mask))
    assert data["boxes"][0]["label"] == "the high points" and data["boxes"][0]["score"] == 0.42
    np.testing.assert_allclose(data["boxes"][0]["box"], box)


def test_cli_view_without_mesh_and_errors(tmp_path, capsys):
    root = write_scene_folder(tmp_path / "cap", with_mesh=False)
    out = tmp_path / "view.html"
    assert main(["view", "--scene", str(root), "--out", str(out), "--title", "my capture"]) == 0
    assert "192 of 192 points" in capsys.readouterr().out
    assert page_data(out)["title"] == "my capture"
    np.save(tmp_path / "mask.npy", np.ones(5, bool))
    (tmp_path / "r.json").write_text(json.dumps({"results": [{"sentence": "x", "mask_file": "mask.npy"}]}))
    assert main(["view", "--scene", str(root), "--grounding", str(tmp_path / "r.json"), "--out", str(out)]) == 2
    assert "masks over [5] points but the scene has no point set" in capsys.readouterr().err
