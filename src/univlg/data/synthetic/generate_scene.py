"""One synthetic scene from one seed: room, walk, rendering, surface points and all its language.

The seed is split into independent streams (layout, cameras and light, sensor, language), so changing e.g. the
number of questions never moves a chair. Object ids follow :mod:`world`; the room frame is also the axis-aligned
frame, and ``axis_align`` maps a random raw scan frame (rotated about z and shifted, as real scans are) onto it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from univlg.data.records import ImageReferral, Question, Referral
from univlg.data.synthetic.cameras import walk
from univlg.data.synthetic.expressions import Description, unique_descriptions
from univlg.data.synthetic.furnish import furnish
from univlg.data.synthetic.language import scanrefer_referral, sr3d_referral
from univlg.data.synthetic.questions import make_questions
from univlg.data.synthetic.referrals2d import frame_referrals
from univlg.data.synthetic.relations import SceneFacts
from univlg.data.synthetic.render import Lighting, Rendering, render
from univlg.data.synthetic.surface import SurfacePoints, sample_surface
from univlg.data.synthetic.world import World, build_primitives, yaw_matrix

SPLIT_CODES = {"train": 1, "val": 2, "test": 3}


@dataclass(frozen=True)
class SynthSettings:
    """Generation settings (all recorded in the manifest)."""

    frames: int = 30
    width: int = 160
    height: int = 120
    spacing: float = 0.02
    referrals_per_scene: int = 24
    descriptions_per_scene: int = 8
    questions_per_scene: int = 12
    image_frames_per_scene: int = 3
    image_referrals_per_frame: int = 2
    sensor_noise: bool = False

    def to_dict(self) -> dict:
        """The settings as a plain dict (for the manifest)."""
        return asdict(self)


@dataclass
class GeneratedScene:
    """Everything generated for one scene. cam_to_room: (V, 4, 4) poses in the room frame; intrinsics (V, 3, 3);
    sensor_depth: (V, H, W) float32 depth as written (noisy/holed with sensor realism); pose_valid: (V,) bool;
    axis_align: (4, 4) raw scan frame -> room frame."""

    scene_id: str
    world: World
    intrinsics: np.ndarray
    cam_to_room: np.ndarray
    rendering: Rendering
    sensor_depth: np.ndarray
    pose_valid: np.ndarray
    surface: SurfacePoints
    axis_align: np.ndarray
    referrals: list[Referral]
    descriptions: list[Referral]
    questions: list[Question]
    image_referrals: list[ImageReferral]


def scene_id_of(split: str, index: int) -> str:
    """The id of scene ``index`` of ``split``: ``synth_<split>_<index:04d>``."""
    return f"synth_{split}_{index:04d}"


def scene_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed of one scene: splits use disjoint spawn keys, so their scenes never share a random stream."""
    return np.random.SeedSequence(entropy=seed, spawn_key=(SPLIT_CODES[split], index))


def image_id_of(split: str, index: int, frame: int) -> int:
    """COCO image id of a frame: split code, scene index and frame index in one integer."""
    return (SPLIT_CODES[split] * 100_000 + index) * 1000 + frame


def _axis_alignment(rng: np.random.Generator, size: np.ndarray) -> np.ndarray:
    """(4, 4) raw -> room transform: the room was scanned in a frame rotated and shifted about z."""
    raw_to_room = np.eye(4)
    raw_to_room[:3, :3] = yaw_matrix(rng.uniform(-np.pi, np.pi))
    raw_to_room[:3, 3] = [*(size[:2] / 2 + rng.uniform(-2.0, 2.0, 2)), 0.0]
    return raw_to_room


