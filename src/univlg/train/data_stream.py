"""The training data: sources built from the config, and a deterministic stream of batches.

Batch ``s`` depends only on (seed, s, rank): each global step is all-3D or all-2D (one choice shared by every
process, probability ``prob_2d`` when both kinds exist), a 2D step is lifted to 3D with probability
``lift_probability`` when some 2D source can lift (has a scans folder; only those sources then take part, and
their images without a point map are redrawn), each sample picks a source by weight and an index uniformly. So a
resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from univlg.benchmark_data import read_benchmark_referrals, read_scene_list
from univlg.data.collate import TrainingBatch
from univlg.data.datasets import (
    DetectionDataset,
    QuestionDataset,
    ReferralDataset,
    SampleOptions,
    SceneSampler,
    TrainingSample,
)
from univlg.data.formats.refcoco import read_refcoco
from univlg.data.formats.scanqa import read_scanqa_json
from univlg.data.image_datasets import FrameDetectionDataset, ImageReferralDataset
from univlg.data.scene_store import SceneStore
from univlg.errors import ConfigError, DataError
from univlg.train.config import DataConfig, SourceConfig

logger = logging.getLogger(__name__)

MAX_REDRAWS = 20


def sample_options(cfg: DataConfig, augment: bool | None = None) -> SampleOptions:
    return SampleOptions(
        num_frames=cfg.num_frames,
        max_size=cfg.max_size,
        max_points=cfg.max_points,
        subset_distance=cfg.subset_distance,
        augment=cfg.augment if augment is None else augment,
    )


@dataclass
class Source:
    """A dataset, its sampling weight, whether it is 2D, and (2D) whether its images can be lifted to 3D."""

    dataset: torch.utils.data.Dataset
    weight: float
    is_2d: bool
    can_lift: bool = False


class SceneStores:
    """One :class:`SceneStore` per scans folder, shared by every source that reads it."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._stores: dict[str, SceneStore] = {}

    def get(self, root: str) -> SceneStore:
        if not root:
            raise ConfigError("a data source needs its 'scans' folder")
        if root not in self._stores:
            self._stores[root] = SceneStore(root, self.capacity)
        return self._stores[root]


def _detection_scenes(source: SourceConfig) -> list[str]:
    """The scene list file's scenes, or every scan folder of ``source.scans`` without one."""
    if source.annotations:
        return read_scene_list(Path(source.annotations))
    return sorted(p.name for p in Path(source.scans).iterdir() if p.is_dir())


def build_source(
    source: SourceConfig, cfg: DataConfig, stores: SceneStores, patch_size: int, distractors: bool = False
) -> Source:
    """The dataset a :class:`SourceConfig` describes; ``distractors``: referral samples carry their distractors'
    masks (:class:`~univlg.data.datasets.ReferralDataset`)."""
    options = sample_options(cfg)
    if source.kind == "image_referral":
        store = stores.get(source.scans) if source.scans else None
        referrals = read_refcoco(source.annotations, source.instances)
        images = source.images or source.scans
        dataset = ImageReferralDataset(images, referrals, patch_size, options, store)
        return Source(dataset, source.weight, True, can_lift=store is not None)
    store = stores.get(source.scans)
    if source.kind == "referral":
        referrals = read_benchmark_referrals(Path(source.annotations))
        dataset = ReferralDataset(
            SceneSampler(store, patch_size, options), referrals, cfg.sentences_per_scene, distractors
        )
        return Source(dataset, source.weight, False)
    if source.kind == "qa":
        questions = read_scanqa_json(Path(source.annotations))
        dataset = QuestionDataset(SceneSampler(store, patch_size, options), questions)
        if len(dataset) == 0:
            raise ConfigError(f"{source.annotations}: no question with answers for a qa source")
        return Source(dataset, source.weight, False)
    if not cfg.detection_classes:
        raise ConfigError(f"a {source.kind} source needs data.detection_classes")
    classes = list(cfg.detection_classes)
    if source.kind == "frame_detection":
        dataset = FrameDetectionDataset(store, _detection_scenes(source), classes, patch_size, options)
        if len(dataset) == 0:
            raise ConfigError(f"{source.scans}: no scan has instance-filt/<frame>.png images for frame_detection")
        return Source(dataset, source.weight, True, can_lift=True)
    dataset = DetectionDataset(SceneSampler(store, patch_size, options), _detection_scenes(source), classes)
    return Source(dataset, source.weight, False)


class BatchStream(torch.utils.data.IterableDataset):
    """Yields ``(step, TrainingBatch)`` for steps ``start..end-1`` of this process (deterministic, see module)."""

    def __init__(
        self,
        sources: list[Source],
        collate: Callable[[list[TrainingSample]], TrainingBatch],
        batch_size: int,
        seed: int,
        prob_2d: float,
        lift_probability: float,
        start: int,
        end: int,
        rank: int = 0,
    ):
        if not sources:
            raise ConfigError("training needs at least one data source")
        self.sources = sources
        self.collate = collate
        self.batch_size = batch_size
        self.seed = seed
        self.prob_2d = prob_2d
        self.lift_probability = lift_probability
        self.start, self.end, self.rank = start, end, rank

    def batch_kind(self, step: int) -> tuple[bool, bool]:
        """(is_2d, lift) of global step ``step``, the same on every process; lift only when a 2D source can."""
        rng = np.random.default_rng([self.seed, step])
        kinds = {s.is_2d for s in self.sources}
        is_2d = kinds.pop() if len(kinds) == 1 else bool(rng.random() < self.prob_2d)
        can_lift = any(s.can_lift for s in self.sources if s.is_2d)
        return is_2d, is_2d and can_lift and bool(rng.random() < self.lift_probability)

    def batch_at(self, step: int) -> TrainingBatch:
        """The batch of global step ``step`` for this process (see the module docstring).

        Raises:
            DataError: no source gave a usable sample in :data:`MAX_REDRAWS` draws.
        """
        is_2d, lift = self.batch_kind(step)
        pool = [s for s in self.sources if s.is_2d == is_2d and (s.can_lift or not lift)]
        weights = np.array([s.weight for s in pool], dtype=np.float64)
        samples = []
        for i in range(self.batch_size):
            rng = np.random.default_rng([self.seed, step, self.rank, i])
            for _ in range(MAX_REDRAWS):
                source = pool[int(rng.choice(len(pool), p=weights / weights.sum()))]
                index = int(rng.integers(len(source.dataset)))
                seed = int(rng.integers(2**31))
                sample = source.dataset.sample(index, seed, lift) if is_2d else source.dataset.sample(index, seed)
                if sample is not None:
                    samples.append(sample)
                    break
            else:
                kind = "lifted 2D" if lift else "2D" if is_2d else "3D"
                raise DataError(
                    f"step {step}: no usable {kind} training sample in {MAX_REDRAWS} draws from the sources "
                    f"{[type(s.dataset).__name__ for s in pool]}: their objects are never visible enough in the "
                    "chosen views, or (lifted 2D) their images are not frames of a scan with depth"
                )
        return self.collate(samples)

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, workers = (0, 1) if info is None else (info.id, info.num_workers)
        for step in range(self.start + worker, self.end, workers):
            yield step, self.batch_at(step)
