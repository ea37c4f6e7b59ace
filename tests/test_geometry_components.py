"""Connected parts of point masks, against a brute-force flood fill over all point pairs and hand-worked cases."""

import numpy as np
import pytest

from univlg.geometry.components import component_labels, main_parts


def brute_force_parts(points: np.ndarray, cell: float) -> list[set[int]]:
    """Flood fill over point pairs: i and j touch when their integer cells differ by at most 1 on every axis.
    Quadratic memory, so it refuses more than 5,000 points."""
    assert len(points) <= 5000, f"{len(points)} points: too many for the brute-force flood fill"
    cells = np.floor(points / cell).astype(np.int64)
    touching = np.ones((len(points), len(points)), dtype=bool)
    for axis in range(3):
        touching &= np.abs(cells[:, None, axis] - cells[None, :, axis]) <= 1
    unseen, parts = set(range(len(points))), []
    while unseen:
        stack = [unseen.pop()]
        part = set(stack)
        while stack:
            i = stack.pop()
            for j in np.flatnonzero(touching[i]):
                if j in unseen:
                    unseen.remove(j)
                    part.add(int(j))
                    stack.append(int(j))
        parts.append(part)
    return parts


@pytest.mark.parametrize("seed", range(5))
def test_labels_match_a_brute_force_flood_fill(seed):
    rng = np.random.default_rng(seed)
    points = np.concatenate([rng.normal(c, 0.15, size=(40, 3)) for c in rng.uniform(-3, 3, size=(6, 3))])
    labels = component_labels(points, cell=0.1)
    found = {frozenset(np.flatnonzero(labels == k).tolist()) for k in np.unique(labels)}
    assert found == {frozenset(p) for p in brute_force_parts(points, 0.1)}
    assert labels.max() + 1 == len(found)


def test_hand_worked_chain_and_outlier():
    # Cells of 1 m: x cells 0, 1, 2 touch one after another (one part); x cell 5 stands alone; a diagonal
    # neighbour (cell (3, 1, 1) next to (2, 0, 0)) joins the first part.
    points = np.array([[0.5, 0, 0], [1.5, 0, 0], [2.5, 0, 0], [5.5, 0, 0], [3.5, 1.5, 1.5]])
    labels = component_labels(points, cell=1.0)
    assert labels[0] == labels[1] == labels[2] == labels[4]
    assert labels[3] != labels[0]


def test_main_parts_drops_stray_points_and_keeps_unmasked_ones_out():
    rng = np.random.default_rng(0)
    chair = rng.uniform(0, 0.5, size=(200, 3))
    stray = rng.uniform(3, 3.2, size=(20, 3))
    other = rng.uniform(-2, -1.5, size=(50, 3))  # not in the mask
    points = np.concatenate([chair, stray, other])
    mask = np.zeros(len(points), dtype=bool)
    mask[:220] = True
    keep = main_parts(points, mask, cell=0.1)
    assert keep[:200].all() and not keep[200:].any()
    assert not (keep & ~mask).any()


def test_a_fraction_keeps_every_part_at_least_that_large():
    # Three parts of 200, 60 and 20 points, 1 m apart at a 0.1 m cell: 0.25 keeps the first two, 0.05 all three.
    rng = np.random.default_rng(1)
    sizes = (200, 60, 20)
    points = np.concatenate([rng.uniform(0, 0.3, size=(n, 3)) + [2.0 * k, 0, 0] for k, n in enumerate(sizes)])
    mask = np.ones(len(points), dtype=bool)
    assert main_parts(points, mask, 0.1, 0.25).sum() == 260
    assert main_parts(points, mask, 0.1, 0.05).sum() == 280
    assert main_parts(points, mask, 0.1).sum() == 200


def test_empty_mask_and_bad_input():
    points = np.zeros((4, 3))
    assert not main_parts(points, np.zeros(4, dtype=bool), 0.1).any()
    with pytest.raises(ValueError, match="does not match"):
        main_parts(points, np.zeros(3, dtype=bool), 0.1)
    with pytest.raises(ValueError, match="min_fraction"):
        main_parts(points, np.ones(4, dtype=bool), 0.1, 0.0)
    with pytest.raises(ValueError, match="positive"):
        component_labels(points, 0.0)
