"""Where each benchmark's files live under a data root, and the records ``univlg eval`` evaluates.

Layout under ``--data-root`` (the output of ``univlg synth`` has it; for real data put the official files there,
with the scans exported by ``univlg prepare scannet``); the first existing candidate wins, ``--annotations``
overrides it::

    scans/<scene_id>/...                          ScanNet export layout read by SceneStore (mesh, labels, frames)
    referit3d/sr3d_<split>.csv                    SR3D (the official "sr3d_test.csv" is read for split val)
    referit3d/nr3d_<split>.csv or ScanEnts3D_Nr3D_<split>.csv     NR3D ("nr3d_test.csv" for split val)
    scanrefer/ScanRefer_filtered_<split>_ScanEnts3D.json or ScanRefer_filtered_<split>.json
    scanqa/ScanQA_v1.0_<split>.json
    sqa3d/v1_balanced_questions_<split>_scannetv2.json + v1_balanced_sqa_annotations_<split>_scannetv2.json,
        or the flat sqa3d/SQA_<split>.json
    refcoco/refs(synth_<split>).p or refs(unc).p, with instances_<split>.json or instances.json beside it;
        images under scans/ (synthetic frames), images/, coco/train2014/ or refcoco/images/
    splits/scannetv2_<split>.txt or splits/synth_<split>.txt    scene list of scannet200
    scannetv2-labels.combined.tsv                 ScanNet200 classes of raw labels; ScanRefer unique/multiple
    manifest.json                                 synthetic class table (scannet200 on synthetic scenes)

Filtering follows UniVLG's evaluation (reference 5.1): rows with ``mentions_target_class`` False are dropped;
NR3D keeps every other row (the official ``correct_guess`` filter never runs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from univlg.benchmark_names import BENCHMARKS
from univlg.data.formats.fields import Where, as_int, as_str, read_json, require
from univlg.data.formats.mask3d import instance_gt_ids
from univlg.data.formats.refcoco import read_refcoco
from univlg.data.formats.referit3d import read_referit3d_csv
from univlg.data.formats.scannet_labels import (
    SCANNET200_INSTANCE_CLASS_IDS,
    SCANNET200_INSTANCE_CLASS_NAMES,
    read_label_map,
    scannet200_split,
)
from univlg.data.formats.scanqa import read_scanqa_json
from univlg.data.formats.scanrefer import read_scanrefer_json
from univlg.data.formats.sqa3d import read_sqa3d, read_sqa3d_flat
from univlg.data.records import ImageReferral, Question, Referral
from univlg.data.scene import Scene
from univlg.errors import FormatError

LABELS_FILE = "scannetv2-labels.combined.tsv"
IMAGE_FOLDERS = ("scans", "images", "coco/train2014", "refcoco/images")


def _val_alias(split: str) -> list[str]:
    """ReferIt3D names its validation files "test"."""
    return [split, "test"] if split == "val" else [split]


def annotation_candidates(benchmark: str, root: Path, split: str) -> list[Path]:
    """The files tried, in order, for the annotations of ``benchmark`` / ``split`` under ``root``."""
    if benchmark in ("sr3d", "synthetic"):
        return [root / "referit3d" / f"sr3d_{s}.csv" for s in _val_alias(split)]
    if benchmark == "nr3d":
        names = [f"{stem}_{s}.csv" for s in _val_alias(split) for stem in ("nr3d", "ScanEnts3D_Nr3D")]
        return [root / "referit3d" / n for n in names]
    if benchmark == "scanrefer":
        names = (f"ScanRefer_filtered_{split}_ScanEnts3D.json", f"ScanRefer_filtered_{split}.json")
        return [root / "scanrefer" / n for n in names]
    if benchmark == "scanqa":
        return [root / "scanqa" / f"ScanQA_v1.0_{split}.json"]
    if benchmark == "sqa3d":
        return [root / "sqa3d" / f"v1_balanced_questions_{split}_scannetv2.json", root / "sqa3d" / f"SQA_{split}.json"]
    if benchmark == "refcoco":
        return [root / "refcoco" / f"refs(synth_{split}).p", root / "refcoco" / "refs(unc).p"]
    if benchmark == "scannet200":
        return [root / "splits" / f"{stem}_{split}.txt" for stem in ("scannetv2", "synth")]
    raise ValueError(f"unknown benchmark {benchmark!r}; expected one of {BENCHMARKS}")


def find_annotations(benchmark: str, root: str | Path, split: str, override: str | Path | None = None) -> Path:
    """The annotation file to read: ``override`` when given, else the first existing candidate.

    Raises:
        FormatError: the file (or every candidate) is missing; the message lists the paths tried.
    """
    candidates = [Path(override)] if override else annotation_candidates(benchmark, Path(root), split)
    for path in candidates:
        if path.is_file():
            return path
    tried = ", ".join(str(p) for p in candidates)
    raise FormatError(f"{benchmark} {split}: annotation file not found (tried {tried}); pass --annotations FILE")


def scans_folder(root: str | Path) -> Path:
    """``<root>/scans`` when it exists (the layout above), else ``root`` itself (a plain folder of scans)."""
    root = Path(root)
    return root / "scans" if (root / "scans").is_dir() else root


# --------------------------------------------------------------------------------------------------- grounding


@dataclass
class GroundingSet:
    """Referrals to evaluate after filtering, read from ``path``: ``rows`` read, ``dropped`` per reason, ``notes``
    for the report."""

    path: Path
    referrals: list[Referral]
    rows: int
    dropped: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def read_benchmark_referrals(path: str | Path, benchmark: str | None = None) -> list[Referral]:
    """Referrals of a grounding file: a ReferIt3D CSV (``.csv``) or a ScanRefer JSON (``.json``); each record's
    ``dataset`` is ``benchmark`` when given, else the file's own (the CSV's ``dataset`` column, "scanrefer").

    Raises:
        FormatError: another suffix, or a bad row (the message names it).
    """
    path = Path(path)
    if path.suffix == ".json":
        return read_scanrefer_json(path, dataset=benchmark or "scanrefer")
    if path.suffix == ".csv":
        return read_referit3d_csv(path, dataset=benchmark)
    raise FormatError(f"{path}: referral annotations must be a ReferIt3D .csv or a ScanRefer .json")


def filter_referrals(referrals: list[Referral]) -> tuple[list[Referral], dict[str, int]]:
    """UniVLG's evaluation filter: drop rows whose ``mentions_target_class`` is False (kept when absent)."""
    kept = [r for r in referrals if r.meta.get("mentions_target_class", True) is not False]
    return kept, {"mentions_target_class_false": len(referrals) - len(kept)}


