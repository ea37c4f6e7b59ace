"""Vectorised ray casting of a world: colour, depth and instance id per pixel, plus the shared shading model.

Each pixel casts one ray through its centre (pixel centres at integer coordinates, OpenCV camera: x right,
y down, z forward). The ray direction has camera-z = 1, so the hit parameter is the depth along the optical axis.
Rays are tested only against the primitives whose projected bounding box covers them, all primitives of a kind at
once; the room box is hit from inside. Colour is Lambertian shading of the albedo under one directional light and
ambient light, times a mild texture that depends only on the world position, so the surface points
(:mod:`surface`) get the same colour as the pixels that see them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from univlg.data.synthetic.primitives import BOX, ELLIPSOID, FRUSTUM, hit_box, hit_ellipsoid, hit_frustum
from univlg.data.synthetic.primitives import local_normal_to_world as to_world_normal
from univlg.data.synthetic.world import World

NEAR = 0.05


@dataclass
class Lighting:
    """Directional light (3,) unit vector towards the light, its strength, ambient and back-fill strength."""

    direction: np.ndarray
    diffuse: float = 0.5
    ambient: float = 0.42
    fill: float = 0.18

    @staticmethod
    def random(rng: np.random.Generator) -> Lighting:
        """A light from a random azimuth, 45-70 degrees above the horizon."""
        azimuth = rng.uniform(-np.pi, np.pi)
        elevation = rng.uniform(0.8, 1.2)
        return Lighting(
            np.array([np.cos(azimuth) * np.cos(elevation), np.sin(azimuth) * np.cos(elevation), np.sin(elevation)])
        )


@dataclass
class Rendering:
    """rgb (V, H, W, 3) uint8; depth (V, H, W) float32 metres along the optical axis; instance (V, H, W) int64."""

    rgb: np.ndarray
    depth: np.ndarray
    instance: np.ndarray


def _cell_noise(points: np.ndarray, cell: float) -> np.ndarray:
    """Deterministic per-cell noise in [-1, 1] of world points (N, 3) -> (N,).

    Cells are offset by half a cell so that the room's faces at coordinate 0 sit mid-cell, where a ray hit's
    rounding error cannot flip the cell.
    """
    cells = np.floor(points / cell + 0.5).astype(np.int64)
    mixed = (cells[:, 0] * 73856093) ^ (cells[:, 1] * 19349663) ^ (cells[:, 2] * 83492791)
    mixed = (mixed * 2654435761) & 0xFFFFFFFF
    return mixed * (2.0 / 0xFFFFFFFF) - 1.0


def shade(
    points: np.ndarray, normals: np.ndarray, albedo: np.ndarray, floor: np.ndarray, light: Lighting
) -> np.ndarray:
    """Colour of surface points seen from any side (Lambertian, so view-independent).

    points, normals, albedo: (N, 3) world points, unit normals facing out of the surface, albedo in [0, 1];
    floor: (N,) bool, which points get the plank texture. Returns (N, 3) uint8.
    """
    cosine = np.einsum("ni,i->n", normals, light.direction)
    intensity = light.ambient + light.diffuse * np.maximum(cosine, 0.0) + light.fill * np.maximum(-cosine, 0.0)
    texture = 1.0 + 0.05 * _cell_noise(points, 0.03)
    if floor.any():
        planks = np.zeros((int(floor.sum()), 3))
        planks[:, 0] = points[floor, 0]
        texture[floor] *= 1.0 + 0.12 * _cell_noise(planks, 0.2)
    rgb = albedo * (intensity * texture)[:, None]
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def pixel_rays(
    intrinsic: np.ndarray, cam_to_world: np.ndarray, height: int, width: int
) -> tuple[np.ndarray, np.ndarray]:
    """World ray origin (3,) and directions (H*W, 3) with camera-z = 1, row-major pixel order."""
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64), indexing="ij")
    x = (cols.reshape(-1) - intrinsic[0, 2]) / intrinsic[0, 0]
    y = (rows.reshape(-1) - intrinsic[1, 2]) / intrinsic[1, 1]
    camera = np.stack([x, y, np.ones_like(x)], axis=1)
    return cam_to_world[:3, 3].copy(), np.einsum("ij,nj->ni", cam_to_world[:3, :3], camera)


def _room_hits(size: np.ndarray, origin: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exit distance (N,) from the room box and the face hit (N,) in order -x, +x, -y, +y, -z, +z."""
    safe = np.where(np.abs(directions) < 1e-12, 1e-12, directions)
    bound = np.where(safe > 0, size, 0.0)
    t = (bound - origin) / safe
    axis = t.argmin(axis=1)
    rows = np.arange(len(directions))
    face = 2 * axis + (safe[rows, axis] > 0)
    return t[rows, axis], face


_CUBE_EDGES = np.array(
    [(a, b) for a in range(8) for b in range(a + 1, 8) if bin(a ^ b).count("1") == 1], dtype=np.int64
)  # corner index pairs of the 12 cube edges (corners ordered as in primitives.corners)


def _screen_rects(world: World, intrinsic: np.ndarray, cam_to_world: np.ndarray, height: int, width: int) -> np.ndarray:
    """Pixel rectangle (M, 4) = (u0, v0, u1, v1) inclusive covering each primitive; u0 > u1 when off screen.

    The bounding box of each primitive is clipped at the near plane (its corners in front plus the points where
    its edges cross the plane) before projection, so primitives beside the camera stay small on screen.
    """
    camera = (world.primitives.corners() - cam_to_world[:3, 3]) @ cam_to_world[:3, :3]
    a, b = camera[:, _CUBE_EDGES[:, 0]], camera[:, _CUBE_EDGES[:, 1]]
    crosses = (a[..., 2] - NEAR) * (b[..., 2] - NEAR) < 0
    fraction = np.where(crosses, (NEAR - a[..., 2]) / np.where(crosses, b[..., 2] - a[..., 2], 1.0), 0.0)
    cuts = a + fraction[..., None] * (b - a)
    points = np.concatenate([camera, cuts], axis=1)
    usable = np.concatenate([camera[..., 2] >= NEAR, crosses], axis=1)
    z = np.where(usable, np.maximum(points[..., 2], NEAR), 1.0)
    u = intrinsic[0, 0] * points[..., 0] / z + intrinsic[0, 2]
    v = intrinsic[1, 1] * points[..., 1] / z + intrinsic[1, 2]
    big = 1e9
    u0, u1 = np.where(usable, u, big).min(1), np.where(usable, u, -big).max(1)
    v0, v1 = np.where(usable, v, big).min(1), np.where(usable, v, -big).max(1)
    rect = np.stack([np.floor(u0), np.floor(v0), np.ceil(u1), np.ceil(v1)], axis=1)
    visible = usable.any(axis=1) & (u1 >= 0) & (v1 >= 0) & (u0 <= width - 1) & (v0 <= height - 1)
    rect = np.clip(rect, 0, [width - 1, height - 1, width - 1, height - 1])
    rect[~visible] = (1, 1, 0, 0)
    return rect.astype(np.int64)


def _pairs(rects: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """All (primitive, pixel) pairs inside the rectangles: two (P,) int64 arrays."""
    w = np.maximum(rects[:, 2] - rects[:, 0] + 1, 0)
    h = np.maximum(rects[:, 3] - rects[:, 1] + 1, 0)
    area = w * h
    prim = np.repeat(np.arange(len(rects)), area)
    offset = np.arange(area.sum()) - np.repeat(np.cumsum(area) - area, area)
    row = rects[prim, 1] + offset // w[prim]
    col = rects[prim, 0] + offset % w[prim]
    return prim, row * width + col


def _nearest_object_hits(world: World, origin: np.ndarray, directions: np.ndarray, rects: np.ndarray, width: int):
    """Nearest primitive hit per ray among the culled pairs: (rays, t, prim, local normal) of the winners."""
    prims = world.primitives
    prim, ray = _pairs(rects, width)
    t_all, n_all = np.full(len(prim), np.inf), np.zeros((len(prim), 3))
    origins = prims.world_to_local[:, :, :3] @ origin + prims.world_to_local[:, :, 3]
    kinds = prims.kind[prim]
    for kind, hit in ((BOX, hit_box), (ELLIPSOID, hit_ellipsoid), (FRUSTUM, hit_frustum)):
        sel = np.flatnonzero(kinds == kind)
        if len(sel) == 0:
            continue
        owner = prim[sel]
        local_o = origins[owner]
        local_d = np.einsum("nij,nj->ni", prims.world_to_local[owner, :, :3], directions[ray[sel]])
        if kind == FRUSTUM:
            t_all[sel], n_all[sel] = hit(local_o, local_d, prims.radii[owner], NEAR)
        else:
            t_all[sel], n_all[sel] = hit(local_o, local_d, NEAR)
    keep = np.flatnonzero(np.isfinite(t_all))
    order = keep[np.lexsort((t_all[keep], ray[keep]))]
    first = np.ones(len(order), dtype=bool)
    first[1:] = ray[order][1:] != ray[order][:-1]
    win = order[first]
    return ray[win], t_all[win], prim[win], n_all[win]


def render_view(
    world: World, intrinsic: np.ndarray, cam_to_world: np.ndarray, height: int, width: int, light: Lighting
):
    """Render one camera: rgb (H, W, 3) uint8, depth (H, W) float32, instance (H, W) int64.

    intrinsic: (3, 3); cam_to_world: (4, 4) in the world's room frame.
    """
    origin, directions = pixel_rays(intrinsic, cam_to_world, height, width)
    t, face = _room_hits(world.room.size, origin, directions)
    owner = world.room_face_ids()[face]
    albedo = world.room_face_albedo()[face]
    normals = np.zeros((len(t), 3))
    normals[np.arange(len(t)), face // 2] = np.where(face % 2 == 1, -1.0, 1.0)
    rects = _screen_rects(world, intrinsic, cam_to_world, height, width)
    rays, t_obj, prim, local_n = _nearest_object_hits(world, origin, directions, rects, width)
    closer = t_obj < t[rays]
    rays, prim = rays[closer], prim[closer]
    t[rays] = t_obj[closer]
    owner[rays] = world.primitives.owner[prim]
    albedo[rays] = world.primitives.albedo[prim]
    normals[rays] = to_world_normal(world.primitives.world_to_local[prim], local_n[closer])
    points = origin + t[:, None] * directions
    floor = owner == world.structure_ids["floor"][0]
    rgb = shade(points, normals, albedo, floor, light)
    return rgb.reshape(height, width, 3), t.reshape(height, width).astype(np.float32), owner.reshape(height, width)


def render(
    world: World, intrinsics: np.ndarray, cam_to_world: np.ndarray, height: int, width: int, light: Lighting
) -> Rendering:
    """Render V cameras: intrinsics (V, 3, 3), cam_to_world (V, 4, 4) in the room frame."""
    views = [render_view(world, k, pose, height, width, light) for k, pose in zip(intrinsics, cam_to_world)]
    return Rendering(
        rgb=np.stack([v[0] for v in views]),
        depth=np.stack([v[1] for v in views]),
        instance=np.stack([v[2] for v in views]),
    )
