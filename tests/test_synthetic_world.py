"""Synthetic world: layout sanity, cameras, renderer against brute-force ray casting, surface points."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import cKDTree

from univlg.data.synthetic.cameras import walk
from univlg.data.synthetic.furnish import furnish
from univlg.data.synthetic.layout import SINK
from univlg.data.synthetic.primitives import BOX, ELLIPSOID, hit_box, hit_ellipsoid, hit_frustum, inside
from univlg.data.synthetic.render import Lighting, pixel_rays, render
from univlg.data.synthetic.shapes import ALL_CLASSES, NAMED_COLOURS, OBJECT_CLASSES, WALL_MOUNTED
from univlg.data.synthetic.surface import sample_surface
from univlg.data.synthetic.world import FLOOR_SUPPORT, WALL_SUPPORT, World, build_primitives, shape_bounds


def _world(seed: int) -> World:
    room, objects = furnish(np.random.default_rng(seed))
    return World(room, objects, build_primitives(objects))


@pytest.fixture(scope="module")
def worlds() -> list[World]:
    return [_world(seed) for seed in range(25)]


def _in_rectangle(points: np.ndarray, obj) -> np.ndarray:
    lo, hi = shape_bounds(obj.shape)
    local = (points - obj.position[:2]) @ obj.rotation[:2, :2]
    return ((local > lo[:2] + 1e-6) & (local < hi[:2] - 1e-6)).all(axis=1)


def _tucked_under(obj, points: np.ndarray | None, host) -> bool:
    """``obj`` (sampled at floor ``points``, or its whole footprint when None) fits in the free space under
    ``host``: a table's legs or a desk's knee space."""
    under = host.shape.under
    if under is None or obj.position[2] + shape_bounds(obj.shape)[1][2] > host.position[2] + under.z:
        return False
    if points is None:
        lo, hi = shape_bounds(obj.shape)
        corners = np.array([[lo[0], lo[1]], [lo[0], hi[1]], [hi[0], lo[1]], [hi[0], hi[1]]])
        points = corners @ obj.rotation[:2, :2].T + obj.position[:2]
    local = (points - host.position[:2]) @ host.rotation[:2, :2]
    x0, y0, x1, y1 = under.rect
    tol = 1e-6
    return bool(((local[:, 0] >= x0 - tol) & (local[:, 0] <= x1 + tol) & (local[:, 1] >= y0 - tol)
                 & (local[:, 1] <= y1 + tol)).all())  # fmt: skip


def test_rooms_have_sizes_counts_classes_and_colours_in_range(worlds):
    labels, colours = set(), set()
    for world in worlds:
        w, d, h = world.room.size
        assert 4.0 <= w <= 9.0 and 4.0 <= d <= 9.0 and 2.5 <= h <= 3.0
        assert 8 <= world.num_objects <= 25
        assert [o.object_id for o in world.objects] == list(range(world.num_objects))
        labels |= {o.label for o in world.objects}
        colours |= {o.colour for o in world.objects}
    assert labels == set(OBJECT_CLASSES) and len(labels) >= 15
    assert colours == set(NAMED_COLOURS) and len(colours) >= 8


def test_floor_objects_do_not_overlap_and_stay_in_the_room(worlds):
    rng = np.random.default_rng(0)
    for world in worlds:
        floor = [o for o in world.objects if o.support == FLOOR_SUPPORT]
        for obj in floor:
            lo, hi = shape_bounds(obj.shape)
            local = rng.uniform(lo[:2], hi[:2], (400, 2))
            points = local @ obj.rotation[:2, :2].T + obj.position[:2]
            assert (points > -0.03).all() and (points < world.room.size[:2] + 0.03).all(), obj.label
            for other in floor:
                if other is not obj and not _tucked_under(obj, points, other) and not _tucked_under(other, None, obj):
                    assert not _in_rectangle(points, other).any(), (obj.label, other.label)


def test_small_objects_stand_on_their_support_and_wall_objects_hang_on_walls(worlds):
    for world in worlds:
        for obj in world.objects:
            if obj.support >= 0:
                parent = world.objects[obj.support]
                heights = [s.z for s in parent.shape.tops]
                assert any(np.isclose(obj.position[2] + SINK, parent.position[2] + z) for z in heights)
                assert _in_rectangle(obj.position[None, :2], parent)[0]
            elif obj.support == WALL_SUPPORT:
                assert obj.label in WALL_MOUNTED
                distances = [obj.position[0], obj.position[1], world.room.size[0] - obj.position[0],
                             world.room.size[1] - obj.position[1]]  # fmt: skip
                assert min(distances) < 1e-9
                assert obj.position[2] + shape_bounds(obj.shape)[1][2] < world.room.size[2]


def test_cameras_walk_at_head_height_outside_every_solid(worlds):
    for seed, world in enumerate(worlds[:8]):
        intrinsics, poses = walk(world, np.random.default_rng(seed), 30, 120, 160)
        fov = np.degrees(2 * np.arctan(80 / intrinsics[:, 0, 0]))
        assert ((fov >= 55) & (fov <= 75)).all()
        centres = poses[:, :3, 3]
        assert ((centres[:, 2] > 1.3) & (centres[:, 2] < 1.8)).all()
        assert ((centres[:, :2] > 0.4) & (centres[:, :2] < world.room.size[:2] - 0.4)).all()
        prims = world.primitives
        for m in range(len(prims)):
            local = centres @ prims.world_to_local[m, :, :3].T + prims.world_to_local[m, :, 3]
            assert not inside(int(prims.kind[m]), local, prims.radii[m], shrink=0.0).any()
        assert np.allclose(poses[:, :3, :3].transpose(0, 2, 1) @ poses[:, :3, :3], np.eye(3), atol=1e-9)
        assert np.allclose(poses[:, 2, 0], 0.0)  # x axis (right) horizontal: no roll


def _brute_force(world: World, intrinsic, pose, height, width):
    """Nearest hit over every primitive and the six room planes, no culling: depth and instance per pixel."""
    origin, directions = pixel_rays(intrinsic, pose, height, width)
    best = np.full(len(directions), np.inf)
    owner = np.full(len(directions), -1)
    for face, face_id in enumerate(world.room_face_ids()):
        axis, level = face // 2, world.room.size[face // 2] if face % 2 else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (level - origin[axis]) / directions[:, axis]
        closer = (t > 0) & (t < best)
        best[closer], owner[closer] = t[closer], face_id
    prims = world.primitives
    for m in range(len(prims)):
        local_o = prims.world_to_local[m, :, :3] @ origin + prims.world_to_local[m, :, 3]
        local_o = np.tile(local_o, (len(directions), 1))
        local_d = directions @ prims.world_to_local[m, :, :3].T
        if prims.kind[m] == BOX:
            t, _ = hit_box(local_o, local_d, 0.05)
        elif prims.kind[m] == ELLIPSOID:
            t, _ = hit_ellipsoid(local_o, local_d, 0.05)
        else:
            t, _ = hit_frustum(local_o, local_d, np.tile(prims.radii[m], (len(directions), 1)), 0.05)
        closer = t < best
        best[closer], owner[closer] = t[closer], prims.owner[m]
    return best.reshape(height, width), owner.reshape(height, width)


def test_renderer_matches_brute_force_ray_casting():
    world = _world(3)
    rng = np.random.default_rng(3)
    intrinsics, poses = walk(world, rng, 4, 45, 60)
    rendering = render(world, intrinsics, poses, 45, 60, Lighting.random(rng))
    for v in range(4):
        depth, owner = _brute_force(world, intrinsics[v], poses[v], 45, 60)
        assert np.allclose(rendering.depth[v], depth, atol=1e-5)
        assert (rendering.instance[v] == owner).mean() > 0.999  # exact ties on touching faces may differ


@pytest.fixture(scope="module")
def scene_surface():
    world = _world(5)
    rng = np.random.default_rng(5)
    light = Lighting.random(rng)
    intrinsics, poses = walk(world, rng, 6, 120, 160)
    return world, sample_surface(world, light), render(world, intrinsics, poses, 120, 160, light), intrinsics, poses


def test_surface_points_are_about_two_centimetres_apart_and_on_visible_surfaces(scene_surface):
    world, surface, *_ = scene_surface
    xyz = surface.xyz.astype(np.float64)
    spacing, _ = cKDTree(xyz).query(xyz, k=2)
    assert 0.012 <= np.median(spacing[:, 1]) <= 0.022
    assert (xyz > -1e-4).all() and (xyz < world.room.size + 1e-4).all()
    prims = world.primitives
    lo, hi = prims.world_bounds()
    for m in range(len(prims)):
        near = xyz[((xyz >= lo[m] - 0.01) & (xyz <= hi[m] + 0.01)).all(axis=1)]
        local = np.einsum("ij,nj->ni", prims.world_to_local[m, :, :3], near) + prims.world_to_local[m, :, 3]
        buried = inside(int(prims.kind[m]), local, prims.radii[m], shrink=2e-3)
        assert not buried.any(), f"{buried.sum()} points inside primitive {m} of {world.labels[prims.owner[m]]}"
    counts = np.bincount(surface.instance, minlength=len(world.labels))
    assert (counts[: world.num_objects] >= 50).all()


def test_segments_stay_within_one_object_and_labels_follow_instances(scene_surface):
    world, surface, *_ = scene_surface
    order = np.argsort(surface.segment, kind="stable")
    seg, inst = surface.segment[order], surface.instance[order]
    starts = np.flatnonzero(np.r_[True, seg[1:] != seg[:-1]])
    assert (np.minimum.reduceat(inst, starts) == np.maximum.reduceat(inst, starts)).all()
    first_index = order[starts]
    assert (seg[starts] == first_index).all()  # a segment's id is the index of its first point
    labels = np.array([ALL_CLASSES.index(label) + 1 for label in world.labels])
    assert (surface.semantic == labels[surface.instance]).all()
    assert 500 < len(starts) < len(surface) / 50


def test_pixels_and_surface_points_agree_in_position_instance_and_colour(scene_surface):
    world, surface, rendering, intrinsics, poses = scene_surface
    tree = cKDTree(surface.xyz)
    for v in range(len(poses)):
        origin, directions = pixel_rays(intrinsics[v], poses[v], 120, 160)
        hits = origin + rendering.depth[v].reshape(-1, 1).astype(np.float64) * directions
        dist, idx = tree.query(hits)
        assert np.median(dist) < 0.01
        assert (surface.instance[idx] == rendering.instance[v].reshape(-1)).mean() > 0.99
        near = dist < 0.01
        diff = np.abs(rendering.rgb[v].reshape(-1, 3).astype(int) - surface.colors[idx].astype(int)).max(axis=1)
        assert np.median(diff[near]) <= 1 and np.percentile(diff[near], 75) <= 3
