"""Generate synthetic splits: scans, language files in the official formats, and a manifest.

Output layout under ``out``::

    manifest.json                              generator version, settings, seeds, splits, classes, statistics
    splits/synth_<split>.txt                   scene ids, one per line (like scannetv2_<split>.txt)
    scans/<scene>/...                          ScanNet export layout (see :mod:`writer`)
    referit3d/sr3d_<split>.csv                 SR3D-style sentences (+ ScanEnts3D ``entities`` spans)
    scanrefer/ScanRefer_filtered_<split>.json  ScanRefer-style multi-sentence descriptions (+ ``entities``)
    scanqa/ScanQA_v1.0_<split>.json            ScanQA-style questions
    refcoco/refs(synth_<split>).p, refcoco/instances_<split>.json   RefCOCO refs + COCO instances; image
                                               file names are relative to ``scans/`` (``<scene>/color/<i>.jpg``)

Scene ``i`` of a split is generated from ``SeedSequence(seed, spawn_key=(split code, i))``: splits never share a
stream, the first n scenes do not depend on how many are made, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import pickle
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from univlg.data.formats.fields import read_json
from univlg.data.formats.refcoco import write_refcoco
from univlg.data.formats.referit3d import write_sr3d_csv
from univlg.data.formats.scanqa import write_scanqa_json
from univlg.data.formats.scanrefer import write_scanrefer_json
from univlg.data.records import ImageReferral, Question, Referral
from univlg.data.synthetic.generate_scene import SPLIT_CODES, SynthSettings, generate_scene, scene_id_of
from univlg.data.synthetic.relations import RELATIONS
from univlg.data.synthetic.shapes import ALL_CLASSES, NAMED_COLOURS, STRUCTURE_CLASSES
from univlg.data.synthetic.writer import write_scene
from univlg.errors import ConfigError, FormatError

GENERATOR_VERSION = "1.0"
logger = logging.getLogger(__name__)


@dataclass
class SplitData:
    """The language of one split, gathered scene by scene."""

    scene_ids: list[str] = field(default_factory=list)
    referrals: list[Referral] = field(default_factory=list)
    descriptions: list[Referral] = field(default_factory=list)
    questions: list[Question] = field(default_factory=list)
    image_referrals: list[ImageReferral] = field(default_factory=list)
    object_names: dict[tuple[str, int], str] = field(default_factory=dict)

    def add(self, scene_id: str, referrals, descriptions, questions, image_referrals, names: dict[int, str]) -> None:
        """Append one scene's language (``names``: object id -> class)."""
        self.scene_ids.append(scene_id)
        self.referrals += referrals
        self.descriptions += descriptions
        self.questions += questions
        self.image_referrals += image_referrals
        self.object_names.update({(scene_id, i): label for i, label in names.items()})


def _make_scene(job: tuple) -> tuple:
    """Generate and write one scene (in a worker process or not); return its language for the split files."""
    split, index, seed, settings, scans_dir = job
    scene = generate_scene(split, index, seed, settings)
    write_scene(scene, scans_dir)
    names = {obj.object_id: obj.label for obj in scene.world.objects}
    return scene.scene_id, scene.referrals, scene.descriptions, scene.questions, scene.image_referrals, names


def _make_scene_in_process(job: tuple) -> tuple:
    """:func:`_make_scene` with its result passed through pickle as a worker's would be: pickle output depends on
    which equal strings are the same object, so both paths must build the records alike to write equal bytes."""
    return pickle.loads(pickle.dumps(_make_scene(job)))


@contextmanager
def _pool(workers: int):
    """A process pool of ``workers`` processes, or None for in-process generation."""
    if workers <= 1:
        yield None
        return
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        yield pool


def class_table() -> list[dict]:
    """Class ids as written in the labels PLY: ``[{"id": 1, "name": "table", "kind": "object"}, ...]``."""
    return [
        {"id": i + 1, "name": name, "kind": "structure" if name in STRUCTURE_CLASSES else "object"}
        for i, name in enumerate(ALL_CLASSES)
    ]


def class_only_baseline(referrals: list[Referral]) -> dict[str, float]:
    """Expected accuracy of picking a random object of the target's class, per relation and overall.

    Exactly the mean of 1 / (number of objects of the target's class) over the referrals.
    """
    groups: dict[str, list[float]] = {}
    for r in referrals:
        chance = 1.0 / (1 + len(r.distractor_ids))
        groups.setdefault(r.relation, []).append(chance)
        groups.setdefault("overall", []).append(chance)
    return {k: round(sum(v) / len(v), 4) for k, v in sorted(groups.items())}


