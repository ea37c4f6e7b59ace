"""Analytic solid primitives: unit shapes placed by affine maps, with ray hits, inside tests and normals.

Every primitive is a unit shape in its own local frame, mapped to the world by an affine ``local_to_world``
(rotation times per-axis half extents, plus a centre):

- ``BOX``: the cube ``max(|x|, |y|, |z|) <= 1``;
- ``ELLIPSOID``: the ball ``x^2 + y^2 + z^2 <= 1`` (a sphere when the half extents are equal);
- ``FRUSTUM``: ``|z| <= 1`` and ``x^2 + y^2 <= r(z)^2`` with ``r(z)`` linear from ``r_bottom`` at ``z = -1`` to
  ``r_top`` at ``z = 1`` (a cylinder when both are 1, a cone when the top is 0).

Because the map is affine, a world ray ``o + t d`` is the local ray ``A o + b + t A d`` with the same ``t``, so hit
distances from different primitives compare directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BOX, ELLIPSOID, FRUSTUM = 0, 1, 2
_UNIT_CORNERS = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
_TINY = 1e-12


@dataclass
class Primitives:
    """M primitives of a scene, as parallel arrays.

    kind: (M,) int8 (BOX, ELLIPSOID, FRUSTUM); local_to_world, world_to_local: (M, 3, 4) float64 affine maps
    (``x_world = L[:, :3] @ x_local + L[:, 3]``); radii: (M, 2) float64 frustum (bottom, top) radius in unit
    coordinates (max 1; ignored for other kinds); owner: (M,) int64 index of the object (or structure) it belongs
    to; albedo: (M, 3) float64 in [0, 1].
    """

    kind: np.ndarray
    local_to_world: np.ndarray
    world_to_local: np.ndarray
    radii: np.ndarray
    owner: np.ndarray
    albedo: np.ndarray

    def __len__(self) -> int:
        return int(self.kind.shape[0])

    def world_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Axis-aligned world bounds of every primitive's unit cube: lo, hi (M, 3) float64."""
        corners = (
            np.einsum("mij,cj->mci", self.local_to_world[:, :, :3], _UNIT_CORNERS) + self.local_to_world[:, None, :, 3]
        )
        return corners.min(axis=1), corners.max(axis=1)

    def corners(self) -> np.ndarray:
        """The 8 world corners of every primitive's unit cube: (M, 8, 3) float64."""
        return (
            np.einsum("mij,cj->mci", self.local_to_world[:, :, :3], _UNIT_CORNERS) + self.local_to_world[:, None, :, 3]
        )


def make_primitives(
    kind: np.ndarray, local_to_world: np.ndarray, radii: np.ndarray, owner: np.ndarray, albedo: np.ndarray
) -> Primitives:
    """Build :class:`Primitives`, computing the inverse maps. Shapes as in :class:`Primitives`."""
    local_to_world = np.asarray(local_to_world, dtype=np.float64).reshape(-1, 3, 4)
    linear_inv = np.linalg.inv(local_to_world[:, :, :3])
    world_to_local = np.concatenate(
        [linear_inv, -np.einsum("mij,mj->mi", linear_inv, local_to_world[:, :, 3])[:, :, None]], axis=2
    )
    return Primitives(
        kind=np.asarray(kind, dtype=np.int8),
        local_to_world=local_to_world,
        world_to_local=world_to_local,
        radii=np.asarray(radii, dtype=np.float64).reshape(-1, 2),
        owner=np.asarray(owner, dtype=np.int64),
        albedo=np.asarray(albedo, dtype=np.float64).reshape(-1, 3),
    )


