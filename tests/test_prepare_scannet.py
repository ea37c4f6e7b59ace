"""The .sens stream (written here in the documented layout) and ``univlg prepare scannet``: export, resume, CLI."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from PIL import Image

from univlg.cli import main
from univlg.data.formats.scannet_export import MARKER, prepare_scannet
from univlg.data.formats.sens import SensFrame, SensHeader, SensReader, encode_color, encode_depth, write_sens
from univlg.data.scene import load_scene
from univlg.errors import FormatError

COLOR_HW, DEPTH_HW = (24, 32), (12, 16)


def _frames(count: int, rng: np.random.Generator, color: str = "jpeg", depth: str = "zlib_ushort"):
    raw = []
    for i in range(count):
        rgb = np.zeros((*COLOR_HW, 3), np.uint8)
        rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10 * i, 128, np.arange(COLOR_HW[1], dtype=np.uint8)[None] * 8
        depth_mm = rng.integers(0, 5000, DEPTH_HW).astype(np.uint16)
        pose = np.eye(4, dtype=np.float32)
        pose[:3, 3] = (i, 2 * i, 0.5)
        if i == 4:
            pose[:] = -np.inf  # lost tracking, as ScanNet stores it
        raw.append((rgb, depth_mm, pose))
    frames = [
        SensFrame(i, pose, 1000 * i, 1000 * i + 1, encode_color(rgb, color), encode_depth(d, depth))
        for i, (rgb, d, pose) in enumerate(raw)
    ]
    return raw, frames


def _header(color: str = "jpeg", depth: str = "zlib_ushort") -> SensHeader:
    k_color = np.diag([30.0, 31.0, 1.0, 1.0]).astype(np.float32)
    k_color[:2, 2] = (16, 12)
    k_depth = np.diag([15.0, 15.5, 1.0, 1.0]).astype(np.float32)
    k_depth[:2, 2] = (8, 6)
    return SensHeader("StructureSensor", k_color, np.eye(4, dtype=np.float32), k_depth, np.eye(4, dtype=np.float32),
                      color, depth, (COLOR_HW[1], COLOR_HW[0]), (DEPTH_HW[1], DEPTH_HW[0]), 1000.0, 0)  # fmt: skip


def test_sens_round_trip_with_compressed_colour_and_depth(tmp_path):
    raw, frames = _frames(7, np.random.default_rng(0))
    write_sens(tmp_path / "a.sens", _header(), frames)
    with SensReader(tmp_path / "a.sens") as sens:
        header = sens.header
        assert (header.num_frames, header.color_compression, header.depth_compression) == (7, "jpeg", "zlib_ushort")
        assert header.sensor_name == "StructureSensor" and header.depth_shift == 1000.0
        assert header.color_size == (32, 24) and header.depth_size == (16, 12)
        np.testing.assert_array_equal(header.intrinsic_depth, _header().intrinsic_depth)
        read = list(sens.frames(skip=3))
    assert [f.index for f in read] == [0, 3, 6]
    for frame in read:
        rgb, depth_mm, pose = raw[frame.index]
        np.testing.assert_array_equal(frame.depth(header), depth_mm)
        assert np.abs(frame.color(header).astype(int) - rgb).mean() < 3  # JPEG is lossy
        np.testing.assert_array_equal(frame.cam_to_world, pose)
        assert (frame.timestamp_color, frame.timestamp_depth) == (1000 * frame.index, 1000 * frame.index + 1)


def test_sens_uncompressed_layout_is_byte_exact(tmp_path):
    raw, frames = _frames(2, np.random.default_rng(1), color="raw", depth="raw_ushort")
    write_sens(tmp_path / "raw.sens", _header("raw", "raw_ushort"), frames)
    data = (tmp_path / "raw.sens").read_bytes()
    name_length = struct.unpack_from("<Q", data, 4)[0]
    offset = 12 + name_length + 4 * 64
    assert struct.unpack_from("<2i4IfQ", data, offset) == (0, 0, 32, 24, 16, 12, 1000.0, 2)
    first_frame = offset + 36  # 2 int32 + 4 uint32 + float32 + uint64, packed
    assert struct.unpack_from("<16f", data, first_frame) == tuple(raw[0][2].reshape(16))  # row-major pose
    assert struct.unpack_from("<4Q", data, first_frame + 64) == (0, 1, 24 * 32 * 3, 12 * 16 * 2)
    with SensReader(tmp_path / "raw.sens") as sens:
        for frame, (rgb, depth_mm, _) in zip(sens.frames(), raw, strict=True):
            np.testing.assert_array_equal(frame.color(sens.header), rgb)
            np.testing.assert_array_equal(frame.depth(sens.header), depth_mm)


def test_bad_sens_files_are_reported(tmp_path):
    _, frames = _frames(3, np.random.default_rng(2))
    write_sens(tmp_path / "ok.sens", _header(), frames)
    data = (tmp_path / "ok.sens").read_bytes()
    (tmp_path / "short.sens").write_bytes(data[:-10])
    with SensReader(tmp_path / "short.sens") as sens, pytest.raises(FormatError, match="truncated.*frame 2 depth"):
        list(sens.frames())
    (tmp_path / "v3.sens").write_bytes(struct.pack("<I", 3) + data[4:])
    with pytest.raises(FormatError, match="version 3, expected 4"):
        SensReader(tmp_path / "v3.sens")


def _scans(root, rng, scenes=("scene0000_00", "scene0001_00"), count=7):
    raws = {}
    for scene in scenes:
        folder = root / scene
        folder.mkdir(parents=True)
        raw, frames = _frames(count, rng)
        write_sens(folder / f"{scene}.sens", _header(), frames)
        (folder / f"{scene}_vh_clean_2.ply").write_bytes(b"ply placeholder")
        (folder / f"{scene}.aggregation.json").write_text('{"segGroups": []}')
        raws[scene] = (raw, frames)
    return raws


def test_prepare_exports_the_scannet_layout(tmp_path):
    raws = _scans(tmp_path / "scans", np.random.default_rng(3))
    summary = prepare_scannet(tmp_path / "scans", tmp_path / "out", frame_skip=3, progress=False)
    assert summary.prepared == ["scene0000_00", "scene0001_00"] and summary.skipped == []
    out = tmp_path / "out" / "scene0001_00"
    raw, frames = raws["scene0001_00"]
    assert sorted(p.name for p in (out / "color").iterdir()) == ["0.jpg", "3.jpg", "6.jpg"]
    assert (out / "color" / "3.jpg").read_bytes() == frames[3].color_data  # JPEG copied, not re-encoded
    with Image.open(out / "depth" / "6.png") as image:
        np.testing.assert_array_equal(np.asarray(image), raw[6][1])
    np.testing.assert_allclose(np.loadtxt(out / "pose" / "3.txt"), raw[3][2])
    np.testing.assert_allclose(np.loadtxt(out / "intrinsic" / "intrinsic_depth.txt"), _header().intrinsic_depth)
    assert (out / "intrinsic" / "extrinsic_color.txt").is_file()
    assert (out / "scene0001_00_vh_clean_2.ply").read_bytes() == b"ply placeholder"
    assert json.loads((out / MARKER).read_text())["frames"] == 3
    assert not (tmp_path / "out" / "scene0001_00.partial").exists()


def test_prepared_scene_loads_with_load_scene(tmp_path):
    raws = _scans(tmp_path / "scans", np.random.default_rng(4), scenes=("scene0002_00",), count=5)
    (tmp_path / "scans" / "scene0002_00" / "scene0002_00_vh_clean_2.ply").unlink()  # frames only
    prepare_scannet(tmp_path / "scans", tmp_path / "out", frame_skip=2, progress=False)
    scene = load_scene(tmp_path / "out" / "scene0002_00")
    raw, _ = raws["scene0002_00"]
    assert scene.frames.names == ("0", "2", "4")
    np.testing.assert_allclose(scene.frames.depth[1], raw[2][1] / 1000.0, atol=1e-6)
    np.testing.assert_allclose(scene.frames.intrinsics[0], _header().intrinsic_depth[:3, :3])
    assert scene.frames.valid_pose.tolist() == [True, True, False]


def test_rerun_skips_finished_scenes_and_redoes_unfinished_ones(tmp_path):
    _scans(tmp_path / "scans", np.random.default_rng(5))
    prepare_scannet(tmp_path / "scans", tmp_path / "out", frame_skip=3, progress=False)
    again = prepare_scannet(tmp_path / "scans", tmp_path / "out", frame_skip=3, progress=False)
    assert again.prepared == [] and again.skipped == ["scene0000_00", "scene0001_00"]
    (tmp_path / "out" / "scene0000_00" / MARKER).unlink()  # an export interrupted before its marker
    (tmp_path / "out" / "scene0001_00.partial" / "color").mkdir(parents=True)  # leftovers of a crash
    third = prepare_scannet(tmp_path / "scans", tmp_path / "out", frame_skip=3, progress=False)
    assert third.prepared == ["scene0000_00"] and third.skipped == ["scene0001_00"]
    assert not (tmp_path / "out" / "scene0001_00.partial").exists()  # stale leftovers are cleaned
    fourth = prepare_scannet(tmp_path / "scans", tmp_path / "out", frame_skip=2, progress=False)
    assert fourth.prepared == ["scene0000_00", "scene0001_00"]  # another frame skip is another export
    assert sorted(p.name for p in (tmp_path / "out" / "scene0000_00" / "color").iterdir()) == [
        "0.jpg", "2.jpg", "4.jpg", "6.jpg"]  # fmt: skip


def test_cli_prepare_scannet(tmp_path, capsys):
    _scans(tmp_path / "scans", np.random.default_rng(6), scenes=("scene0003_00",), count=3)
    code = main(["prepare", "scannet", "--scans", str(tmp_path / "scans"), "--out", str(tmp_path / "out"),
                 "--frame-skip", "2", "--quiet"])  # fmt: skip
    assert code == 0 and "exported 1 scene(s)" in capsys.readouterr().out
    assert main(["prepare", "scannet", "--scans", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")]) == 2