def split_statistics(data: SplitData) -> dict:
    """Counts per relation / question type and the class-only baseline of a split."""
    return {
        "scenes": len(data.scene_ids),
        "referrals": len(data.referrals),
        "referrals_per_relation": dict(sorted(Counter(r.relation for r in data.referrals).items())),
        "descriptions": len(data.descriptions),
        "questions": len(data.questions),
        "questions_per_type": dict(sorted(Counter(q.question_type for q in data.questions).items())),
        "image_referrals": len(data.image_referrals),
        "class_only_baseline_sr3d": class_only_baseline(data.referrals),
        "class_only_baseline_scanrefer": class_only_baseline(data.descriptions),
    }


def write_language(out: Path, split: str, data: SplitData) -> None:
    """Write one split's language files through the official-format writers."""
    write_sr3d_csv(out / "referit3d" / f"sr3d_{split}.csv", data.referrals)
    write_scanrefer_json(out / "scanrefer" / f"ScanRefer_filtered_{split}.json", data.descriptions)
    write_scanqa_json(out / "scanqa" / f"ScanQA_v1.0_{split}.json", data.questions, data.object_names)
    if data.image_referrals:
        write_refcoco(out / "refcoco" / f"refs(synth_{split}).p", out / "refcoco" / f"instances_{split}.json",
                      data.image_referrals)  # fmt: skip
    (out / "splits").mkdir(parents=True, exist_ok=True)
    (out / "splits" / f"synth_{split}.txt").write_text("".join(f"{s}\n" for s in data.scene_ids))


def _manifest_base(seed: int, settings: SynthSettings) -> dict:
    return {
        "generator": "univlg.data.synthetic",
        "version": GENERATOR_VERSION,
        "seed": seed,
        "scene_seed": "numpy SeedSequence(entropy=seed, spawn_key=(split_code, scene_index))",
        "split_codes": SPLIT_CODES,
        "settings": settings.to_dict(),
        "classes": class_table(),
        "colors": list(NAMED_COLOURS),
        "relations": RELATIONS,
        "splits": {},
    }


def _load_manifest(path: Path, base: dict) -> dict:
    """The existing manifest when it was made with the same generator, seed and settings; else a fresh one."""
    if not path.is_file():
        return base
    try:
        old = read_json(path)
    except (OSError, FormatError) as error:
        raise ConfigError(f"{path}: unreadable manifest ({error}); use an empty output folder") from error
    if not isinstance(old, dict):
        raise ConfigError(f"{path}: not a manifest (expected a JSON object); use an empty output folder")
    same = all(old.get(k) == base[k] for k in ("version", "seed", "settings"))
    if not same:
        raise ConfigError(
            f"{path}: this folder holds data made with another seed, version or settings "
            f"(seed {old.get('seed')}, version {old.get('version')}); use an empty output folder"
        )
    base["splits"] = old.get("splits", {})
    return base


def generate(
    out: str | Path,
    splits: dict[str, int],
    seed: int,
    settings: SynthSettings | None = None,
    progress: bool = True,
    workers: int = 1,
) -> dict:
    """Generate ``splits`` (name -> number of scenes; names from ``SPLIT_CODES``) into ``out``; returns the
    manifest (also written to ``out/manifest.json``). Splits already in the folder's manifest are kept.

    ``workers`` > 1 makes scenes in that many processes; the output is the same byte for byte."""
    settings = settings or SynthSettings()
    unknown = sorted(set(splits) - set(SPLIT_CODES))
    if unknown:
        raise ConfigError(f"unknown split(s) {unknown}; choose from {sorted(SPLIT_CODES)}")
    if any(n < 1 for n in splits.values()):
        raise ConfigError(f"every split needs at least one scene, got {splits}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    manifest = _load_manifest(out / "manifest.json", _manifest_base(seed, settings))
    bar = tqdm(total=sum(splits.values()), desc="synth", unit="scene", disable=not progress)
    jobs = [(split, index, seed, settings, out / "scans") for split, count in splits.items() for index in range(count)]
    datas = {split: SplitData() for split in splits}
    with _pool(workers) as pool:
        results = pool.imap(_make_scene, jobs) if pool is not None else map(_make_scene_in_process, jobs)
        for (split, *_), result in zip(jobs, results):
            datas[split].add(*result)
            bar.update(1)
    bar.close()
    for split, count in splits.items():
        data = datas[split]
        write_language(out, split, data)
        manifest["splits"][split] = {"split_code": SPLIT_CODES[split], **split_statistics(data),
                                     "scene_ids": [scene_id_of(split, i) for i in range(count)]}  # fmt: skip
        logger.info("%s: %d scenes, %d referrals, %d questions", split, count, len(data.referrals), len(data.questions))
    manifest["splits"] = dict(sorted(manifest["splits"].items()))
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest
