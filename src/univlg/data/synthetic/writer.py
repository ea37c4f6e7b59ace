"""Write a generated scene in the ScanNet export layout, through :mod:`univlg.data.formats.scannet`.

One folder per scene under ``<out>/scans/``::

    <scene>/color/<i>.jpg  depth/<i>.png (uint16 mm)  pose/<i>.txt (4x4 camera-to-world)
    <scene>/instance-filt/<i>.png         uint8 object id + 1 per pixel (0: none), as ScanNet's 2D instance labels
    <scene>/intrinsic/intrinsic_color.txt, intrinsic_depth.txt (4x4), extrinsic_color.txt, extrinsic_depth.txt
    <scene>/<scene>_vh_clean_2.ply        surface points as vertices (xyz, rgb, alpha)
    <scene>/<scene>_vh_clean_2.labels.ply per-vertex ``label`` (class id, see the manifest) only
    <scene>/<scene>_vh_clean_2.0.010000.segs.json   over-segment id per vertex
    <scene>/<scene>.aggregation.json      objects: objectId, label, segments
    <scene>/<scene>.txt                   meta with the axisAlignment line (raw scan frame -> room frame)
    <scene>/<scene>_synthetic.json        generator ground truth per object: colour name, facing direction,
                                          what it stands on (not a ScanNet file)

Poses and points are written in the raw scan frame; ``axisAlignment`` maps them to the room frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from plyfile import PlyData, PlyElement

from univlg.data.formats import scannet
from univlg.data.synthetic.generate_scene import GeneratedScene
from univlg.data.synthetic.primitives import affine


def write_labels_ply(path: Path, labels: np.ndarray) -> None:
    """A ``_vh_clean_2.labels.ply`` holding only the per-vertex ``label`` (ushort class id): (P,) labels.

    ScanNet's file repeats xyz and colour; the loader reads only ``label``, so the copy is left out (it would
    double the size of every scan).
    """
    vertex = np.empty(len(labels), dtype=[("label", "<u2")])
    vertex["label"] = labels
    PlyData([PlyElement.describe(vertex, "vertex")], text=False, byte_order="<").write(str(path))


def _aggregation(scene: GeneratedScene) -> list[scannet.AggregatedObject]:
    """One segGroup per object id, listing the (sorted) segments of its points."""
    surface = scene.surface
    pairs = np.unique(surface.instance * (1 << 32) + surface.segment)
    instance, segment = pairs >> 32, pairs & ((1 << 32) - 1)
    bounds = np.searchsorted(instance, np.arange(len(scene.world.labels) + 1))
    return [
        scannet.AggregatedObject(object_id, label, tuple(segment[bounds[object_id] : bounds[object_id + 1]].tolist()))
        for object_id, label in enumerate(scene.world.labels)
    ]


def _ground_truth(scene: GeneratedScene, to_raw: np.ndarray) -> dict:
    objects = []
    for obj in scene.world.objects:
        objects.append(
            {
                "objectId": obj.object_id,
                "label": obj.label,
                "color": obj.colour,
                "front": [round(float(v), 6) for v in to_raw[:3, :3] @ obj.front],
                "support": obj.support,
                "wall": obj.wall,
            }
        )
    size = scene.world.room.size
    return {"sceneId": scene.scene_id, "roomSize": [round(float(v), 6) for v in size], "objects": objects}


def write_scene(scene: GeneratedScene, scans_dir: Path, jpeg_quality: int = 90) -> Path:
    """Write ``scene`` under ``scans_dir/<scene_id>/`` and return that folder."""
    folder = Path(scans_dir) / scene.scene_id
    for sub in ("color", "depth", "pose", "instance-filt", "intrinsic"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    to_raw = np.linalg.inv(scene.axis_align)
    rendering = scene.rendering
    for i in range(len(scene.cam_to_room)):
        scannet.write_color(folder / "color" / f"{i}.jpg", rendering.rgb[i], quality=jpeg_quality)
        scannet.write_depth(folder / "depth" / f"{i}.png", scene.sensor_depth[i])
        pose = to_raw @ scene.cam_to_room[i] if scene.pose_valid[i] else np.full((4, 4), -np.inf)
        scannet.write_matrix_txt(folder / "pose" / f"{i}.txt", pose)
        instance = Image.fromarray((rendering.instance[i] + 1).astype(np.uint8))
        instance.save(folder / "instance-filt" / f"{i}.png", compress_level=1)
    scannet.write_intrinsic(folder / "intrinsic" / "intrinsic_color.txt", scene.intrinsics[0])
    scannet.write_intrinsic(folder / "intrinsic" / "intrinsic_depth.txt", scene.intrinsics[0])
    scannet.write_matrix_txt(folder / "intrinsic" / "extrinsic_color.txt", np.eye(4))
    scannet.write_matrix_txt(folder / "intrinsic" / "extrinsic_depth.txt", np.eye(4))

    surface = scene.surface
    xyz = affine(to_raw, surface.xyz.astype(np.float64)).astype(np.float32)
    sid = scene.scene_id
    scannet.write_mesh_ply(folder / f"{sid}{scannet.MESH_SUFFIX}", xyz, surface.colors)
    write_labels_ply(folder / f"{sid}{scannet.LABELS_MESH_SUFFIX}", surface.semantic)
    scannet.write_segments(folder / f"{sid}{scannet.SEGMENTS_SUFFIX}", sid, surface.segment.tolist())
    scannet.write_aggregation(folder / f"{sid}{scannet.AGGREGATION_SUFFIX}", sid, _aggregation(scene))
    height, width = rendering.depth.shape[1:]
    k = scene.intrinsics[0]
    meta = {
        "colorHeight": str(height),
        "colorWidth": str(width),
        "depthHeight": str(height),
        "depthWidth": str(width),
        "fx_color": f"{k[0, 0]:.6f}",
        "fy_color": f"{k[1, 1]:.6f}",
        "mx_color": f"{k[0, 2]:.6f}",
        "my_color": f"{k[1, 2]:.6f}",
        "fx_depth": f"{k[0, 0]:.6f}",
        "fy_depth": f"{k[1, 1]:.6f}",
        "mx_depth": f"{k[0, 2]:.6f}",
        "my_depth": f"{k[1, 2]:.6f}",
        "numColorFrames": str(len(scene.cam_to_room)),
        "numDepthFrames": str(len(scene.cam_to_room)),
        "sceneType": "Synthetic room",
    }
    scannet.write_scene_meta(folder / f"{sid}.txt", scene.axis_align, meta)
    (folder / f"{sid}_synthetic.json").write_text(json.dumps(_ground_truth(scene, to_raw), indent=1))
    return folder