def _sensor(rng: np.random.Generator, depth: np.ndarray, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Depth as a sensor reports it (noise growing with depth, zero-depth holes) and which poses are valid."""
    valid = np.ones(len(depth), dtype=bool)
    if not enabled:
        return depth.copy(), valid
    noisy = depth + rng.normal(size=depth.shape).astype(np.float32) * (0.0012 + 0.0019 * (depth - 0.4) ** 2)
    views, height, width = depth.shape
    rows, cols = np.mgrid[0:height, 0:width]
    for v in range(views):
        for _ in range(int(rng.integers(1, 4))):
            cy, cx, r = rng.uniform(0, height), rng.uniform(0, width), rng.uniform(0.03, 0.1) * width
            noisy[v][(rows - cy) ** 2 + (cols - cx) ** 2 < r * r] = 0.0
    bad = rng.choice(views, size=max(1, views // 15), replace=False)
    valid[bad] = False
    return noisy.astype(np.float32), valid


def _balanced(descriptions: list[Description], count: int, rng: np.random.Generator) -> list[Description]:
    """Up to ``count`` descriptions drawn round-robin over relation types, no target-relation pair twice."""
    pools: dict[str, list[Description]] = {}
    for d in descriptions:
        pools.setdefault(d.relation, []).append(d)
    for relation in pools:
        pools[relation] = [pools[relation][i] for i in rng.permutation(len(pools[relation]))]
    chosen, seen = [], set()
    relations = sorted(pools)
    while len(chosen) < count and any(pools.values()):
        for relation in [relations[i] for i in rng.permutation(len(relations))]:
            while pools[relation]:
                d = pools[relation].pop()
                if (d.target, d.relation) not in seen:
                    seen.add((d.target, d.relation))
                    chosen.append(d)
                    break
            if len(chosen) >= count:
                break
    return chosen


def _language(facts: SceneFacts, scene_id: str, split: str, settings: SynthSettings, rng: np.random.Generator):
    found = unique_descriptions(facts)
    alone = [d for d in found if not d.with_colour]
    referrals = [sr3d_referral(facts, scene_id, d, rng) for d in _balanced(alone, settings.referrals_per_scene, rng)]
    descriptions = []
    for d in _balanced([d for d in found if d.relation != "color"], settings.descriptions_per_scene, rng):
        extras = [e for e in alone if e.target == d.target and e.relation not in ("color", d.relation)]
        extra = extras[int(rng.integers(len(extras)))] if extras and rng.random() < 0.5 else None
        descriptions.append(scanrefer_referral(facts, scene_id, d, extra, rng))
    questions = make_questions(facts, found, scene_id, split, settings.questions_per_scene, rng)
    return referrals, descriptions, questions


def generate_scene(split: str, index: int, seed: int, settings: SynthSettings) -> GeneratedScene:
    """Generate scene ``index`` of ``split`` from the base ``seed`` (byte-for-byte reproducible)."""
    scene_id = scene_id_of(split, index)
    layout_rng, camera_rng, sensor_rng, language_rng = (
        np.random.default_rng(s) for s in scene_seed(seed, split, index).spawn(4)
    )
    room, objects = furnish(layout_rng)
    world = World(room, objects, build_primitives(objects))
    light = Lighting.random(camera_rng)
    intrinsics, cam_to_room = walk(world, camera_rng, settings.frames, settings.height, settings.width)
    rendering = render(world, intrinsics, cam_to_room, settings.height, settings.width, light)
    surface = sample_surface(world, light, spacing=settings.spacing)
    axis_align = _axis_alignment(camera_rng, room.size)
    sensor_depth, pose_valid = _sensor(sensor_rng, rendering.depth, settings.sensor_noise)
    facts = SceneFacts(world, surface)
    referrals, descriptions, questions = _language(facts, scene_id, split, settings, language_rng)
    image_referrals = []
    counts = [len(np.unique(frame[frame < world.num_objects])) for frame in rendering.instance]
    min_pixels = max(20, int(0.004 * settings.width * settings.height))
    for frame in sorted(np.argsort(counts, kind="stable")[::-1][: settings.image_frames_per_scene].tolist()):
        image_referrals += frame_referrals(
            world, rendering.instance[frame], image_id_of(split, index, frame), f"{scene_id}/color/{frame}.jpg",
            split, language_rng, settings.image_referrals_per_frame, min_pixels,
        )  # fmt: skip
    return GeneratedScene(
        scene_id, world, intrinsics, cam_to_room, rendering, sensor_depth, pose_valid, surface, axis_align,
        referrals, descriptions, questions, image_referrals,
    )  # fmt: skip
