"""Generation end to end: determinism, disjoint splits, the ScanNet layout read by load_scene, geometry, CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from univlg.cli import main
from univlg.data.scene import load_scene
from univlg.data.synthetic.generate import generate
from univlg.data.synthetic.generate_scene import SynthSettings, generate_scene
from univlg.data.synthetic.shapes import ALL_CLASSES
from univlg.data.synthetic.verify import check_geometry
from univlg.data.synthetic.writer import write_scene
from univlg.errors import ConfigError

TINY = replace(SynthSettings(), frames=3, width=48, height=36, spacing=0.04, questions_per_scene=6)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_output(tmp_path):
    generate(tmp_path / "a", {"train": 2, "val": 1}, seed=5, settings=TINY, progress=False)
    generate(tmp_path / "b", {"train": 2, "val": 1}, seed=5, settings=TINY, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert a.keys() == b.keys() and len(a) > 40
    assert [name for name in a if a[name] != b[name]] == []


def test_scenes_do_not_depend_on_how_many_are_made_and_splits_differ(tmp_path):
    generate(tmp_path / "one", {"train": 1}, seed=5, settings=TINY, progress=False)
    generate(tmp_path / "two", {"train": 2, "val": 1}, seed=5, settings=TINY, progress=False)
    one, two = _files(tmp_path / "one" / "scans"), _files(tmp_path / "two" / "scans")
    assert all(two[name] == data for name, data in one.items())
    train = (tmp_path / "two/scans/synth_train_0000/synth_train_0000_vh_clean_2.ply").read_bytes()
    val = (tmp_path / "two/scans/synth_val_0000/synth_val_0000_vh_clean_2.ply").read_bytes()
    other_seed = generate_scene("train", 0, 6, TINY)
    assert (
        train != val
        and other_seed.world.room.size.tolist() != generate_scene("train", 0, 5, TINY).world.room.size.tolist()
    )
    manifest = json.loads((tmp_path / "two" / "manifest.json").read_text())
    assert set(manifest["splits"]["train"]["scene_ids"]).isdisjoint(manifest["splits"]["val"]["scene_ids"])
    assert manifest["splits"]["train"]["split_code"] != manifest["splits"]["val"]["split_code"]
    assert [c["name"] for c in manifest["classes"]] == list(ALL_CLASSES) and manifest["seed"] == 5
    assert (tmp_path / "two/splits/synth_val.txt").read_text() == "synth_val_0000\n"


def test_a_folder_refuses_data_from_another_seed_but_adds_splits_of_the_same(tmp_path):
    generate(tmp_path, {"train": 1}, seed=1, settings=TINY, progress=False)
    generate(tmp_path, {"test": 1}, seed=1, settings=TINY, progress=False)
    assert set(json.loads((tmp_path / "manifest.json").read_text())["splits"]) == {"train", "test"}
    with pytest.raises(ConfigError, match="another seed"):
        generate(tmp_path, {"val": 1}, seed=2, settings=TINY, progress=False)
    with pytest.raises(ConfigError, match="unknown split"):
        generate(tmp_path / "x", {"dev": 1}, seed=1, settings=TINY, progress=False)


@pytest.fixture(scope="module")
def default_scene(tmp_path_factory):
    scene = generate_scene("val", 0, 0, SynthSettings())
    return scene, write_scene(scene, tmp_path_factory.mktemp("scans"))


def test_load_scene_reads_the_written_scan(default_scene):
    scene, folder = default_scene
    loaded = load_scene(folder)
    assert loaded.scene_id == "synth_val_0000" and loaded.frames.rgb.shape == (30, 120, 160, 3)
    assert len(loaded.points) == len(scene.surface) and loaded.points.segment_ids is not None
    assert (loaded.points.instance_ids == scene.surface.instance).all()
    assert (loaded.points.semantic_ids == scene.surface.semantic).all()
    assert loaded.objects == dict(enumerate(scene.world.labels))
    aligned = loaded.aligned()
    assert np.allclose(aligned.points.xyz, scene.surface.xyz, atol=1e-4)  # the room frame is the aligned frame
    assert np.allclose(aligned.frames.cam_to_world, scene.cam_to_room, atol=1e-4)
    assert not np.allclose(loaded.axis_align, np.eye(4))
    assert np.allclose(loaded.frames.depth, scene.rendering.depth, atol=6e-4)  # millimetre png


def test_depth_lands_on_the_surface_points_with_matching_instances(default_scene):
    _, folder = default_scene
    check = check_geometry(folder)
    assert check.pixels == 30 * 120 * 160
    assert check.median_distance < 0.01 and check.p95_distance < 0.02
    assert check.instance_agreement > 0.99


def test_sensor_realism_adds_noise_holes_and_invalid_poses(tmp_path):
    scene = generate_scene("train", 0, 0, replace(TINY, frames=30, sensor_noise=True))
    assert (scene.sensor_depth == 0).any() and not scene.pose_valid.all()
    assert not np.allclose(scene.sensor_depth[scene.sensor_depth > 0], scene.rendering.depth[scene.sensor_depth > 0])
    loaded = load_scene(write_scene(scene, tmp_path))
    assert (~loaded.frames.valid_pose).sum() == (~scene.pose_valid).sum()


def test_cli_writes_a_dataset_and_reports_bad_arguments(tmp_path, capsys):
    args = ["synth", "--out", str(tmp_path), "--scenes", "1", "--split", "val", "test=1", "--frames", "2",
            "--resolution", "48x36", "--spacing", "0.05", "--quiet", "--verify"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "wrote 2 scenes" in printed and "val: 1 scenes" in printed
    assert "val verified:" in printed and "test verified:" in printed
    assert (tmp_path / "scans/synth_test_0000/color/1.jpg").is_file()
    assert main(["synth", "--out", str(tmp_path / "x"), "--resolution", "big", "--quiet"]) == 2
    assert "--resolution" in capsys.readouterr().err


@pytest.mark.slow
def test_parallel_workers_write_the_same_bytes(tmp_path):
    generate(tmp_path / "serial", {"train": 2}, seed=3, settings=TINY, progress=False)
    generate(tmp_path / "parallel", {"train": 2}, seed=3, settings=TINY, progress=False, workers=2)
    assert _files(tmp_path / "serial") == _files(tmp_path / "parallel")
