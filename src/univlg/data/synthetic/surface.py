"""Surface points of a world, like a ScanNet mesh's vertices: ~``spacing`` apart on every visible surface.

Every primitive face and the room's walls, floor and ceiling are sampled on regular grids; points that lie inside
another solid (contact faces, the buried ends of legs, the backs of things against a wall) or outside the room are
dropped. Each point carries its colour (the renderer's shading model), its object id, its class id and an
over-segment id: a segment is a patch of about ``patch`` metres of one primitive face, never crossing objects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from univlg.data.synthetic.primitives import BOX, ELLIPSOID, affine, inside, local_normal_to_world, to_local
from univlg.data.synthetic.render import Lighting, shade
from univlg.data.synthetic.shapes import ALL_CLASSES
from univlg.data.synthetic.world import World

_GOLDEN = np.pi * (3.0 - np.sqrt(5.0))


@dataclass
class SurfacePoints:
    """xyz (P, 3) float32 room frame; colors (P, 3) uint8; instance, semantic, segment (P,) int64.

    ``semantic`` is the class id: 1 + index in :data:`~univlg.data.synthetic.shapes.ALL_CLASSES` (0 stays free for
    "unlabelled", as in ScanNet); ``segment`` values are the index of the segment's first point (arbitrary
    integers, as in ScanNet's ``segIndices``).
    """

    xyz: np.ndarray
    colors: np.ndarray
    instance: np.ndarray
    semantic: np.ndarray
    segment: np.ndarray

    def __len__(self) -> int:
        return int(self.xyz.shape[0])


def _grid(n: int) -> np.ndarray:
    """n cell centres spanning [-1, 1]: (n,)."""
    return -1.0 + (2.0 * np.arange(n) + 1.0) / n


def _patch(coord: np.ndarray, half: float, patch: float) -> np.ndarray:
    """Patch index of unit coordinates ``coord`` along an axis of world half length ``half``."""
    return np.floor((coord + 1.0) * half / patch).astype(np.int64)


def _sample_box(half: np.ndarray, spacing: float, patch: float):
    points, normals, keys = [], [], []
    for axis in range(3):
        b, c = [a for a in range(3) if a != axis]
        gb, gc = np.meshgrid(
            _grid(max(1, round(2 * half[b] / spacing))), _grid(max(1, round(2 * half[c] / spacing))), indexing="ij"
        )
        for sign in (-1.0, 1.0):
            p = np.zeros((gb.size, 3))
            p[:, axis], p[:, b], p[:, c] = sign, gb.reshape(-1), gc.reshape(-1)
            n = np.zeros_like(p)
            n[:, axis] = sign
            face = 2 * axis + (sign > 0)
            key = face * 10000 + _patch(p[:, b], half[b], patch) * 100 + _patch(p[:, c], half[c], patch)
            points.append(p), normals.append(n), keys.append(key)
    return np.concatenate(points), np.concatenate(normals), np.concatenate(keys)


def _sample_ellipsoid(half: np.ndarray, spacing: float):
    a, b, c = half
    p = 1.6075
    area = 4 * np.pi * (((a * b) ** p + (a * c) ** p + (b * c) ** p) / 3) ** (1 / p)
    n = max(8, round(area / spacing**2))
    k = np.arange(n) + 0.5
    z = 1.0 - 2.0 * k / n
    r = np.sqrt(np.maximum(1.0 - z * z, 0.0))
    points = np.stack([r * np.cos(_GOLDEN * k), r * np.sin(_GOLDEN * k), z], axis=1)
    keys = (points > 0).astype(np.int64) @ np.array([1, 2, 4])
    return points, points.copy(), keys


def _sample_frustum(half: np.ndarray, radii: np.ndarray, spacing: float, patch: float):
    rb, rt = radii
    radial, height = half[0], half[2]
    alpha, beta = 0.5 * (rb + rt), 0.5 * (rt - rb)
    n_theta = max(6, round(2 * np.pi * radial * alpha / spacing))
    slant = np.hypot(2 * height, radial * (rt - rb))
    theta, z = np.meshgrid(
        (np.arange(n_theta) + 0.5) * 2 * np.pi / n_theta, _grid(max(1, round(slant / spacing))), indexing="ij"
    )
    theta, z = theta.reshape(-1), z.reshape(-1)
    r = alpha + beta * z
    side = np.stack([r * np.cos(theta), r * np.sin(theta), z], axis=1)
    side_n = np.stack([side[:, 0], side[:, 1], -beta * r], axis=1)
    sector = np.floor(theta * radial * alpha / patch).astype(np.int64)
    points, normals, keys = [side], [side_n], [sector * 100 + _patch(z, height, patch)]
    for cap_z, radius, face in ((-1.0, rb, 1), (1.0, rt, 2)):
        if radius <= 0:
            continue
        rings = max(1, round(radial * radius / spacing))
        for ring in range(rings):
            rho = (ring + 0.5) / rings * radius
            count = max(1, round(2 * np.pi * rho * radial / spacing))
            phi = (np.arange(count) + 0.5 * (ring % 2)) * 2 * np.pi / count
            p = np.stack([rho * np.cos(phi), rho * np.sin(phi), np.full(count, cap_z)], axis=1)
            points.append(p)
            normals.append(np.tile([0.0, 0.0, cap_z], (count, 1)))
            keys.append(np.full(count, face * 100000, dtype=np.int64))
    return np.concatenate(points), np.concatenate(normals), np.concatenate(keys)


@dataclass
class Plane:
    """One room face sampled on a grid: ``axis`` fixed at ``level``; grid cells of size ``cell`` (2,) along the
    other two axes ``(b, c)``; ``counts`` (2,) cells; inward ``normal`` sign."""

    axis: int
    level: float
    b: int
    c: int
    cell: np.ndarray
    counts: tuple[int, int]
    sign: float

    def points(self) -> np.ndarray:
        """(nb * nc, 3) cell centres, row-major over (b, c)."""
        gb, gc = np.meshgrid(*((np.arange(n) + 0.5) * w for n, w in zip(self.counts, self.cell)), indexing="ij")
        p = np.full((gb.size, 3), self.level)
        p[:, self.b], p[:, self.c] = gb.reshape(-1), gc.reshape(-1)
        return p


def room_planes(size: np.ndarray, spacing: float) -> list[Plane]:
    """The six room faces in the order -x, +x, -y, +y, -z, +z (size: (3,) room W, D, H)."""
    planes = []
    for face in range(6):
        axis, positive = face // 2, face % 2 == 1
        b, c = [a for a in range(3) if a != axis]
        counts = (max(1, round(size[b] / spacing)), max(1, round(size[c] / spacing)))
        cell = np.array([size[b] / counts[0], size[c] / counts[1]])
        planes.append(
            Plane(axis, float(size[axis]) if positive else 0.0, b, c, cell, counts, -1.0 if positive else 1.0)
        )
    return planes


def _plane_hidden(world: World, plane: Plane, bounds: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(nb, nc) bool: cells of a room face buried inside a primitive that reaches the face."""
    prims = world.primitives
    lo, hi = bounds
    hidden = np.zeros(plane.counts, dtype=bool)
    touching = np.flatnonzero((lo[:, plane.axis] <= plane.level + 1e-6) & (hi[:, plane.axis] >= plane.level - 1e-6))
    for m in touching:
        b0, c0 = np.floor(lo[m, [plane.b, plane.c]] / plane.cell).astype(int)
        b1, c1 = np.ceil(hi[m, [plane.b, plane.c]] / plane.cell).astype(int)
        b0, c0 = max(b0, 0), max(c0, 0)
        b1, c1 = min(b1, plane.counts[0]), min(c1, plane.counts[1])
        if b0 >= b1 or c0 >= c1:
            continue
        gb, gc = np.meshgrid(np.arange(b0, b1), np.arange(c0, c1), indexing="ij")
        p = np.full((gb.size, 3), plane.level)
        p[:, plane.b], p[:, plane.c] = (gb.reshape(-1) + 0.5) * plane.cell[0], (gc.reshape(-1) + 0.5) * plane.cell[1]
        buried = inside(int(prims.kind[m]), to_local(prims.world_to_local[m], p), prims.radii[m])
        hidden[gb.reshape(-1)[buried], gc.reshape(-1)[buried]] = True
    return hidden


def _object_hidden(world: World, points: list[np.ndarray], bounds: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    """Per primitive, (n_m,) bool: its points outside the room or strictly inside another primitive."""
    prims = world.primitives
    lo, hi = bounds
    size = world.room.size
    overlap = (lo[:, None, :] <= hi[None, :, :]).all(-1) & (lo[None, :, :] <= hi[:, None, :]).all(-1)
    np.fill_diagonal(overlap, False)
    result = []
    for m, p in enumerate(points):
        hidden = (p < -1e-6).any(axis=1) | (p > size + 1e-6).any(axis=1)
        for n in np.flatnonzero(overlap[m]):
            box = np.flatnonzero(((p >= lo[n]) & (p <= hi[n])).all(axis=1) & ~hidden)
            if len(box):
                hidden[box[inside(int(prims.kind[n]), to_local(prims.world_to_local[n], p[box]), prims.radii[n])]] = (
                    True
                )
        result.append(hidden)
    return result


def sample_surface(
    world: World,
    light: Lighting,
    spacing: float = 0.02,
    patch: float = 0.3,
) -> SurfacePoints:
    """Visible surface points of ``world`` about ``spacing`` metres apart (see the module docstring)."""
    prims = world.primitives
    bounds = prims.world_bounds()
    all_points, all_normals, all_source, all_keys = [], [], [], []
    for m in range(len(prims)):
        half = np.linalg.norm(prims.local_to_world[m, :, :3], axis=0)
        if prims.kind[m] == BOX:
            local, normal, key = _sample_box(half, spacing, patch)
        elif prims.kind[m] == ELLIPSOID:
            local, normal, key = _sample_ellipsoid(half, spacing)
        else:
            local, normal, key = _sample_frustum(half, prims.radii[m], spacing, patch)
        all_points.append(affine(prims.local_to_world[m], local))
        all_normals.append(local_normal_to_world(prims.world_to_local[m], normal))
        all_source.append(np.full(len(local), m))
        all_keys.append(key)
    hidden = _object_hidden(world, all_points, bounds)
    for m in range(len(prims)):
        keep = ~hidden[m]
        all_points[m], all_normals[m], all_source[m], all_keys[m] = (
            a[keep] for a in (all_points[m], all_normals[m], all_source[m], all_keys[m])
        )
    for face, plane in enumerate(room_planes(world.room.size, spacing)):
        keep = ~_plane_hidden(world, plane, bounds).reshape(-1)
        p = plane.points()[keep]
        normal = np.zeros(3)
        normal[plane.axis] = plane.sign
        key = np.floor(p[:, plane.b] / patch).astype(np.int64) * 1000 + np.floor(p[:, plane.c] / patch).astype(np.int64)
        all_points.append(p), all_normals.append(np.tile(normal, (len(p), 1))), all_keys.append(key)
        all_source.append(np.full(len(p), -1 - face))
    points, normals = np.concatenate(all_points), np.concatenate(all_normals)
    source, keys = np.concatenate(all_source), np.concatenate(all_keys)
    room_face = np.where(source < 0, -1 - source, 0)
    instance = np.where(source >= 0, prims.owner[np.maximum(source, 0)], world.room_face_ids()[room_face])
    albedo = np.where((source >= 0)[:, None], prims.albedo[np.maximum(source, 0)], world.room_face_albedo()[room_face])
    floor = instance == world.structure_ids["floor"][0]
    class_index = np.array([ALL_CLASSES.index(label) + 1 for label in world.labels], dtype=np.int64)
    combined = (source + 6) * 10_000_000 + keys  # keys < 1e7, sources >= -6
    _, first, segment_of = np.unique(combined, return_index=True, return_inverse=True)
    return SurfacePoints(
        xyz=points.astype(np.float32),
        colors=shade(points, normals, albedo, floor, light),
        instance=instance.astype(np.int64),
        semantic=class_index[instance],
        segment=first[segment_of.reshape(-1)].astype(np.int64),
    )
