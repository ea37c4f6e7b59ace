"""``univlg eval`` without the command line: read a benchmark, run the model over a shard, merge, score.

Flow: :func:`plan_evaluation` reads the benchmark's records (every process does; it is cheap) ->
:func:`run_shard` runs the model over the scenes (or images) of one process, ``rank r`` of ``W`` taking the sorted
keys r, r + W, ... (:func:`shard_keys`), and reduces each prediction to the small per-item numbers the metrics
need (IoUs, pixel counts; packed instance masks for AP) -> the main process gathers the shards
(:func:`gather_shards`, ``torch.distributed.gather_object``) -> :func:`merge_shards` puts the items back in
order and computes the metrics of :mod:`univlg.eval` -> a JSON-friendly dict (see docs/benchmarks.md).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch.distributed as dist
from tqdm import tqdm

from univlg import benchmark_data as data
from univlg.benchmark_names import BENCHMARKS, GROUNDING_BENCHMARKS
from univlg.data.formats.coco import segmentation_mask
from univlg.data.records import Question
from univlg.data.scene_store import SceneStore
from univlg.errors import ConfigError, SceneError
from univlg.eval.grounding import evaluate_grounding
from univlg.eval.instance_ap import ScenePrediction, instance_average_precision
from univlg.eval.qa import evaluate_qa
from univlg.eval.refcoco import mask_overlap, refcoco_box_accuracy
from univlg.eval.report import grounding_metrics, instance_metrics, json_safe, refcoco_metrics
from univlg.predict import DETECTION_TOP_K, predict_instances, predict_referrals
from univlg.predict_images import predict_image_referrals

logger = logging.getLogger(__name__)

ANSWER_NOTE = (
    "no answers were written (the checkpoint has no answer-generation head, model.answer.enabled), so answer "
    "metrics are not reported"
)
SQA3D_NOTE = "SQA3D has no grounding target (its official target id is a constant 0): nothing is grounded"
NO_REFERENCES_NOTE = (
    "the questions have no reference answers (a hidden test split?): the answers are written per item, not scored"
)
SCANQA_ANSWER_NOTE = (
    "answers: greedy decoding of the generation head; EM and EM-R (the text metrics BLEU/METEOR/ROUGE-L/CIDEr need "
    "Java and are not computed here)"
)
SQA3D_ANSWER_NOTE = (
    "answers: greedy decoding of the generation head after situation + question + ' find relevant objects'; EM (the "
    "headline metric), EM-R and EM per question type (first word: what / is / how / can / which / others)"
)


@dataclass
class EvalOptions:
    """What to evaluate and how (the command-line options of ``univlg eval``)."""

    benchmark: str
    data_root: Path
    split: str = "val"
    annotations: Path | None = None
    images: Path | None = None
    labels: Path | None = None
    batch_size: int = 8
    max_frames: int | None = 450
    limit: int | None = None
    use_gt_spans: bool = True
    upsample: str = "bilinear"
    lift_images: bool = True
    top_k: int = DETECTION_TOP_K
    progress: bool = False


@dataclass
class EvalPlan:
    """The records of one evaluation: ``items`` (referrals, image referrals or scene ids), ``keys`` (the scene
    or image of each item, the unit of sharding), and what the report says about them."""

    task: str
    items: list
    keys: list[str]
    annotations: Path | None
    counts: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    classes: data.InstanceClasses | None = None
    image_root: Path | None = None


def spans_used(options: EvalOptions) -> str | None:
    """The target spans a run decodes with: "gt" (annotated; ScanQA's prompt always carries its own span),
    "predicted" (the rule-based head noun), "class names" (scannet200's detection prompt), None (sqa3d decodes
    nothing)."""
    if options.benchmark == "sqa3d":
        return None
    if options.benchmark == "scannet200":
        return "class names"
    return "gt" if options.use_gt_spans or options.benchmark == "scanqa" else "predicted"


def labels_path(options: EvalOptions) -> Path:
    """The ScanNet label-map TSV: ``--labels`` when given, else the one under the data root."""
    return options.labels or options.data_root / data.LABELS_FILE


def plan_evaluation(options: EvalOptions) -> EvalPlan:
    """Read the benchmark's records under ``options.data_root`` (layout: :mod:`univlg.benchmark_data`).

    Raises:
        FormatError: an annotation file is missing or has a bad row (the message names it).
    """
    root, benchmark = Path(options.data_root), options.benchmark
    if benchmark in (*GROUNDING_BENCHMARKS, "scanqa"):
        found = data.load_grounding_set(benchmark, root, options.split, options.annotations, labels_path(options))
        items = found.referrals[: options.limit]
        counts = {"rows": found.rows, **{f"dropped_{k}": v for k, v in found.dropped.items() if v}}
        notes = list(found.notes)
        if benchmark == "scanqa":
            notes.append("grounding of the first object_id, utterance = question + ' find relevant objects', "
                         "target span 'relevant objects' (reference 3.1 / 5.3)")  # fmt: skip
        return EvalPlan("grounding", items, [r.scene_id for r in items], found.path, counts, notes)
    if benchmark == "sqa3d":
        questions = data.load_sqa3d(root, options.split, options.annotations)[: options.limit]
        path = data.find_annotations(benchmark, root, options.split, options.annotations)
        return EvalPlan("qa", questions, [q.scene_id for q in questions], path, {"questions": len(questions)},
                        [SQA3D_NOTE])  # fmt: skip
    if benchmark == "refcoco":
        referrals, _ = data.load_image_referrals(root, options.split, options.annotations)
        referrals = referrals[: options.limit]
        image_root = data.find_image_root(root, referrals, options.images)
        path = data.find_annotations(benchmark, root, options.split, options.annotations)
        plan = EvalPlan("image_grounding", referrals, [r.file_name for r in referrals], path, image_root=image_root)
        plan.counts = {"sentences": len(referrals)}
        return plan
    if benchmark == "scannet200":
        path = data.find_annotations(benchmark, root, options.split, options.annotations)
        scene_ids = data.read_scene_list(path)[: options.limit]
        classes = data.instance_classes(root, labels_path(options))
        plan = EvalPlan("instance_segmentation", scene_ids, list(scene_ids), path, classes=classes)
        plan.counts = {"classes": len(classes.names)}
        return plan
    raise ConfigError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")


def shard_keys(keys: list[str], rank: int, world_size: int) -> list[str]:
    """The keys (scenes or images) of process ``rank`` of ``world_size``: sorted unique keys r, r + W, ..."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside a world of {world_size}")
    return sorted(set(keys))[rank::world_size]


def _shard_items(plan: EvalPlan, rank: int, world_size: int) -> dict[str, list[int]]:
    """Item indices of this shard grouped by key, keys in sorted order."""
    mine = {k: [] for k in shard_keys(plan.keys, rank, world_size)}
    for index, key in enumerate(plan.keys):
        if key in mine:
            mine[key].append(index)
    return mine


def _grounding_shard(model, plan: EvalPlan, options: EvalOptions, groups: dict, progress: bool) -> dict:
    store = SceneStore(data.scans_folder(options.data_root), capacity=2)
    use_gt = spans_used(options) == "gt"
    out = {}
    for scene_id, indices in tqdm(groups.items(), desc="scenes", unit="scene", disable=not progress):
        referrals = [plan.items[i] for i in indices]
        predictions = predict_referrals(model, store, referrals, options.batch_size, use_gt, options.max_frames)
        scene = store.get(scene_id)
        if scene.points is None or scene.points.instance_ids is None:
            raise SceneError(f"{store.root / scene_id}: no mesh with instance labels (grounding is scored on them)")
        report = evaluate_grounding([p.mask for p in predictions], scene.points.xyz, scene.points.instance_ids,
                                    [r.target_id for r in referrals])  # fmt: skip
        answers = [None] * len(referrals)
        if options.benchmark == "scanqa" and model.answer_head is not None:
            questions = [r.meta["question"] for r in referrals]
            answers = model.answer(scene, questions, options.batch_size, options.max_frames)
        for k, index in enumerate(indices):
            out[index] = (float(report.ious[k]), float(report.mask_ious[k]), predictions[k].score, answers[k])
    return out


