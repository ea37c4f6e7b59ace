"""A hand-held walk through the room: head-height positions on a loop through free floor, each frame looking at
an object (cycling through all of them), with a realistic pinhole camera (55-75 degree horizontal field of view)."""

from __future__ import annotations

import numpy as np

from univlg.data.synthetic.world import FLOOR_SUPPORT, World, shape_bounds


def pinhole(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """(3, 3) intrinsic with a 55-75 degree horizontal field of view, square pixels, centre near the middle."""
    fov = np.deg2rad(rng.uniform(55.0, 75.0))
    focal = 0.5 * width / np.tan(0.5 * fov)
    cx = (width - 1) / 2 + rng.uniform(-0.01, 0.01) * width
    cy = (height - 1) / 2 + rng.uniform(-0.01, 0.01) * height
    return np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])


def look_at(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(4, 4) camera-to-world pose at ``position`` (3,) looking at ``target`` (3,), upright (OpenCV axes)."""
    forward = target - position
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, forward], axis=1)
    pose[:3, 3] = position
    return pose


def object_centres(world: World) -> np.ndarray:
    """(n, 3) room-frame centre of every object's bounding box."""
    centres = []
    for obj in world.objects:
        lo, hi = shape_bounds(obj.shape)
        centres.append(obj.to_room(((lo + hi) / 2)[None])[0])
    return np.array(centres)


def free_floor_cells(world: World, spacing: float = 0.1, clearance: float = 0.35) -> np.ndarray:
    """(K, 2) centres of floor cells at least ``clearance`` from every wall and floor-standing object."""
    size = world.room.size
    xs = np.arange(spacing / 2, size[0], spacing)
    ys = np.arange(spacing / 2, size[1], spacing)
    grid = np.stack(np.meshgrid(xs, ys, indexing="ij"), axis=-1).reshape(-1, 2)
    wall_margin = max(clearance, 0.5)
    free = (
        (grid.min(axis=1) > wall_margin) & (grid[:, 0] < size[0] - wall_margin) & (grid[:, 1] < size[1] - wall_margin)
    )
    for obj in world.objects:
        if obj.support != FLOOR_SUPPORT:
            continue
        lo, hi = shape_bounds(obj.shape)
        local = (grid - obj.position[:2]) @ obj.rotation[:2, :2]
        inside = (local > lo[:2] - clearance).all(axis=1) & (local < hi[:2] + clearance).all(axis=1)
        free &= ~inside
    return grid[free]


def walk(
    world: World, rng: np.random.Generator, num_frames: int, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """Camera intrinsics (V, 3, 3) and camera-to-world poses (V, 4, 4) of a walk through ``world``."""
    intrinsic = pinhole(rng, height, width)
    cells = free_floor_cells(world)
    size = world.room.size
    if len(cells) == 0:
        cells = np.array([size[:2] / 2])
    centre = size[:2] / 2
    count = min(len(cells), int(rng.integers(5, 8)))
    angles = np.arctan2(cells[:, 1] - centre[1], cells[:, 0] - centre[0])
    sectors = np.floor((angles + np.pi) / (2 * np.pi) * count).astype(int)
    waypoints = []
    for sector in range(count):
        members = cells[sectors == sector]
        if len(members):
            radial = np.linalg.norm(members - centre, axis=1)
            pick = members[rng.choice(np.argsort(radial)[-max(1, len(members) // 3) :])]
            waypoints.append(pick)
    loop = np.array(waypoints + waypoints[:1])
    seg = np.linalg.norm(np.diff(loop, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    start = rng.uniform(0, max(arc[-1], 1e-6))
    samples = (start + np.arange(num_frames) * max(arc[-1], 1e-6) / num_frames) % max(arc[-1], 1e-6)
    xy = np.stack([np.interp(samples, arc, loop[:, 0]), np.interp(samples, arc, loop[:, 1])], axis=1)
    nearest = np.argmin(((xy[:, None, :] - cells[None]) ** 2).sum(-1), axis=1)
    xy = cells[nearest] + rng.uniform(-0.04, 0.04, (num_frames, 2))
    eye_height = rng.uniform(1.4, 1.7) + 0.03 * np.sin(np.arange(num_frames) * 0.9 + rng.uniform(0, 6))
    positions = np.concatenate([xy, eye_height[:, None]], axis=1)
    targets = object_centres(world)
    order = list(rng.permutation(len(targets)))
    poses = []
    for position in positions:
        target = None
        for step in range(len(order)):
            candidate = targets[order[step]]
            if np.linalg.norm(candidate[:2] - position[:2]) > 1.0:
                target = candidate
                order.append(order.pop(step))
                break
        if target is None:
            target = np.array([centre[0], centre[1], 0.8])
        poses.append(look_at(position, target + rng.uniform(-0.15, 0.15, 3)))
    return np.repeat(intrinsic[None], num_frames, axis=0), np.stack(poses)
