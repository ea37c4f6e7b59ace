"""ScanRefer JSON (``ScanRefer_filtered_{train,val}.json``; ScanEnts3D and Locate3D add ``entities``).

The file is a list of entries ``{scene_id, object_id, object_name, ann_id, description, token}``; ScanEnts3D's
``ScanRefer_filtered_*_ScanEnts3D.json`` and Locate3D's ``locate3d_data/dataset/*.json`` add ``entities`` (see
:mod:`univlg.data.formats.scanents3d`), Locate3D also ``primary_key`` and ``scene_dataset``.

Read into Referral: scene_id, target_id = object_id, target_class = object_name, utterance = description (the raw
text; ``" ".join(token)`` is what UniVLG trains on, kept as ``meta["tokens"]``), spans and anchor_ids from the
entities, ``meta["ann_id"]`` and any other key verbatim in meta. ``meta["view_dependent"]`` uses ReferIt3D's
word list; the ScanRefer unique/multiple flag needs the scene's objects and is computed by the evaluator.
"""

from __future__ import annotations

from pathlib import Path

from univlg.data.formats.fields import Where, as_int, as_str, as_str_list, json_list, read_json, require, write_json
from univlg.data.formats.referit3d import is_view_dependent
from univlg.data.formats.scanents3d import build_entities, entity_names, entity_spans, parse_entities
from univlg.data.formats.tokens import tokenize
from univlg.data.records import Referral

_KEYS = {"scene_id", "object_id", "object_name", "ann_id", "description", "token", "entities"}
_DERIVED_META = {"ann_id", "tokens", "view_dependent", "entity_names"}


def _referral_from_entry(entry: dict, where: Where, dataset: str) -> Referral:
    scene_id = as_str(require(entry, "scene_id", where), where, "scene_id").strip()
    target_id = as_int(require(entry, "object_id", where), where, "object_id", minimum=0)
    description = as_str(require(entry, "description", where), where, "description")
    tokens = as_str_list(entry["token"], where, "token") if "token" in entry else tokenize(description)
    meta: dict = {"tokens": tokens, "view_dependent": is_view_dependent(tokens)}
    if "ann_id" in entry:
        meta["ann_id"] = as_int(entry["ann_id"], where, "ann_id", minimum=0)
    spans: dict = {}
    anchors: list[int] = []
    if entry.get("entities"):
        entities = parse_entities(entry["entities"], where, len(tokens))
        spans = entity_spans(description, tokens, entities)
        meta["entity_names"] = entity_names(entities)
        anchors = sorted({i for e in entities for i, _ in e.objects if i != target_id})
    meta.update({k: v for k, v in entry.items() if k not in _KEYS})
    object_name = entry.get("object_name", "")
    return Referral(
        scene_id=scene_id,
        utterance=description,
        target_id=target_id,
        anchor_ids=tuple(anchors),
        spans=spans,
        target_class=as_str(object_name, where, "object_name", allow_empty=True).replace("_", " "),
        dataset=dataset,
        meta=meta,
    )


def read_scanrefer_json(path: str | Path, dataset: str = "scanrefer") -> list[Referral]:
    """Entries of a ScanRefer / ScanEnts3D-ScanRefer / Locate3D JSON list as Referrals.

    Raises FormatError naming the file, the entry index and the field of a bad entry.
    """
    entries = json_list(read_json(path), path)
    return [_referral_from_entry(entry, Where(path, "item", i), dataset) for i, entry in enumerate(entries)]


def write_scanrefer_json(path: str | Path, referrals: list[Referral]) -> None:
    """Write Referrals as ScanRefer JSON entries (``entities`` added, ScanEnts3D-style, when a referral has spans).

    ``ann_id`` comes from ``meta["ann_id"]`` or numbers the referrals of each (scene, object) pair from 0;
    ``token`` from ``meta["tokens"]`` or :func:`~univlg.data.formats.tokens.tokenize`. Spans should start and end
    on word boundaries to round-trip. Other meta entries (JSON-serialisable) are written as extra keys.
    """
    counters: dict[tuple[str, int], int] = {}
    entries = []
    for referral in referrals:
        key = (referral.scene_id, referral.target_id)
        ann_id = referral.meta.get("ann_id", counters.get(key, 0))
        counters[key] = max(counters.get(key, 0), int(ann_id) + 1)
        tokens = list(referral.meta.get("tokens") or tokenize(referral.utterance))
        entry = {
            "scene_id": referral.scene_id,
            "object_id": str(referral.target_id),
            "object_name": referral.target_class.replace(" ", "_"),
            "ann_id": str(ann_id),
            "description": referral.utterance,
            "token": tokens,
        }
        if referral.spans:
            names = dict(referral.meta.get("entity_names") or {})
            names.setdefault(referral.target_id, referral.target_class)
            entry["entities"] = build_entities(referral.utterance, tokens, referral.spans, names)
        entry.update({k: v for k, v in referral.meta.items() if k not in _DERIVED_META and k not in entry})
        entries.append(entry)
    write_json(path, entries)