def affine(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``matrix[:, :3] @ p + matrix[:, 3]`` for points (N, 3) and a (3, 4) or (4, 4) matrix -> (N, 3).

    Written with einsum: numpy's BLAS matmul of a tall (N, 3) array is many times slower on a busy CPU.
    """
    return np.einsum("ij,nj->ni", matrix[:3, :3], points) + matrix[:3, 3]


def to_local(world_to_local: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map world points to local coordinates: world_to_local (N, 3, 4) or (3, 4), points (N, 3) -> (N, 3)."""
    if world_to_local.ndim == 2:
        return affine(world_to_local, points)
    return np.einsum("nij,nj->ni", world_to_local[:, :, :3], points) + world_to_local[:, :, 3]


def local_normal_to_world(world_to_local: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Unit world normals from local normals: (N, 3, 4) or (3, 4) maps, (N, 3) normals -> (N, 3)."""
    linear = world_to_local[..., :3]
    if linear.ndim == 2:
        world = np.einsum("ji,nj->ni", linear, normals)
    else:
        world = np.einsum("nji,nj->ni", linear, normals)
    return world / np.maximum(np.linalg.norm(world, axis=-1, keepdims=True), _TINY)


def _safe(direction: np.ndarray) -> np.ndarray:
    return np.where(np.abs(direction) < _TINY, np.where(direction < 0, -_TINY, _TINY), direction)


def hit_box(origin: np.ndarray, direction: np.ndarray, t_min: float) -> tuple[np.ndarray, np.ndarray]:
    """Entry hits of local rays with the unit cube.

    origin, direction: (N, 3) local rays. Returns t: (N,) float64 (inf where missed or the entry lies before
    ``t_min``) and local normals: (N, 3).
    """
    inv = 1.0 / _safe(direction)
    t0 = (-1.0 - origin) * inv
    t1 = (1.0 - origin) * inv
    near_axis = np.minimum(t0, t1)
    t_near = near_axis.max(axis=1)
    t_far = np.maximum(t0, t1).min(axis=1)
    hit = (t_near <= t_far) & (t_near > t_min)
    axis = near_axis.argmax(axis=1)
    normals = np.zeros_like(origin)
    rows = np.arange(len(origin))
    normals[rows, axis] = -np.sign(direction[rows, axis])
    return np.where(hit, t_near, np.inf), normals


def hit_ellipsoid(origin: np.ndarray, direction: np.ndarray, t_min: float) -> tuple[np.ndarray, np.ndarray]:
    """Entry hits of local rays with the unit ball; same contract as :func:`hit_box`."""
    a = np.einsum("ni,ni->n", direction, direction)
    b = 2.0 * np.einsum("ni,ni->n", origin, direction)
    c = np.einsum("ni,ni->n", origin, origin) - 1.0
    disc = b * b - 4 * a * c
    t = (-b - np.sqrt(np.maximum(disc, 0.0))) / (2 * np.maximum(a, _TINY))
    hit = (disc >= 0) & (t > t_min)
    t = np.where(hit, t, np.inf)
    normals = origin + np.where(np.isfinite(t), t, 0.0)[:, None] * direction
    return t, normals


def hit_frustum(
    origin: np.ndarray, direction: np.ndarray, radii: np.ndarray, t_min: float
) -> tuple[np.ndarray, np.ndarray]:
    """Entry hits of local rays with the unit frustum (side and both caps).

    origin, direction: (N, 3); radii: (N, 2) bottom/top radius. Same return contract as :func:`hit_box`.
    """
    alpha = 0.5 * (radii[:, 0] + radii[:, 1])
    beta = 0.5 * (radii[:, 1] - radii[:, 0])
    ox, oy, oz = origin.T
    dx, dy, dz = direction.T
    r0 = alpha + beta * oz
    a = dx * dx + dy * dy - (beta * dz) ** 2
    b = 2.0 * (ox * dx + oy * dy - r0 * beta * dz)
    c = ox * ox + oy * oy - r0 * r0
    disc = b * b - 4 * a * c
    quadratic = np.abs(a) > 1e-10
    root = np.sqrt(np.maximum(disc, 0.0))
    safe_a = np.where(quadratic, a, 1.0)
    linear_t = np.where(np.abs(b) > _TINY, -c / np.where(np.abs(b) > _TINY, b, 1.0), np.inf)
    candidates = []
    for sign in (-1.0, 1.0):
        t = np.where(quadratic, (-b + sign * root) / (2 * safe_a), linear_t)
        ok = (np.where(quadratic, disc >= 0, True)) & (t > t_min) & np.isfinite(t)
        z = oz + np.where(ok, t, 0.0) * dz
        ok &= (np.abs(z) <= 1.0) & (alpha + beta * z >= 0)
        candidates.append(np.where(ok, t, np.inf))
    for cap_z, radius in ((-1.0, radii[:, 0]), (1.0, radii[:, 1])):
        t = (cap_z - oz) / _safe(dz)
        x, y = ox + t * dx, oy + t * dy
        ok = (t > t_min) & (x * x + y * y <= radius * radius) & (radius > 0)
        candidates.append(np.where(ok, t, np.inf))
    stacked = np.stack(candidates, axis=1)
    which = stacked.argmin(axis=1)
    t = stacked[np.arange(len(origin)), which]
    point = origin + np.where(np.isfinite(t), t, 0.0)[:, None] * direction
    side_normal = np.stack([point[:, 0], point[:, 1], -beta * (alpha + beta * point[:, 2])], axis=1)
    cap_normal = np.zeros_like(point)
    cap_normal[:, 2] = np.where(which == 2, -1.0, 1.0)
    normals = np.where((which < 2)[:, None], side_normal, cap_normal)
    return t, normals


def inside(kind: int, local: np.ndarray, radii: np.ndarray | None = None, shrink: float = 1e-3) -> np.ndarray:
    """Strictly-inside test in local coordinates: local (N, 3), radii (2,) for frustums -> (N,) bool.

    ``shrink`` is a relative margin so that points lying on the surface count as outside.
    """
    limit = 1.0 - shrink
    if kind == BOX:
        return np.abs(local).max(axis=1) < limit
    if kind == ELLIPSOID:
        return np.einsum("ni,ni->n", local, local) < limit * limit
    z = local[:, 2]
    radius = radii[0] + (radii[1] - radii[0]) * (z + 1.0) * 0.5
    return (np.abs(z) < limit) & (local[:, 0] ** 2 + local[:, 1] ** 2 < (radius * limit) ** 2)
