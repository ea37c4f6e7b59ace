"""Frame selection: visibility counts by hand, relevance sampling, farthest-point fill, windows."""

from __future__ import annotations

import numpy as np

from univlg.data.frames import object_visibility, select_relevant_frames, uniform_frames

K = np.array([[10.0, 0.0, 4.5], [0.0, 10.0, 4.5], [0.0, 0.0, 1.0]])


def test_object_visibility_counts_only_unoccluded_points_in_view():
    """Camera at the origin looking down +z at a wall z = 2; object 1 on the wall, object 2 behind it."""
    depth = np.full((2, 10, 10), 2.0, dtype=np.float32)
    poses = np.stack([np.eye(4), np.eye(4)])
    poses[1, 0, 3] = 100.0  # the second camera looks elsewhere
    on_wall = np.array([[0.0, 0.0, 2.0], [0.1, 0.1, 2.0], [0.3, -0.2, 2.0], [5.0, 0.0, 2.0]])  # last: outside
    behind = np.array([[0.0, 0.0, 3.0], [0.1, 0.0, 3.0]])
    points = np.concatenate([on_wall, behind])
    ids = np.array([1, 1, 1, 1, 2, 2])
    counts = object_visibility(points, ids, [1, 2, 7], depth, np.stack([K, K]), poses)
    np.testing.assert_array_equal(counts, [[3, 0, 0], [0, 0, 0]])


def test_relevant_frames_come_from_the_relevant_half():
    rng = np.random.default_rng(0)
    relevance = np.zeros(30)
    relevance[[4, 9, 17]] = [5.0, 1.0, 2.0]
    for _ in range(20):
        picked = select_relevant_frames(6, rng, relevance, num_relevant=3)
        assert len(picked) == 6 and len(set(picked)) == 6
        assert {4, 9, 17} <= set(picked.tolist())  # all three relevant frames are the only positive ones


def test_farthest_fill_spreads_over_embeddings():
    rng = np.random.default_rng(1)
    # Frames along a line; the relevant one at the start: the fill must reach the far end.
    embeddings = np.arange(40, dtype=np.float64)[:, None]
    relevance = np.zeros(40)
    relevance[0] = 1.0
    picked = select_relevant_frames(3, rng, relevance, num_relevant=1, embeddings=embeddings)
    assert picked.tolist() == [0, 20, 39] or picked.tolist() == [0, 19, 39]


def test_few_frames_are_all_kept():
    assert select_relevant_frames(8, np.random.default_rng(0), np.ones(5)).tolist() == [0, 1, 2, 3, 4]
    assert uniform_frames(5, 8).tolist() == [0, 1, 2, 3, 4]
    assert uniform_frames(9, 3).tolist() == [0, 4, 8]