def _image_shard(model, plan: EvalPlan, options: EvalOptions, groups: dict, progress: bool) -> dict:
    scans = data.scans_folder(options.data_root)
    store = SceneStore(scans, capacity=2) if options.lift_images and scans.is_dir() else None
    indices = [i for group in groups.values() for i in group]
    referrals = [plan.items[i] for i in indices]
    predictions = predict_image_referrals(model, referrals, plan.image_root, store, options.batch_size,
                                          options.upsample, options.use_gt_spans, progress)  # fmt: skip
    _, box_ious = refcoco_box_accuracy([p.mask for p in predictions], [r.box_xyxy for r in referrals])
    out = {}
    for k, (index, referral, prediction) in enumerate(zip(indices, referrals, predictions, strict=True)):
        inter = union = float("nan")
        if referral.segmentation is not None:
            gt = segmentation_mask(referral.segmentation, referral.height, referral.width)
            inter, union = mask_overlap(prediction.mask, gt)
        out[index] = (float(box_ious[k]), inter, union, prediction.score, prediction.lifted)
    return out


def _instance_shard(model, plan: EvalPlan, options: EvalOptions, groups: dict, progress: bool) -> dict:
    store = SceneStore(data.scans_folder(options.data_root), capacity=2)
    classes = plan.classes
    out = {}
    for scene_id, (index,) in tqdm(groups.items(), desc="scenes", unit="scene", disable=not progress):
        (prediction,) = predict_instances(model, store, [scene_id], classes.names, classes.ids, options.top_k,
                                          options.max_frames)  # fmt: skip
        codes = data.scene_gt_codes(store.get(scene_id), classes)
        masks = np.packbits(prediction.masks, axis=1)  # 8x smaller to send to the main process
        out[index] = (masks, prediction.masks.shape[1], prediction.classes, prediction.scores, codes.astype(np.int32))
    return out


def _qa_shard(model, plan: EvalPlan, options: EvalOptions, groups: dict, progress: bool) -> dict:
    """The answer to every question (None for all without a generation head: nothing is loaded then)."""
    if model.answer_head is None:
        return {index: None for indices in groups.values() for index in indices}
    store = SceneStore(data.scans_folder(options.data_root), capacity=2)
    out = {}
    for scene_id, indices in tqdm(groups.items(), desc="scenes", unit="scene", disable=not progress):
        questions = [plan.items[i] for i in indices]
        answers = model.answer(store.get(scene_id), [q.question for q in questions], options.batch_size,
                               options.max_frames, situations=[q.situation for q in questions])  # fmt: skip
        out.update(zip(indices, answers, strict=True))
    return out


def run_shard(model, plan: EvalPlan, options: EvalOptions, rank: int = 0, world_size: int = 1) -> dict:
    """Per-item results of this process's scenes/images: item index -> a tuple of numbers (see the module)."""
    groups = _shard_items(plan, rank, world_size)
    progress = options.progress and rank == 0
    if plan.task == "grounding":
        return _grounding_shard(model, plan, options, groups, progress)
    if plan.task == "image_grounding":
        return _image_shard(model, plan, options, groups, progress)
    if plan.task == "instance_segmentation":
        return _instance_shard(model, plan, options, groups, progress)
    return _qa_shard(model, plan, options, groups, progress)


def gather_shards(shard: dict, rank: int, world_size: int) -> list[dict] | None:
    """Every process's shard on the main process (None elsewhere); no process group: just this one."""
    if world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return [shard]
    shards = [None] * world_size if rank == 0 else None
    dist.gather_object(shard, shards, dst=0)
    return shards