def with_scanrefer_unique_flags(referrals: list[Referral], labels_path: Path | None) -> tuple[list[Referral], str]:
    """ScanRefer referrals with ``meta["unique"]`` set (their own flag first, else ScanRefer's rule over the given
    referrals with the labels tsv); the second value says where the flags came from (for the report)."""
    if referrals and all("unique" in r.meta for r in referrals):
        return referrals, "the annotation file's is_unique_scanrefer flags"
    if labels_path is None or not labels_path.is_file():
        return referrals, f"no unique/multiple breakdown: {labels_path} not found"
    from univlg.eval.breakdowns import scanrefer_unique_flags

    flags = scanrefer_unique_flags(referrals, read_label_map(labels_path))
    out = [
        r if "unique" in r.meta else replace(r, meta={**r.meta, "unique": f})
        for r, f in zip(referrals, flags, strict=True)
    ]
    return out, f"ScanRefer's rule over the evaluated annotations with {labels_path}"


def load_grounding_set(
    benchmark: str, root: Path, split: str, override: str | Path | None, labels_path: Path | None
) -> GroundingSet:
    """The filtered referrals of sr3d / nr3d / scanrefer / synthetic, plus the ScanQA grounding task."""
    path = find_annotations(benchmark, root, split, override)
    if benchmark == "scanqa":
        questions = read_scanqa_json(path)
        referrals = scanqa_grounding_referrals(questions)
        notes = [f"{len(questions) - len(referrals)} questions without object_ids are not grounded"]
        return GroundingSet(path, referrals, len(questions), {"no_object_ids": len(questions) - len(referrals)}, notes)
    referrals = read_benchmark_referrals(path, benchmark)
    kept, dropped = filter_referrals(referrals)
    notes = []
    if benchmark == "scanrefer":
        kept, source = with_scanrefer_unique_flags(kept, labels_path)
        notes.append(f"unique/multiple: {source}")
    return GroundingSet(path, kept, len(referrals), dropped, notes)


def scanqa_grounding_referrals(questions: list[Question]) -> list[Referral]:
    """ScanQA's grounding task (reference 3.1 / 5.3): ``question + " find relevant objects"``, target = the first
    object id, target span = "relevant objects"; questions without objects are left out. ``meta`` keeps the
    question id, the bare question, its reference answers and type (for a model that answers)."""
    out = []
    for q in questions:
        if not q.object_ids:
            continue
        text, span = q.prompt()
        meta = {"question_id": q.question_id, "question": q.question, "answers": q.answers, "type": q.question_type}
        out.append(Referral(q.scene_id, text, q.object_ids[0], spans={q.object_ids[0]: (span,)}, dataset="scanqa",
                            meta=meta))  # fmt: skip
    return out


