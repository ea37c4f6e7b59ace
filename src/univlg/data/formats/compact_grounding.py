"""Compact grounding JSON used by zero-shot 3D grounding work (ZSVG3D, SeeGround): ``[{scan_id, target_id,
caption, ...}]``.

These redistributions of ScanRefer / NR3D val keep only the scene, the target and the sentence; NR3D copies add
``easy`` and ``view_dep`` (ReferIt3D's flags), and ZSVG3D an LLM ``program`` (not ground truth; kept in meta).
Read into Referral with ``meta["hard"] = not easy`` and ``meta["view_dependent"] = view_dep`` when present, so the
NR3D breakdowns of :mod:`univlg.eval.breakdowns` apply.
"""

from __future__ import annotations

from pathlib import Path

from univlg.data.formats.fields import Where, as_bool, as_int, as_str, json_list, read_json, require
from univlg.data.formats.tokens import tokenize
from univlg.data.records import Referral

_KEYS = {"scan_id", "target_id", "caption", "easy", "view_dep"}


def read_compact_grounding_json(path: str | Path, dataset: str) -> list[Referral]:
    """Entries ``{scan_id, target_id, caption[, easy, view_dep, ...]}`` as Referrals of ``dataset``.

    FormatError names the file, the entry index and the field of a bad entry.
    """
    referrals = []
    for i, entry in enumerate(json_list(read_json(path), path)):
        where = Where(path, "item", i)
        caption = as_str(require(entry, "caption", where), where, "caption")
        meta: dict = {"tokens": tokenize(caption)}
        if "easy" in entry:
            meta["hard"] = not as_bool(entry["easy"], where, "easy")
        if "view_dep" in entry:
            meta["view_dependent"] = as_bool(entry["view_dep"], where, "view_dep")
        meta.update({k: v for k, v in entry.items() if k not in _KEYS})
        referrals.append(
            Referral(
                scene_id=as_str(require(entry, "scan_id", where), where, "scan_id").strip(),
                utterance=caption,
                target_id=as_int(require(entry, "target_id", where), where, "target_id", minimum=0),
                dataset=dataset,
                meta=meta,
            )
        )
    return referrals
