"""Scene loading: real ScanNet alignment, generic folders, frame selection, and every SceneError path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.spatial import cKDTree

from tests.conftest import require_realdata
from univlg.data.formats import scannet
from univlg.data.scene import load_scene
from univlg.errors import SceneError

# ---------------------------------------------------------------------------------------- real ScanNet


@pytest.fixture(scope="module")
def real_scene():
    return load_scene(require_realdata("scannet_scene0000_00"))


def _lift(depth: np.ndarray, k: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """Independent unprojection of the valid pixels of one frame to world points (N, 3)."""
    v, u = np.nonzero(depth > 0)
    z = depth[v, u].astype(np.float64)
    cam = np.stack([(u - k[0, 2]) * z / k[0, 0], (v - k[1, 2]) * z / k[1, 1], z], axis=1)
    return cam @ pose[:3, :3].T + pose[:3, 3]


def test_real_scene_depth_lands_on_mesh(real_scene):
    """Lifted depth of every frame sits on the mesh: proves intrinsics, poses and units."""
    frames = real_scene.frames
    assert len(frames) == 50 and frames.image_size == (480, 640)
    tree = cKDTree(real_scene.points.xyz)
    medians = []
    for v in range(len(frames)):
        points = _lift(frames.depth[v], frames.intrinsics[v], frames.cam_to_world[v].astype(np.float64))
        medians.append(np.median(tree.query(points[::7])[0]))
    assert max(medians) < 0.05, f"median distance to mesh per frame: {np.round(medians, 3)}"
    # A wrong pose must not pass: the check has teeth.
    wrong = _lift(frames.depth[0], frames.intrinsics[0], frames.cam_to_world[25].astype(np.float64))
    assert np.median(tree.query(wrong[::7])[0]) > 0.1


def test_real_scene_intrinsics_match_scannet_depth_camera(real_scene):
    """The colour intrinsic rescaled 1296x968 -> 640x480 equals ScanNet's published depth intrinsic."""
    k = real_scene.frames.intrinsics[0]
    np.testing.assert_allclose(
        [k[0, 0], k[1, 1], k[0, 2], k[1, 2]], [577.5907, 578.7298, 318.9054, 242.6836], atol=0.05
    )


def test_real_scene_labels_and_alignment(real_scene):
    points = real_scene.points
    assert len(points) == 81369 and points.segment_ids is not None
    agg = scannet.read_aggregation(require_realdata("scannet_scene0000_00", "scan", "scene0000_00.aggregation.json"))
    assert len(real_scene.objects) == len(agg) == 55
    # Every vertex of an aggregated segment carries that object's id.
    first = agg[0]
    on_segments = np.isin(points.segment_ids, first.segments)
    assert on_segments.any() and (points.instance_ids[on_segments] == first.object_id).all()
    assert real_scene.objects[first.object_id] == first.label
    align = real_scene.axis_align
    aligned = real_scene.aligned()
    expected = points.xyz.astype(np.float64) @ align[:3, :3].T + align[:3, 3]
    np.testing.assert_allclose(aligned.points.xyz, expected, atol=1e-4)
    np.testing.assert_allclose(aligned.frames.cam_to_world[3], align @ real_scene.frames.cam_to_world[3], atol=1e-4)
    # The aligned scan's floor is at z ~ 0 and axis-aligned: the known property of ScanNet's alignment.
    assert abs(np.percentile(aligned.points.xyz[:, 2], 2)) < 0.15


# ----------------------------------------------------------------------------------- generic folders

K = np.array([[8.0, 0.0, 3.5], [0.0, 8.0, 2.5], [0.0, 0.0, 1.0]])


def _pose(x: float) -> np.ndarray:
    pose = np.eye(4)
    pose[0, 3] = x
    return pose


def write_generic_scene(root: Path, n: int = 4, hw=(6, 8), plane_z: float = 2.0, color_hw=None) -> Path:
    """A camera sliding along x, looking at a plane z = plane_z; the mesh is the plane's points."""
    for d in ("color", "depth", "pose"):
        (root / d).mkdir(parents=True, exist_ok=True)
    color_hw = color_hw or hw
    for i in range(n):
        rgb = np.full((*color_hw, 3), (40 * i) % 256, dtype=np.uint8)
        scannet.write_color(root / "color" / f"{i}.png", rgb)
        scannet.write_depth(root / "depth" / f"{i}.png", np.full(hw, plane_z))
        scannet.write_matrix_txt(root / "pose" / f"{i}.txt", _pose(0.1 * i))
    k = K.copy()
    if color_hw != hw:  # intrinsics.txt describes the colour image
        k[0] *= color_hw[1] / hw[1]
        k[1] *= color_hw[0] / hw[0]
        k[0, 2] = (K[0, 2] + 0.5) * color_hw[1] / hw[1] - 0.5
        k[1, 2] = (K[1, 2] + 0.5) * color_hw[0] / hw[0] - 0.5
    scannet.write_matrix_txt(root / "intrinsics.txt", k)
    return root


def test_generic_folder_roundtrip(tmp_path):
    scene = load_scene(write_generic_scene(tmp_path / "cap"))
    assert scene.scene_id == "cap" and scene.points is None and len(scene.frames) == 4
    np.testing.assert_allclose(scene.frames.intrinsics[2], K, atol=1e-6)
    np.testing.assert_allclose(scene.frames.depth, 2.0)
    np.testing.assert_allclose(scene.frames.cam_to_world[3], _pose(0.3), atol=1e-6)
    assert scene.frames.rgb[1].max() == 40


def test_color_larger_than_depth_rescales_intrinsics(tmp_path):
    """Colour at 2x the depth size: colour is resized and its intrinsic mapped to the depth grid."""
    scene = load_scene(write_generic_scene(tmp_path / "cap", hw=(6, 8), color_hw=(12, 16)))
    assert scene.frames.rgb.shape == (4, 6, 8, 3)
    np.testing.assert_allclose(scene.frames.intrinsics[0], K, atol=1e-5)


def test_frame_selection_and_resize(tmp_path):
    root = write_generic_scene(tmp_path / "cap", n=10)
    assert load_scene(root, frame_skip=3).frames.names == ("0", "3", "6", "9")
    assert load_scene(root, max_frames=4).frames.names == ("0", "3", "6", "9")
    resized = load_scene(root, image_size=(3, 4)).frames
    assert resized.rgb.shape == (10, 3, 4, 3) and resized.depth.shape == (10, 3, 4)
    # Halving the grid: fx halves; the centre moves by the half-pixel rule.
    np.testing.assert_allclose(resized.intrinsics[0][0], [4.0, 0.0, (3.5 + 0.5) / 2 - 0.5], atol=1e-6)


def test_frames_sorted_numerically(tmp_path):
    root = write_generic_scene(tmp_path / "cap", n=12)
    assert load_scene(root).frames.names[:4] == ("0", "1", "2", "3")
    assert load_scene(root).frames.names[-1] == "11"


def test_npy_depth_and_per_frame_intrinsics(tmp_path):
    root = write_generic_scene(tmp_path / "cap", n=2)
    (root / "intrinsic").mkdir()
    for i in range(2):
        (root / "depth" / f"{i}.png").unlink()
        np.save(root / "depth" / f"{i}.npy", np.full((6, 8), 1.25 + i, dtype=np.float32))
        k = K.copy()
        k[0, 0] = 8.0 + i
        scannet.write_matrix_txt(root / "intrinsic" / f"{i}.txt", k)
    frames = load_scene(root).frames
    np.testing.assert_allclose(frames.depth[1], 2.25)
    assert frames.intrinsics[0][0, 0] == 8.0 and frames.intrinsics[1][0, 0] == 9.0


def test_scannet_layout_with_mesh_and_labels(tmp_path):
    root = write_generic_scene(tmp_path / "scene0001_00")
    (root / "intrinsics.txt").rename(root / "intrinsic_color.txt")
    xyz = np.random.default_rng(0).uniform(0, 1, (20, 3)).astype(np.float32)
    segments = np.repeat(np.arange(5), 4)
    scannet.write_mesh_ply(root / "scene0001_00_vh_clean_2.ply", xyz, np.zeros((20, 3), np.uint8))
    scannet.write_segments(root / "scene0001_00_vh_clean_2.0.010000.segs.json", "scene0001_00", segments)
    objects = [scannet.AggregatedObject(7, "chair", (1, 2)), scannet.AggregatedObject(9, "table", (4,))]
    scannet.write_aggregation(root / "scene0001_00.aggregation.json", "scene0001_00", objects)
    align = np.eye(4)
    align[:3, 3] = [1.0, 2.0, 3.0]
    scannet.write_scene_meta(root / "scene0001_00.txt", align, {"sceneType": "Office"})
    scene = load_scene(root)
    assert scene.scene_id == "scene0001_00" and scene.objects == {7: "chair", 9: "table"}
    expected = np.where(np.isin(segments, (1, 2)), 7, np.where(segments == 4, 9, -1))
    np.testing.assert_array_equal(scene.points.instance_ids, expected)
    np.testing.assert_allclose(scene.points.xyz, xyz, atol=1e-6)
    np.testing.assert_allclose(scene.axis_align, align, atol=1e-6)
    assert scene.object_mask(9).sum() == 4
    frames_only = load_scene(root, load_points=False)  # the mesh is not read
    assert frames_only.points is None and frames_only.objects == {}
    assert frames_only.frames.names == scene.frames.names and frames_only.scene_id == "scene0001_00"
    np.testing.assert_allclose(frames_only.axis_align, align, atol=1e-6)


