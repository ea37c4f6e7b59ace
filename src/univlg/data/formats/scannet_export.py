"""Export ScanNet's raw release (``scans/<scene>/<scene>.sens`` + scan files) to the layout ``load_scene`` reads.

Output per scene (the official ``SensReader`` export layout, every ``frame_skip``-th frame, ``<i>`` = the raw
frame index in the stream)::

    <out>/<scene>/color/<i>.jpg         the stream's JPEG bytes, copied unchanged (PNG / raw colour -> <i>.png)
    <out>/<scene>/depth/<i>.png         uint16 millimetres, 0 = no reading
    <out>/<scene>/pose/<i>.txt          4x4 camera-to-world (non-finite where tracking was lost)
    <out>/<scene>/intrinsic/{intrinsic,extrinsic}_{color,depth}.txt   4x4
    <out>/<scene>/<scene>_vh_clean_2.ply, .aggregation.json, _vh_clean_2.0.010000.segs.json, <scene>.txt,
                 _vh_clean_2.labels.ply   copied from the scan folder when present

Resumable: a scene is exported into ``<out>/<scene>.partial``, completed by writing :data:`MARKER` (frame skip,
frame count, size of the source ``.sens``) last, then renamed to ``<out>/<scene>``. A scene folder whose marker
matches the source and frame skip is finished and skipped on a rerun; anything else is exported again.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from univlg.data.formats.fields import read_json
from univlg.data.formats.scannet import write_depth, write_matrix_txt
from univlg.data.formats.sens import SensReader, encode_color
from univlg.errors import FormatError

logger = logging.getLogger(__name__)

MARKER = "prepare_complete.json"
SCAN_FILE_SUFFIXES = (
    "_vh_clean_2.ply",
    ".aggregation.json",
    "_vh_clean_2.0.010000.segs.json",
    ".txt",
    "_vh_clean_2.labels.ply",
)


def export_sens(sens_path: str | Path, out_dir: str | Path, frame_skip: int = 20, progress: bool = True) -> int:
    """Write every ``frame_skip``-th frame of a ``.sens`` file into ``out_dir`` (layout above); returns the count."""
    out_dir = Path(out_dir)
    for name in ("color", "depth", "pose", "intrinsic"):
        (out_dir / name).mkdir(parents=True, exist_ok=True)
    count = 0
    with SensReader(sens_path) as sens:
        header = sens.header
        for name, matrix in (
            ("intrinsic_color", header.intrinsic_color),
            ("extrinsic_color", header.extrinsic_color),
            ("intrinsic_depth", header.intrinsic_depth),
            ("extrinsic_depth", header.extrinsic_depth),
        ):
            write_matrix_txt(out_dir / "intrinsic" / f"{name}.txt", matrix)
        total = (header.num_frames + frame_skip - 1) // frame_skip
        bar = tqdm(sens.frames(frame_skip), total=total, desc=Path(sens_path).stem, unit="frame", disable=not progress)
        for frame in bar:
            if header.color_compression == "jpeg":
                (out_dir / "color" / f"{frame.index}.jpg").write_bytes(frame.color_data)
            elif header.color_compression == "png":
                (out_dir / "color" / f"{frame.index}.png").write_bytes(frame.color_data)
            else:
                (out_dir / "color" / f"{frame.index}.png").write_bytes(encode_color(frame.color(header), "png"))
            depth_m = frame.depth(header).astype(np.float64) / header.depth_shift
            write_depth(out_dir / "depth" / f"{frame.index}.png", depth_m)
            write_matrix_txt(out_dir / "pose" / f"{frame.index}.txt", frame.cam_to_world)
            count += 1
    return count


def _marker_of(sens_path: Path, frame_skip: int, frames: int | None = None) -> dict:
    marker = {"source": sens_path.name, "source_bytes": sens_path.stat().st_size, "frame_skip": frame_skip}
    return marker if frames is None else {**marker, "frames": frames}


def is_finished(scene_out: str | Path, sens_path: str | Path, frame_skip: int) -> bool:
    """True when ``scene_out`` holds a complete export of ``sens_path`` at ``frame_skip`` (its marker matches)."""
    marker_file = Path(scene_out) / MARKER
    try:
        marker = read_json(marker_file)
    except (OSError, FormatError):
        return False
    expected = _marker_of(Path(sens_path), frame_skip)
    return isinstance(marker, dict) and all(marker.get(k) == v for k, v in expected.items())


def prepare_scene(scan_dir: str | Path, out_root: str | Path, frame_skip: int = 20, progress: bool = True) -> bool:
    """Export one scan folder ``<scans>/<scene>`` into ``<out_root>/<scene>``; False when it was already finished."""
    scan_dir, out_root = Path(scan_dir), Path(out_root)
    scene = scan_dir.name
    sens_path = scan_dir / f"{scene}.sens"
    final, partial = out_root / scene, out_root / f"{scene}.partial"
    if partial.exists():  # left by an interrupted run
        shutil.rmtree(partial)
    if is_finished(final, sens_path, frame_skip):
        return False
    frames = export_sens(sens_path, partial, frame_skip, progress)
    for suffix in SCAN_FILE_SUFFIXES:
        source = scan_dir / f"{scene}{suffix}"
        if source.is_file():
            shutil.copy2(source, partial / source.name)
    (partial / MARKER).write_text(json.dumps(_marker_of(sens_path, frame_skip, frames)))
    if final.exists():
        shutil.rmtree(final)
    partial.rename(final)
    return True


@dataclass
class PrepareSummary:
    """Scenes exported by this run and scenes skipped because an earlier run finished them."""

    prepared: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def find_scans(scans_dir: str | Path) -> list[Path]:
    """Scan folders ``<scans_dir>/<scene>`` that hold ``<scene>.sens``, sorted by name."""
    scans_dir = Path(scans_dir)
    if not scans_dir.is_dir():
        raise FileNotFoundError(f"{scans_dir}: scans folder not found")
    return sorted(d for d in scans_dir.iterdir() if d.is_dir() and (d / f"{d.name}.sens").is_file())


def prepare_scannet(
    scans_dir: str | Path,
    out_root: str | Path,
    frame_skip: int = 20,
    scenes: list[str] | None = None,
    progress: bool = True,
) -> PrepareSummary:
    """Export every scan of ``scans_dir`` (or only ``scenes``) that is not finished yet; see the module docstring.

    A bad ``.sens`` raises FormatError naming it; scenes finished before it stay finished, so a rerun resumes.
    """
    if frame_skip < 1:
        raise ValueError(f"frame_skip must be >= 1, got {frame_skip}")
    scans = find_scans(scans_dir)
    if scenes is not None:
        by_name = {s.name: s for s in scans}
        missing = [s for s in scenes if s not in by_name]
        if missing:
            raise FileNotFoundError(f"{scans_dir}: no <scene>/<scene>.sens for {missing}")
        scans = [by_name[s] for s in scenes]
    if not scans:
        raise FileNotFoundError(f"{scans_dir}: no <scene>/<scene>.sens scan folders")
    Path(out_root).mkdir(parents=True, exist_ok=True)
    summary = PrepareSummary()
    for scan in tqdm(scans, desc="scenes", unit="scene", disable=not progress):
        try:
            done = prepare_scene(scan, out_root, frame_skip, progress)
        except FormatError as error:
            raise FormatError(f"{scan.name}: {error}") from error
        (summary.prepared if done else summary.skipped).append(scan.name)
        logger.info("%s: %s", scan.name, "exported" if done else "already finished, skipped")
    return summary
