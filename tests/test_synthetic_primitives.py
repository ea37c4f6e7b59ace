"""Ray hits, normals and inside tests of the analytic primitives, against ray marching and closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from univlg.data.synthetic.primitives import (
    BOX,
    ELLIPSOID,
    FRUSTUM,
    hit_box,
    hit_ellipsoid,
    hit_frustum,
    inside,
    local_normal_to_world,
    make_primitives,
)

RADII = {BOX: (1.0, 1.0), ELLIPSOID: (1.0, 1.0), FRUSTUM: (0.6, 1.0)}


def _hits(kind, origin, direction, radii=(1.0, 1.0)):
    if kind == BOX:
        return hit_box(origin, direction, 1e-6)
    if kind == ELLIPSOID:
        return hit_ellipsoid(origin, direction, 1e-6)
    return hit_frustum(origin, direction, np.tile(radii, (len(origin), 1)), 1e-6)


def _march(kind, origin, direction, radii, steps=4000, t_max=8.0):
    """First t on a fine grid where the ray point is inside the shape (inf if never)."""
    t = np.linspace(0, t_max, steps)
    first = np.full(len(origin), np.inf)
    for k in range(len(origin)):
        points = origin[k] + t[:, None] * direction[k]
        hit = np.flatnonzero(inside(kind, points, np.asarray(radii), shrink=0.0))
        if len(hit):
            first[k] = t[hit[0]]
    return first


@pytest.mark.parametrize("kind", [BOX, ELLIPSOID, FRUSTUM])
def test_first_hit_matches_ray_marching(kind):
    rng = np.random.default_rng(kind)
    origin = rng.uniform(-3, 3, (300, 3))
    origin[np.abs(origin).max(axis=1) < 1.5] *= 2.5  # start outside the unit cube
    target = rng.uniform(-0.9, 0.9, (300, 3))
    direction = target - origin
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    t, _ = _hits(kind, origin, direction, RADII[kind])
    marched = _march(kind, origin, direction, RADII[kind])
    step = 8.0 / 3999
    both = np.isfinite(t) & np.isfinite(marched)
    assert (np.isfinite(t) == np.isfinite(marched)).mean() > 0.98  # grazing rays may differ
    assert both.sum() > 200
    assert np.all(t[both] <= marched[both] + 1e-9) and np.all(marched[both] - t[both] <= step + 1e-9)


def test_cylinder_and_cone_closed_forms():
    origin = np.array([[5.0, 0.0, 0.0], [0.0, 0.0, 5.0], [5.0, 0.0, 0.5], [0.0, 0.0, -5.0]])
    direction = np.array([[-1.0, 0, 0], [0, 0, -1.0], [-1.0, 0, 0], [0, 0, 1.0]])
    t, n = hit_frustum(origin, direction, np.array([[1.0, 1.0]] * 4), 1e-6)
    assert np.allclose(t, [4.0, 4.0, 4.0, 4.0])
    assert np.allclose(n[0] / np.linalg.norm(n[0]), [1, 0, 0]) and np.allclose(n[1], [0, 0, 1])
    # cone with apex at z = 1 (top radius 0): at height 0.5 the radius is 0.25
    t, n = hit_frustum(origin[2:3], direction[2:3], np.array([[1.0, 0.0]]), 1e-6)
    assert np.isclose(t[0], 5.0 - 0.25)
    assert np.isclose(n[0, 2] / n[0, 0], 0.5)  # surface slope: dr/dz = -1/2


def test_rays_from_behind_and_outward_miss():
    origin = np.array([[0.0, 0.0, 3.0]])
    for kind in (BOX, ELLIPSOID, FRUSTUM):
        t, _ = _hits(kind, origin, np.array([[0.0, 0.0, 1.0]]))
        assert np.isinf(t).all()


def test_affine_placement_preserves_hit_distance_and_normals():
    # a box of half extents (0.5, 1, 2) rotated 90 degrees about z, centred at (1, 2, 3)
    rotation = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]])
    local_to_world = np.concatenate([rotation @ np.diag([0.5, 1.0, 2.0]), np.array([[1.0], [2.0], [3.0]])], axis=1)
    prims = make_primitives([BOX], local_to_world[None], [[1, 1]], [0], [[1, 1, 1]])
    origin, direction = np.array([10.0, 2.0, 3.0]), np.array([[-1.0, 0.0, 0.0]])
    m = prims.world_to_local[0]
    t, n_local = hit_box((m[:, :3] @ origin + m[:, 3])[None], direction @ m[:, :3].T, 1e-6)
    assert np.isclose(t[0], 10.0 - 1.0 - 1.0)  # world half extent along x is 1 after the rotation
    assert np.allclose(local_normal_to_world(m, n_local), [[1.0, 0.0, 0.0]])
    lo, hi = prims.world_bounds()
    assert np.allclose(lo, [[0.0, 1.5, 1.0]]) and np.allclose(hi, [[2.0, 2.5, 5.0]])