def test_nonfinite_pose_is_kept_and_flagged(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    (root / "pose" / "2.txt").write_text("\n".join(["-inf -inf -inf -inf"] * 4))
    frames = load_scene(root).frames
    np.testing.assert_array_equal(frames.valid_pose, [True, True, False, True])


# ------------------------------------------------------------------------------------------ bad input


def _error(root, **kwargs) -> str:
    with pytest.raises(SceneError) as info:
        load_scene(root, **kwargs)
    return str(info.value)


def test_axis_alignment_must_be_an_affine_matrix(tmp_path):
    root = write_generic_scene(tmp_path / "scene0005_00")
    scannet.write_mesh_ply(root / "scene0005_00_vh_clean_2.ply", np.zeros((4, 3)), np.zeros((4, 3), np.uint8))
    bad = np.eye(4)
    bad[3] = [0.0, 0.0, 0.5, 1.0]  # not an affine map
    scannet.write_scene_meta(root / "scene0005_00.txt", bad)
    assert "axisAlignment: field 'matrix': last row must be [0, 0, 0, 1]" in _error(root)
    (root / "scene0005_00.txt").write_text("axisAlignment = 1 0 0\n")
    assert "expected 16 numbers" in _error(root)


def test_missing_scene_folder(tmp_path):
    assert "scene folder not found" in _error(tmp_path / "nope")


def test_missing_frame_folder(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    for file in (root / "pose").iterdir():
        file.unlink()
    (root / "pose").rmdir()
    assert "missing frame folder(s) ['pose']" in _error(root)


def test_missing_pose_is_reported_or_skipped(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    (root / "pose" / "1.txt").unlink()
    message = _error(root)
    assert "no pose file" in message and ": 1" in message
    assert load_scene(root, strict=False).frames.names == ("0", "2", "3")


def test_unreadable_image(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    (root / "color" / "2.png").write_bytes(b"not an image")
    message = _error(root)
    assert "2.png" in message and "unreadable image" in message


def test_bad_pose_text(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    (root / "pose" / "0.txt").write_text("1 0 0\n0 1 0\n0 0 x\n")
    assert "0.txt" in _error(root)
    (root / "pose" / "0.txt").write_text("1 0 0 0\n0 1 0 0\n")
    assert "0.txt" in _error(root)


def test_missing_intrinsics(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    (root / "intrinsics.txt").unlink()
    assert "no intrinsics found" in _error(root)


def test_depth_size_mismatch_between_frames(tmp_path):
    root = write_generic_scene(tmp_path / "cap")
    scannet.write_depth(root / "depth" / "3.png", np.ones((3, 4)))
    message = _error(root)
    assert "3.png" in message and "differs" in message


def test_corrupted_mesh(tmp_path):
    root = write_generic_scene(tmp_path / "scene0002_00")
    (root / "scene0002_00_vh_clean_2.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\nelement vertex 9\n")
    message = _error(root)
    assert "scene0002_00_vh_clean_2.ply" in message and "PLY" in message


def test_segments_do_not_match_mesh(tmp_path):
    root = write_generic_scene(tmp_path / "scene0003_00")
    scannet.write_mesh_ply(root / "scene0003_00_vh_clean_2.ply", np.zeros((5, 3)), np.zeros((5, 3), np.uint8))
    scannet.write_segments(root / "scene0003_00_vh_clean_2.0.010000.segs.json", "scene0003_00", np.arange(4))
    assert "4 segment ids for 5 mesh vertices" in _error(root)


def test_corrupted_aggregation(tmp_path):
    root = write_generic_scene(tmp_path / "scene0004_00")
    scannet.write_mesh_ply(root / "scene0004_00_vh_clean_2.ply", np.zeros((4, 3)), np.zeros((4, 3), np.uint8))
    scannet.write_segments(root / "scene0004_00_vh_clean_2.0.010000.segs.json", "scene0004_00", np.arange(4))
    (root / "scene0004_00.aggregation.json").write_text(json.dumps({"segGroups": [{"objectId": 1}]}))
    assert "segGroups[0]" in _error(root)
    (root / "scene0004_00.aggregation.json").write_text("{not json")
    assert "line 1: invalid JSON" in _error(root)
