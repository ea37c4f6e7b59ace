"""Independent checks of generated data, read back from the written files only.

- :func:`check_geometry`: the depth maps, unprojected with the written intrinsics and poses, land on the written
  surface points, and each pixel's instance id (``instance-filt``) is the id of the surface point it hits.
- :func:`check_referral`: a referring expression read back through the format readers names its target and
  anchors at its spans, lists exactly the other objects of the target's class as distractors, and its relation,
  evaluated here from scratch on the objects' points (plain definitions, no margins, none of the generator's
  code), holds for the target and for no distractor.

Nothing here imports the generator's relation code: the two agree only if the data is right.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from univlg.data.formats import scannet
from univlg.data.formats.referit3d import read_sr3d_csv
from univlg.data.formats.scanrefer import read_scanrefer_json
from univlg.data.records import Referral
from univlg.data.scene import load_scene
from univlg.geometry import transform_points, unproject_depth
from univlg.geometry.neighbors import knn


@dataclass
class GeometryCheck:
    """Distances (m) from unprojected depth pixels to the nearest surface point, and instance agreement."""

    pixels: int
    median_distance: float
    p95_distance: float
    instance_agreement: float


def check_geometry(scene_dir: str | Path) -> GeometryCheck:
    """Unproject a written scene's depth with its written cameras and compare with its written surface points."""
    scene = load_scene(scene_dir)
    frames = scene.frames
    points, valid = unproject_depth(
        torch.from_numpy(frames.depth).double(),
        torch.from_numpy(frames.intrinsics).double(),
        torch.from_numpy(frames.cam_to_world).double(),
    )
    query = points[valid]
    dist, idx = knn(query, torch.from_numpy(scene.points.xyz).double(), 1)
    labels = (
        np.stack([np.asarray(Image.open(Path(scene_dir) / "instance-filt" / f"{n}.png")) for n in frames.names]).astype(
            np.int64
        )
        - 1
    )
    hit = scene.points.instance_ids[idx[:, 0].numpy()]
    distances = dist[:, 0].numpy()
    return GeometryCheck(
        pixels=int(len(distances)),
        median_distance=float(np.median(distances)),
        p95_distance=float(np.percentile(distances, 95)),
        instance_agreement=float((hit == labels[valid.numpy()]).mean()),
    )


@dataclass
class CheckedObject:
    """An object as read from the files: aligned points (n, 3), label, colour name, facing direction (2,)."""

    label: str
    colour: str
    points: np.ndarray
    front: np.ndarray

    @property
    def lo(self) -> np.ndarray:
        """(3,) minimum corner of the points' box."""
        return self.points.min(axis=0)

    @property
    def hi(self) -> np.ndarray:
        """(3,) maximum corner of the points' box."""
        return self.points.max(axis=0)

    @property
    def centre(self) -> np.ndarray:
        """(3,) centre of the points' box."""
        return (self.lo + self.hi) / 2


def read_objects(scene_dir: str | Path) -> dict[int, CheckedObject]:
    """Objects (structure excluded) of a written scene, in the axis-aligned frame, from mesh + aggregation."""
    folder = Path(scene_dir)
    sid = folder.name
    xyz, _ = scannet.read_mesh_vertices(folder / f"{sid}{scannet.MESH_SUFFIX}")
    segments = scannet.read_segments(folder / f"{sid}{scannet.SEGMENTS_SUFFIX}")
    aggregation = scannet.read_aggregation(folder / f"{sid}{scannet.AGGREGATION_SUFFIX}")
    instance = scannet.instance_ids_from_aggregation(segments, aggregation)
    align = scannet.axis_alignment_from_meta(scannet.read_scene_meta(folder / f"{sid}.txt"))
    aligned = transform_points(xyz, align)
    truth = {o["objectId"]: o for o in scannet.read_json(folder / f"{sid}_synthetic.json")["objects"]}
    objects = {}
    for object_id, info in truth.items():
        front = align[:3, :3] @ np.asarray(info["front"])
        objects[object_id] = CheckedObject(info["label"], info["color"], aligned[instance == object_id], front[:2])
    return objects


def _footprint_points(anchor: CheckedObject, target: CheckedObject, grow: float) -> np.ndarray:
    lo, hi = target.lo[:2] - grow, target.hi[:2] + grow
    xy = anchor.points[:, :2]
    return anchor.points[((xy >= lo) & (xy <= hi)).all(axis=1)]


def _stands_on(target: CheckedObject, anchor: CheckedObject) -> bool:
    under = _footprint_points(anchor, target, 0.0)
    return len(under) >= 3 and abs(under[:, 2].max() - target.lo[2]) <= 0.03 and target.lo[2] > anchor.lo[2] + 0.1


def _facing_offsets(target: CheckedObject, anchor: CheckedObject) -> tuple[float, float, float, float]:
    """(lateral offset to the right of someone facing the anchor, offset along the anchor's front, anchor half
    width, anchor half depth)."""
    front = anchor.front / np.linalg.norm(anchor.front)
    right = np.array([-front[1], front[0]])
    offsets = anchor.points[:, :2] - anchor.centre[:2]
    rel = target.centre[:2] - anchor.centre[:2]
    return (
        float(rel @ right),
        float(rel @ front),
        float(np.abs(offsets @ right).max()),
        float(np.abs(offsets @ front).max()),
    )