def load_sqa3d(root: Path, split: str, override: str | Path | None) -> list[Question]:
    """SQA3D questions: the official question/annotation pair (annotations optional), or the flat list."""
    path = find_annotations("sqa3d", root, split, override)
    if "v1_balanced_questions_" in path.name:
        annotations = path.with_name(path.name.replace("v1_balanced_questions_", "v1_balanced_sqa_annotations_"))
        return read_sqa3d(path, annotations if annotations.is_file() else None)
    return read_sqa3d_flat(path)


# ----------------------------------------------------------------------------------------------------- refcoco


def load_image_referrals(root: Path, split: str, override: str | Path | None) -> tuple[list[ImageReferral], Path]:
    """RefCOCO-style referrals of ``split`` and the instances file used (``instances_<split>.json`` or
    ``instances.json`` beside the refs file)."""
    refs = find_annotations("refcoco", root, split, override)
    for name in (f"instances_{split}.json", "instances.json"):
        if (refs.parent / name).is_file():
            return read_refcoco(refs, refs.parent / name, split=split), refs.parent / name
    raise FormatError(f"{refs}: no COCO instances file beside it (instances_{split}.json or instances.json)")


def find_image_root(root: Path, referrals: list[ImageReferral], override: str | Path | None) -> Path:
    """The folder the referrals' image file names are relative to (the first candidate holding the first image)."""
    candidates = [Path(override)] if override else [root / f for f in IMAGE_FOLDERS]
    if not referrals:
        return candidates[0]
    for folder in candidates:
        if (folder / referrals[0].file_name).is_file():
            return folder
    tried = ", ".join(str(c) for c in candidates)
    raise FormatError(f"image {referrals[0].file_name!r} not found under any of {tried}; pass --images DIR")


# -------------------------------------------------------------------------------------------------- scannet200


@dataclass
class InstanceClasses:
    """The evaluated classes: names and dataset ids (parallel), each class's head/common/tail split (empty when the
    class set has none), and ``id_of_label``: a scene object's raw label -> its class id (0 = unlabelled)."""

    names: tuple[str, ...]
    ids: tuple[int, ...]
    splits: dict[str, str]
    id_of_label: Callable[[str], int]


def instance_classes(root: Path, labels_path: Path | None) -> InstanceClasses:
    """Synthetic classes from ``<root>/manifest.json`` (objects only, not wall/floor/ceiling), else the 198
    ScanNet200 instance classes with raw labels mapped through the labels tsv (``labels_path``)."""
    manifest = root / "manifest.json"
    if manifest.is_file():
        table = read_json(manifest)
        table = table.get("classes") if isinstance(table, dict) else None
        if not isinstance(table, list):
            raise FormatError(f"{manifest}: field 'classes': expected a list of {{id, name, kind}}")
        objects = {}
        for index, row in enumerate(table):
            where = Where(manifest, "classes item", index)
            if as_str(require(row, "kind", where), where, "kind") == "object":
                objects[as_str(require(row, "name", where), where, "name")] = as_int(
                    require(row, "id", where), where, "id"
                )
        return InstanceClasses(tuple(objects), tuple(objects.values()), {}, lambda label: objects.get(label, 0))
    if labels_path is None or not labels_path.is_file():
        raise FormatError(f"{labels_path}: ScanNet labels tsv not found (it maps raw labels to ScanNet200 classes); "
                          "pass --labels FILE")  # fmt: skip
    label_map = read_label_map(labels_path)
    splits = {n: scannet200_split(n) for n in SCANNET200_INSTANCE_CLASS_NAMES}
    return InstanceClasses(SCANNET200_INSTANCE_CLASS_NAMES, SCANNET200_INSTANCE_CLASS_IDS, splits,
                           label_map.scannet200_id)  # fmt: skip


def scene_gt_codes(scene: Scene, classes: InstanceClasses) -> np.ndarray:
    """Per-point GT codes ``class_id * 1000 + instance + 1`` of a scene's objects (0 = unlabelled): (P,) int64."""
    if scene.points is None or scene.points.instance_ids is None:
        raise FormatError(f"scene {scene.scene_id}: no instance labels on its points (mesh + aggregation needed)")
    instances = scene.points.instance_ids.astype(np.int64)
    semantic = np.zeros(len(instances), dtype=np.int64)
    for instance, label in scene.objects.items():
        semantic[instances == instance] = classes.id_of_label(label)
    return np.where(semantic > 0, instance_gt_ids(semantic, instances), 0)


def read_scene_list(path: Path) -> list[str]:
    """Scene ids, one a line, in file order without repeats (blank lines ignored)."""
    return list(dict.fromkeys(line.strip() for line in path.read_text().splitlines() if line.strip()))
