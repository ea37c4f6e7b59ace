"""The batch stream: step kinds, lifting only where a 2D source can lift, redraws, and its error."""

from __future__ import annotations

import pytest

from univlg.errors import DataError, UnivlgError
from univlg.train.data_stream import MAX_REDRAWS, BatchStream, Source


class FakeDataset:
    """Records every ``sample`` call; returns None for lifted calls when it has no point maps."""

    def __init__(self, name: str, has_point_maps: bool = True, size: int = 5):
        self.name, self.has_point_maps, self.size = name, has_point_maps, size
        self.calls: list[tuple] = []

    def __len__(self) -> int:
        return self.size

    def sample(self, index: int, seed: int, lift: bool | None = None):
        self.calls.append((index, seed, lift))
        if lift and not self.has_point_maps:
            return None
        return (self.name, index, lift)


def _stream(sources, prob_2d=1.0, lift_probability=1.0, steps=20):
    return BatchStream(sources, list, 2, 0, prob_2d, lift_probability, 0, steps)


def test_2d_steps_are_never_lifted_without_a_source_that_can_lift():
    plain = FakeDataset("plain", has_point_maps=False)
    stream = _stream([Source(plain, 1.0, True, can_lift=False)], lift_probability=1.0)
    for step in range(20):
        assert stream.batch_kind(step) == (True, False)
        assert [s[2] for s in stream.batch_at(step)] == [False, False]


def test_lifted_steps_draw_only_from_sources_that_can_lift():
    plain, scans = FakeDataset("plain", has_point_maps=False), FakeDataset("scans")
    sources = [Source(plain, 10.0, True, can_lift=False), Source(scans, 1.0, True, can_lift=True)]
    stream = _stream(sources, lift_probability=1.0)
    batches = [stream.batch_at(step) for step in range(10)]
    assert all(sample[:1] == ("scans",) and sample[2] for batch in batches for sample in batch)
    assert plain.calls == []  # never asked for a lifted sample it cannot give
    half = _stream(sources, lift_probability=0.5)
    lifted = [half.batch_kind(step)[1] for step in range(200)]
    assert 60 < sum(lifted) < 140  # about half of the 2D steps


def test_3d_steps_ignore_lifting_and_mixed_kinds_follow_prob_2d():
    scenes, images = FakeDataset("scenes"), FakeDataset("images")
    stream = _stream([Source(scenes, 1.0, False), Source(images, 1.0, True, can_lift=True)], prob_2d=0.25)
    kinds = [stream.batch_kind(step) for step in range(400)]
    assert all(not lift for is_2d, lift in kinds if not is_2d)
    assert 60 < sum(is_2d for is_2d, _ in kinds) < 140
    assert kinds == [stream.batch_kind(step) for step in range(400)]  # a pure function of (seed, step)


def test_no_usable_sample_is_a_data_error_naming_the_step():
    never = FakeDataset("never", has_point_maps=False)
    stream = _stream([Source(never, 1.0, True, can_lift=True)], lift_probability=1.0)
    with pytest.raises(DataError, match=r"step 3: no usable lifted 2D training sample in 20 draws") as error:
        stream.batch_at(3)
    assert isinstance(error.value, UnivlgError) and len(never.calls) == MAX_REDRAWS