def merge_shards(plan: EvalPlan, options: EvalOptions, shards: list[dict]) -> dict:
    """The result dict (JSON-friendly) from the shards of every process."""
    results = {index: value for shard in shards for index, value in shard.items()}
    missing = len(plan.items) - len(results)
    if missing:
        raise RuntimeError(f"{missing} of {len(plan.items)} items have no result after gathering the shards")
    rows = [results[i] for i in range(len(plan.items))]
    counts = dict(plan.counts)
    notes = list(plan.notes)
    metrics: dict = {}
    per_item: dict = {}
    if plan.task == "grounding":
        ious, mask_ious, scores = (np.array([r[k] for r in rows], dtype=np.float64) for k in range(3))
        metrics["grounding"] = grounding_metrics(ious, mask_ious, plan.items, options.benchmark)
        if options.benchmark == "scanqa":
            answers = [r[3] for r in rows]
            metrics["answers"], note = _answer_metrics(_scanqa_questions(plan), answers, SCANQA_ANSWER_NOTE)
            notes.append(note)
        counts.update(referrals=len(rows), scenes=len(set(plan.keys)))
        per_item = {"iou": ious, "mask_iou": mask_ious, "score": scores}
        if options.benchmark == "scanqa" and _answered(answers):
            per_item["answer"] = answers
    elif plan.task == "image_grounding":
        box_ious, inter, union, scores = (np.array([r[k] for r in rows], dtype=np.float64) for k in range(4))
        metrics["refcoco"] = refcoco_metrics(box_ious, inter, union)
        counts.update(images=len(set(plan.keys)), lifted_sentences=int(sum(r[4] for r in rows)))
        per_item = {"box_iou": box_ious, "score": scores}
    elif plan.task == "instance_segmentation":
        predictions = [ScenePrediction(np.unpackbits(m, axis=1, count=p).astype(bool), c, s) for m, p, c, s, _ in rows]
        result = instance_average_precision(predictions, [r[4] for r in rows], plan.classes.ids, plan.classes.names)
        metrics["instances"] = instance_metrics(result, plan.classes.splits)
        counts["scenes"] = len(rows)
    else:
        metrics["answers"], note = _answer_metrics(plan.items, rows, SQA3D_ANSWER_NOTE)
        notes.append(note)
        if _answered(rows):
            per_item = {"answer": rows}
    return json_safe({
        "benchmark": options.benchmark,
        "split": options.split,
        "task": plan.task,
        "annotations": str(plan.annotations) if plan.annotations else None,
        "counts": counts,
        "metrics": metrics,
        "notes": notes,
        "per_item": per_item,
    })  # fmt: skip


def _scanqa_questions(plan: EvalPlan) -> list[Question]:
    """The ScanQA questions behind a grounding plan's referrals (their answers and question types)."""
    return [
        Question(r.scene_id, r.meta["question"], tuple(r.meta["answers"]), question_type=r.meta.get("type", ""))
        for r in plan.items
    ]


def _answered(answers: list[str | None]) -> bool:
    """Whether the model wrote an answer for every question (it has a generation head)."""
    return bool(answers) and all(a is not None for a in answers)


def _answer_metrics(questions: list[Question], answers: list[str | None], note: str) -> tuple[dict | None, str]:
    """EM / EM-R, per question type too, and ``note``; or None and why not (the model wrote no answers, or the
    questions have no references)."""
    if not _answered(answers):
        return None, ANSWER_NOTE
    if not all(q.answers for q in questions):
        return None, NO_REFERENCES_NOTE
    return evaluate_qa(answers, questions, text_metrics=False), note


def evaluate(
    model, options: EvalOptions, rank: int = 0, world_size: int = 1, plan: EvalPlan | None = None
) -> dict | None:
    """Plan (unless given), run this process's shard, gather, merge: the result dict on rank 0, None elsewhere."""
    plan = plan_evaluation(options) if plan is None else plan
    logger.info("%s %s: %d items over %d keys; process %d of %d", options.benchmark, options.split,
                len(plan.items), len(set(plan.keys)), rank, world_size)  # fmt: skip
    shards = gather_shards(run_shard(model, plan, options, rank, world_size), rank, world_size)
    return merge_shards(plan, options, shards) if rank == 0 else None
