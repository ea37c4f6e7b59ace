"""Benchmark breakdowns of grounding accuracy: which subset each utterance belongs to.

- ScanRefer: "unique" (no other object of the target's class in the scene) / "multiple". The class is ScanRefer's:
  the NYU40 class name of the raw ``object_name`` (tsv ``nyu40class``) when it is one of the 17 ScanNet detection
  classes, else "others"; objects are counted over the ScanRefer annotations given (pass the full
  ``ScanRefer_filtered.json``, train + val, as ScanRefer does). A row's own ``is_unique_scanrefer`` flag
  (``meta["unique"]``) is used when present.
- NR3D / SR3D (ReferIt3D): "easy" (at most 2 objects of the target's class) / "hard", and "view_dep" /
  "view_indep" (a token in ReferIt3D's view-dependent word list); ``meta["hard"]`` / ``meta["view_dependent"]``
  set by :mod:`univlg.data.formats.referit3d`.
- SR3D also by reference type (``relation``: closest, farthest, between, ...) and coarse type (horizontal,
  vertical, support, between, allocentric); any dataset (synthetic included) by ``relation``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from univlg.data.formats.scannet_labels import LabelMap
from univlg.data.records import Referral
from univlg.eval.grounding import THRESHOLDS, accuracy_at, accuracy_by_group

SCANREFER_CLASSES = (
    "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf", "picture", "counter", "desk", "curtain",
    "refrigerator", "shower curtain", "toilet", "sink", "bathtub",
)  # fmt: skip


def scanrefer_class(object_name: str, labels: LabelMap) -> str:
    """ScanRefer's class of a raw object name ("_" read as space): its NYU40 class if one of 17, else "others".

    The NYU40 class is matched by name as ScanRefer does, so a tsv copy spelling it "refridgerator" makes
    refrigerators "others" there too.
    """
    row = labels.rows.get(object_name.replace("_", " "))
    return row.nyu40_class if row is not None and row.nyu40_class in SCANREFER_CLASSES else "others"


def scanrefer_unique_flags(referrals: Sequence[Referral], labels: LabelMap) -> list[bool]:
    """Per referral: True when its target is the only object of its ScanRefer class among the scene's annotated
    objects (each (scene, object id) counted once, over ``referrals``)."""
    classes: dict[tuple[str, int], str] = {}
    for referral in referrals:
        classes.setdefault((referral.scene_id, referral.target_id), scanrefer_class(referral.target_class, labels))
    per_scene = Counter((scene, name) for (scene, _), name in classes.items())
    return [per_scene[(r.scene_id, classes[(r.scene_id, r.target_id)])] == 1 for r in referrals]


def breakdown_labels(referrals: Sequence[Referral], benchmark: str) -> dict[str, list[str | None]]:
    """Named breakdowns -> one group label per referral (None where the data lacks the flag).

    benchmark: "scanrefer", "nr3d", "sr3d" or anything else (then only ``relation``).
    """
    out: dict[str, list[str | None]] = {}

    def flag(key: str, yes: str, no: str) -> list[str | None]:
        return [None if key not in r.meta else (yes if r.meta[key] else no) for r in referrals]

    if benchmark == "scanrefer":
        out["unique"] = flag("unique", "unique", "multiple")
    if benchmark in ("nr3d", "sr3d"):
        out["difficulty"] = flag("hard", "hard", "easy")
        out["view"] = flag("view_dependent", "view_dep", "view_indep")
    if benchmark == "sr3d":
        out["coarse_relation"] = [r.meta.get("coarse_relation") or None for r in referrals]
    out["relation"] = [r.relation or None for r in referrals]
    return {name: labels for name, labels in out.items() if any(labels)}


def grounding_breakdowns(
    ious, referrals: Sequence[Referral], benchmark: str, thresholds: Sequence[float] = THRESHOLDS
) -> dict[str, dict]:
    """Overall and per-subset Acc@k: ``{"overall": {...}, "<breakdown>": {"<group>": {acc@k..., count}}}``.

    ious: (N,) float, one per referral in order (NaN = miss).
    """
    out: dict[str, dict] = {"overall": {**accuracy_at(ious, thresholds), "count": len(referrals)}}
    for name, labels in breakdown_labels(referrals, benchmark).items():
        out[name] = accuracy_by_group(ious, labels, thresholds)
    return out
