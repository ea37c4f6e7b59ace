"""Torch datasets turning language records and scenes into training samples (UniVLG reference 3.1, 3.7, 3.8).

A :class:`TrainingSample` is one visual sample (a few frames of a scene, or one image), one text, and the objects
the text talks about: their character spans, their masks over the sample's output points and their boxes.
- :class:`ReferralDataset`: SR3D / NR3D / ScanRefer-style sentences; objects = target + anchors (target first).
- :class:`DetectionDataset`: instance segmentation as grounding: the text lists the class names and every
  instance is an object (reference 3.1).
- :class:`QuestionDataset`: ScanQA-style questions: the prompt grounds every relevant object and one reference
  answer is the generation head's target.
- 2D samples (RefCOCO-style referrals, detection on single frames) are in :mod:`univlg.data.image_datasets`.
Every sample is a pure function of ``(index, seed)``, so training resumes exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import torch

from univlg.data.augment import random_scene_affine
from univlg.data.batch import VisualSample, scene_to_sample
from univlg.data.frames import object_visibility, seen_by_frames, select_relevant_frames
from univlg.data.noun_phrase import find_target_span
from univlg.data.records import CharSpan, Question, Referral
from univlg.data.scene import PointCloud, Scene
from univlg.data.scene_store import SceneStore
from univlg.geometry import boxes_from_masks

DETECTION_EXCLUDED = ("wall", "floor", "ceiling")


@dataclass
class SampleOptions:
    """How a scene becomes a training sample.

    num_frames: views per sample; max_size: longer image side in pixels (None keeps the stored size);
    max_points: output points kept (random subset); subset_distance: a scene point is kept when some chosen view
    sees it, i.e. its depth agrees with the sensor depth within this distance (the paper's visible-mesh subset,
    by projection instead of a nearest-neighbour test); min_object_points: an object with fewer visible points is
    not a target; augment: random 3D affine map (reference 3.8); max_depth: depth beyond this many metres is
    invalid (never lifted). Training takes the first five from :class:`~univlg.train.config.DataConfig`, whose
    defaults are these.
    """

    num_frames: int = 8
    max_size: int | None = None
    max_points: int = 20000
    subset_distance: float = 0.05
    min_object_points: int = 10
    augment: bool = True
    max_depth: float = 15.0


@dataclass
class TrainingSample:
    """visual: the model input of one sample; text: the utterance or prompt; spans: per object (target first)
    its character spans in ``text``; point_masks: (G, P) bool over the sample's output points (P = V*h*w patch
    points for images); boxes: (G, 6) float corner boxes, or None for images; info: ids for logging/eval;
    answer: the answer to learn (question samples), else None; companions: more utterances about the same
    ``visual`` (their own ``visual`` is this one), decoded against one encoding of it in training; anchored: the
    objects after the first are the anchors the sentence relates the target to (referrals), not more targets;
    distractor_masks: (D, P) bool masks of the visible objects of the target's class other than the target
    (referrals; the candidates the sentence's relation tells apart), None where not asked for."""

    visual: VisualSample
    text: str
    spans: list[tuple[CharSpan, ...]]
    point_masks: torch.Tensor
    boxes: torch.Tensor | None
    info: dict
    answer: str | None = None
    companions: list[TrainingSample] = field(default_factory=list)
    anchored: bool = False
    distractor_masks: torch.Tensor | None = None


@dataclass
class Utterance:
    """A text about a scene and the objects it mentions: ``object_ids`` with their character ``spans`` in
    ``text`` (target first for referrals); ``info``: ids for logging/eval."""

    object_ids: list[int]
    text: str
    spans: list[tuple[CharSpan, ...]]
    info: dict


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, index])


def visible_subset(scene: Scene, options: SampleOptions, rng: np.random.Generator) -> np.ndarray:
    """Indices (K,) int64, sorted, of the scene points that its frames see (depth-tested), with K at most
    ``options.max_points``."""
    total = len(scene.points)
    # Test a random superset only: a few views rarely see under a quarter of a room.
    candidates = np.arange(total)
    if total > 4 * options.max_points:
        candidates = np.sort(rng.choice(total, size=4 * options.max_points, replace=False))
    frames = scene.frames
    seen = seen_by_frames(
        scene.points.xyz[candidates], frames.depth, frames.intrinsics, frames.cam_to_world, options.subset_distance
    ).any(axis=0)
    keep = candidates[seen]
    if len(keep) > options.max_points:
        keep = np.sort(rng.choice(keep, size=options.max_points, replace=False))
    return keep


def subset_points(points: PointCloud, keep: np.ndarray) -> PointCloud:
    """The rows ``keep`` (K,) of every per-point array."""
    return PointCloud(
        xyz=points.xyz[keep],
        colors=None if points.colors is None else points.colors[keep],
        instance_ids=points.instance_ids[keep],
        semantic_ids=None if points.semantic_ids is None else points.semantic_ids[keep],
        segment_ids=None if points.segment_ids is None else points.segment_ids[keep],
    )


class SceneSampler:
    """Builds 3D samples: choose views, augment, keep the visible points, make masks and boxes of the objects."""

    def __init__(self, store: SceneStore, patch_size: int, options: SampleOptions):
        self.store = store
        self.patch_size = patch_size
        self.options = options

    def frames_for(self, scene: Scene, object_ids: list[int], rng: np.random.Generator) -> np.ndarray:
        """View indices: frames showing the objects (relevance), the rest spread by camera position."""
        frames, points = scene.frames, scene.points
        counts = object_visibility(
            points.xyz, points.instance_ids, object_ids, frames.depth, frames.intrinsics, frames.cam_to_world
        )
        relevance = counts.sum(axis=1).astype(np.float64)
        relevance[~frames.valid_pose] = 0.0
        seen = int((counts > 0).any(axis=0).sum())
        cameras = np.nan_to_num(frames.cam_to_world[:, :3, 3], nan=0.0, posinf=0.0, neginf=0.0)
        return select_relevant_frames(
            self.options.num_frames, rng, relevance, self.options.num_frames // 3 + seen, cameras
        )

    def sample(
        self,
        scene: Scene,
        object_ids: list[int],
        text: str,
        spans: list[tuple[CharSpan, ...]],
        rng: np.random.Generator,
        info: dict,
        require_first: bool = True,
        allow_empty: bool = False,
        companions: tuple[Utterance, ...] = (),
        distractors: bool = False,
    ) -> TrainingSample | None:
        """The sample for ``object_ids`` (with their ``spans`` in ``text``); objects too little visible are dropped.

        Returns None when no object (or, with ``require_first``, not the first object) is visible enough; with
        ``allow_empty`` and no ``object_ids`` the sample has no object (a question about something absent).
        ``companions``: more utterances about the scene; the views are chosen for all their objects too, and each
        whose first object is visible enough becomes one of the sample's ``companions``. ``distractors``: give each
        utterance the masks of the other visible objects of its first object's class (``distractor_masks``).
        """
        extra = [o for c in companions for o in c.object_ids if o not in object_ids]
        relevant = [*object_ids, *dict.fromkeys(extra)]
        views = scene.frames.subset(self.frames_for(scene, relevant, rng))
        view_scene = replace(scene, frames=views)
        keep = visible_subset(view_scene, self.options, rng)
        instance_ids = scene.points.instance_ids[keep]
        masks, present = self._visible_objects(instance_ids, object_ids)
        if not (allow_empty and not object_ids) and (not present.any() or (require_first and not present[0])):
            return None
        # Augment after choosing the visible points: the same map moves poses and points, so visibility holds.
        view_scene = replace(view_scene, points=subset_points(view_scene.points, keep))
        if self.options.augment:
            view_scene = view_scene.transformed(random_scene_affine(view_scene.points.xyz, rng))
        visual = scene_to_sample(
            view_scene,
            self.patch_size,
            max_size=self.options.max_size,
            max_frames=None,
            max_depth=self.options.max_depth,
        )
        xyz = torch.from_numpy(view_scene.points.xyz.astype(np.float32))

        def utterance_sample(utterance: Utterance, masks: np.ndarray, present: np.ndarray) -> TrainingSample:
            masks = masks[present]
            kept_ids = [o for o, p in zip(utterance.object_ids, present, strict=True) if p]
            return TrainingSample(
                visual=visual,
                text=utterance.text,
                spans=[s for s, p in zip(utterance.spans, present, strict=True) if p],
                point_masks=torch.from_numpy(masks),
                boxes=boxes_from_masks(xyz, torch.from_numpy(masks)),
                info={**utterance.info, "object_ids": kept_ids},
                distractor_masks=self._distractor_masks(scene, instance_ids, utterance.object_ids[0])
                if distractors
                else None,
            )

        sample = utterance_sample(Utterance(object_ids, text, spans, info), masks, present)
        for companion in companions:
            masks, present = self._visible_objects(instance_ids, companion.object_ids)
            if present.size and present[0]:
                sample.companions.append(utterance_sample(companion, masks, present))
        return sample

    def _visible_objects(self, instance_ids: np.ndarray, object_ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """(G, K) bool masks of ``object_ids`` over the kept points' ``instance_ids`` (K,), and (G,) whether each
        has at least ``min_object_points`` of them."""
        if not object_ids:
            return np.zeros((0, len(instance_ids)), bool), np.zeros(0, bool)
        masks = np.stack([instance_ids == o for o in object_ids])
        return masks, masks.sum(axis=1) >= self.options.min_object_points

    def _distractor_masks(self, scene: Scene, instance_ids: np.ndarray, target: int) -> torch.Tensor:
        """(D, K) bool masks of the visible enough objects of ``target``'s class, ``target`` left out."""
        name = scene.objects.get(target)
        same_class = [o for o, other in scene.objects.items() if other == name and o != target]
        masks, present = self._visible_objects(instance_ids, same_class)
        return torch.from_numpy(masks[present])

    def sample_with_retries(self, scene: Scene, *args, attempts: int = 3, **kwargs) -> TrainingSample | None:
        """:meth:`sample` with fresh view choices, then with every frame as a last resort."""
        for _ in range(attempts):
            sample = self.sample(scene, *args, **kwargs)
            if sample is not None:
                return sample
        options = self.options
        self.options = replace(options, num_frames=len(scene.frames))
        try:
            return self.sample(scene, *args, **kwargs)
        finally:
            self.options = options


class ReferralDataset(torch.utils.data.Dataset):
    """Referring expressions about 3D scenes; ``sample(index, seed)`` is deterministic.

    ``sentences_per_scene`` > 1: the sample of referral ``index`` also carries up to that many minus one other
    referrals of its scene (drawn with the seed) as ``companions``, so one encoding of the views serves several
    sentences in training. ``distractors``: every utterance also carries the masks of the other visible objects
    of its target's class (``TrainingSample.distractor_masks``, what ``loss.relation_geometry`` compares)."""

    def __init__(
        self, sampler: SceneSampler, referrals: list[Referral], sentences_per_scene: int = 1, distractors: bool = False
    ):
        if sentences_per_scene < 1:
            raise ValueError(f"sentences_per_scene must be at least 1, got {sentences_per_scene}")
        self.sampler = sampler
        self.referrals = referrals
        self.sentences_per_scene = sentences_per_scene
        self.distractors = distractors
        # Per scene, each distinct sentence -> its first referral (in file order): the companions' candidates.
        self.sentences_by_scene: dict[str, dict[str, int]] = {}
        for i, referral in enumerate(referrals):
            self.sentences_by_scene.setdefault(referral.scene_id, {}).setdefault(referral.utterance, i)

    def __len__(self) -> int:
        return len(self.referrals)

    def objects_and_spans(self, referral: Referral) -> tuple[list[int], list[tuple[CharSpan, ...]]]:
        """Target (with its spans, or the head noun's) then the anchors that have spans."""
        target_spans = referral.target_spans or (find_target_span(referral.utterance),)
        objects, spans = [referral.target_id], [tuple(target_spans)]
        for anchor in referral.anchor_ids:
            if anchor != referral.target_id and referral.spans.get(anchor):
                objects.append(anchor)
                spans.append(tuple(referral.spans[anchor]))
        return objects, spans

    def utterance(self, index: int) -> Utterance:
        """Referral ``index`` as an :class:`Utterance` (target first, then anchors with spans)."""
        referral = self.referrals[index]
        objects, spans = self.objects_and_spans(referral)
        info = {"scene_id": referral.scene_id, "target_id": referral.target_id, "relation": referral.relation}
        return Utterance(objects, referral.utterance, spans, info)

    def companion_indices(self, index: int, rng: np.random.Generator) -> list[int]:
        """Up to ``sentences_per_scene - 1`` other referrals of the same scene, no two with the same sentence and
        none with the sentence of ``index`` (the first referral of each sentence stands for it)."""
        if self.sentences_per_scene == 1:
            return []
        referral = self.referrals[index]
        sentences = self.sentences_by_scene[referral.scene_id]
        others = [i for sentence, i in sentences.items() if sentence != referral.utterance]
        chosen = rng.permutation(len(others))[: self.sentences_per_scene - 1]
        return [others[i] for i in sorted(chosen)]

    def sample(self, index: int, seed: int) -> TrainingSample | None:
        """Referral ``index`` with its companions, on views chosen for all their objects (None: no usable views).
        The companions are drawn from the sample's generator before the views are."""
        rng = _rng(seed, index)
        main = self.utterance(index)
        companions = tuple(self.utterance(i) for i in self.companion_indices(index, rng))
        scene = self.sampler.store.get(main.info["scene_id"])
        sample = self.sampler.sample_with_retries(
            scene,
            main.object_ids,
            main.text,
            main.spans,
            rng,
            main.info,
            companions=companions,
            distractors=self.distractors,
        )
        for utterance in () if sample is None else (sample, *sample.companions):
            utterance.anchored = True  # objects_and_spans: the target, then its anchors
        return sample

    def __getitem__(self, index: int) -> TrainingSample | None:
        return self.sample(index, 0)


def detection_prompt(class_names: list[str]) -> tuple[str, dict[str, CharSpan]]:
    """``"chair. table. ..."`` (fixed order) and the character span of each class name in it."""
    spans, parts, position = {}, [], 0
    for name in class_names:
        spans[name] = (position, position + len(name))
        parts.append(name)
        position += len(name) + 2
    return ". ".join(parts), spans


class DetectionDataset(torch.utils.data.Dataset):
    """Instance segmentation as grounding: the prompt lists ``class_names``; every instance of them is a target."""

    def __init__(self, sampler: SceneSampler, scene_ids: list[str], class_names: list[str]):
        self.sampler = sampler
        self.scene_ids = scene_ids
        self.class_names = [c for c in class_names if c not in DETECTION_EXCLUDED]
        self.prompt, self.class_spans = detection_prompt(self.class_names)

    def __len__(self) -> int:
        return len(self.scene_ids)

    def sample(self, index: int, seed: int) -> TrainingSample | None:
        scene = self.sampler.store.get(self.scene_ids[index])
        objects = sorted(o for o, name in scene.objects.items() if name in self.class_spans)
        spans = [(self.class_spans[scene.objects[o]],) for o in objects]
        info = {"scene_id": scene.scene_id, "task": "detection"}
        return self.sampler.sample_with_retries(
            scene, objects, self.prompt, spans, _rng(seed, index), info, require_first=False
        )

    def __getitem__(self, index: int) -> TrainingSample | None:
        return self.sample(index, 0)


class QuestionDataset(torch.utils.data.Dataset):
    """Questions about 3D scenes (ScanQA-style): ``Question.prompt()`` grounds every relevant object on the span
    "relevant objects", and one of the reference answers, drawn with the sample's seed, is the answer target.
    A question without object ids ("is there a ball?" - "no") is a sample without objects; questions without
    answers are left out."""

    def __init__(self, sampler: SceneSampler, questions: list[Question]):
        self.sampler = sampler
        self.questions = [q for q in questions if q.answers]

    def __len__(self) -> int:
        return len(self.questions)

    def sample(self, index: int, seed: int) -> TrainingSample | None:
        question = self.questions[index]
        scene = self.sampler.store.get(question.scene_id)
        text, span = question.prompt()
        rng = _rng(seed, index)
        answer = question.answers[int(rng.integers(len(question.answers)))]
        objects = list(dict.fromkeys(question.object_ids))
        info = {"scene_id": question.scene_id, "question_id": question.question_id, "task": "qa"}
        sample = self.sampler.sample_with_retries(
            scene, objects, text, [(span,)] * len(objects), rng, info, require_first=False, allow_empty=True
        )
        return None if sample is None else replace(sample, answer=answer)

    def __getitem__(self, index: int) -> TrainingSample | None:
        return self.sample(index, 0)