def relation_holds(relation: str, target_id: int, anchor_ids: list[int], objects: dict[int, CheckedObject]) -> bool:
    """The plain definition of ``relation`` for ``target_id`` (superlatives are over its class)."""
    t = objects[target_id]
    a = [objects[i] for i in anchor_ids]
    peers = [i for i, o in objects.items() if o.label == t.label]
    if relation in ("closest", "farthest"):
        dist = {i: float(np.linalg.norm(objects[i].centre - a[0].centre)) for i in peers}
        best = (min if relation == "closest" else max)(dist.values())
        return dist[target_id] == best and sum(v == best for v in dist.values()) == 1
    if relation in ("largest", "smallest"):
        volume = {i: float(np.prod(objects[i].hi - objects[i].lo)) for i in peers}
        best = (max if relation == "largest" else min)(volume.values())
        return volume[target_id] == best and sum(v == best for v in volume.values()) == 1
    if relation == "color":
        return True
    if relation == "between":
        ab = a[1].centre[:2] - a[0].centre[:2]
        length = float(np.linalg.norm(ab))
        rel = t.centre[:2] - a[0].centre[:2]
        along = float(rel @ ab) / length**2
        across = abs(float(ab[0] * rel[1] - ab[1] * rel[0])) / length
        return length >= 1.0 and 0.1 <= along <= 0.9 and across <= max(0.3, 0.3 * length)
    if relation == "on":
        return _stands_on(t, a[0])
    if relation == "supporting":
        return _stands_on(a[0], t)
    if relation in ("above", "below"):  # floor plans overlap; the anchor's points over/under t clear it by 6 cm
        overlap = np.prod(np.clip(np.minimum(t.hi[:2], a[0].hi[:2]) - np.maximum(t.lo[:2], a[0].lo[:2]), 0, None))
        smaller = min(np.prod(t.hi[:2] - t.lo[:2]), np.prod(a[0].hi[:2] - a[0].lo[:2]))
        if overlap < 0.3 * smaller:
            return False
        z = _footprint_points(a[0], t, 0.0)[:, 2]
        return len(z) == 0 or (z.max() <= t.lo[2] - 0.06 if relation == "above" else z.min() >= t.hi[2] + 0.06)
    lateral, forward, width, depth = _facing_offsets(t, a[0])
    if relation in ("left", "right"):
        side = -lateral if relation == "left" else lateral
        return width <= side <= width + 1.5 and abs(forward) <= depth + 0.5
    ahead = forward if relation == "front" else -forward
    return depth <= ahead <= depth + 1.5 and abs(lateral) <= width + 0.1


def _mention_problems(referral: Referral, objects: dict[int, CheckedObject]) -> list[str]:
    problems = []
    for object_id in (referral.target_id, *referral.anchor_ids):
        spans = referral.spans.get(object_id, ())
        texts = [referral.utterance[s:e] for s, e in spans]
        if not spans or any(text != objects[object_id].label for text in texts):
            problems.append(f"object {object_id}: spans {spans} read {texts}, not {objects[object_id].label!r}")
    label = objects[referral.target_id].label
    first = referral.utterance.lower().find(label)
    target_spans = referral.spans.get(referral.target_id, ())
    if not target_spans or first != target_spans[0][0]:
        problems.append(f"first occurrence of {label!r} at {first} is not the target mention {target_spans}")
    return problems


def check_referral(referral: Referral, objects: dict[int, CheckedObject]) -> list[str]:
    """Problems with one referral (empty when it is right): mentions, distractors, uniqueness."""
    problems = _mention_problems(referral, objects)
    target = objects[referral.target_id]
    peers = sorted(i for i, o in objects.items() if o.label == target.label)
    distractors = referral.distractor_ids or tuple(referral.meta.get("distractor_ids", ()))
    if sorted(distractors) != [i for i in peers if i != referral.target_id] or not distractors:
        problems.append(f"distractors {sorted(distractors)} but the class has {peers}")
    constraints = referral.meta.get("relations")
    if constraints is None:
        constraints = [[referral.relation, list(referral.anchor_ids)]]
    with_colour = str(referral.meta.get("with_colour", False)) == "True" or referral.relation == "color"
    satisfied = []
    for i in peers:
        ok = all(relation_holds(rel, i, list(anchors), objects) for rel, anchors in constraints)
        if with_colour:
            ok = ok and objects[i].colour == target.colour
        satisfied.append(i) if ok else None
    if satisfied != [referral.target_id]:
        problems.append(f"{referral.utterance!r}: objects {satisfied} fit, expected only {referral.target_id}")
    return problems


def verify_split(root: str | Path, split: str, geometry_scenes: int = 3) -> dict:
    """Check every SR3D- and ScanRefer-style expression of a generated split, and the geometry of its first
    ``geometry_scenes`` scans. Returns counts, failures (at most 20 listed) and the geometry numbers."""
    root = Path(root)
    referrals = read_sr3d_csv(root / "referit3d" / f"sr3d_{split}.csv")
    referrals += read_scanrefer_json(root / "scanrefer" / f"ScanRefer_filtered_{split}.json")
    objects: dict[str, dict[int, CheckedObject]] = {}
    failures = []
    for referral in referrals:
        if referral.scene_id not in objects:
            objects[referral.scene_id] = read_objects(root / "scans" / referral.scene_id)
        problems = check_referral(referral, objects[referral.scene_id])
        if problems:
            failures.append(f"{referral.scene_id} {referral.utterance!r}: {'; '.join(problems)}")
    scene_ids = (root / "splits" / f"synth_{split}.txt").read_text().split()
    checks = [check_geometry(root / "scans" / sid) for sid in scene_ids[:geometry_scenes]]
    return {
        "expressions": len(referrals),
        "failures": len(failures),
        "failure_examples": failures[:20],
        "geometry_scenes": len(checks),
        "median_distance_m": float(np.median([c.median_distance for c in checks])) if checks else float("nan"),
        "p95_distance_m": float(np.max([c.p95_distance for c in checks])) if checks else float("nan"),
        "instance_agreement": float(np.min([c.instance_agreement for c in checks])) if checks else float("nan"),
    }
