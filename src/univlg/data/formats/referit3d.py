"""ReferIt3D SR3D / NR3D CSV files (and ScanEnts3D's NR3D with ``entities``), read into and written from Referral.

Columns read (official names; only ``scan_id``, ``target_id`` and ``utterance`` are required):

- ``scan_id``, ``target_id``, ``utterance`` (or ScanRefer-as-CSV's ``description``) -> scene_id, target_id, utterance
- ``instance_type`` -> target_class; ``reference_type`` (SR3D: closest, farthest, between, above, ...) -> relation
- ``anchor_ids`` ``"[3]"`` -> anchor_ids (else: the non-target objects of ``entities``); ``distractor_ids`` ->
  distractor_ids (else: decoded from ``stimulus_id`` ``<scene>-<class>-<n>-<target>-<distractor>-...``)
- ``tokens`` ``"['the', ...]"`` (else: :func:`~univlg.data.formats.tokens.tokenize` of the utterance)
- ``entities`` (ScanEnts3D) -> spans; ``anchors_types``, ``coarse_reference_type``, ``mentions_target_class``,
  ``correct_guess``, ``is_unique_scanrefer`` -> meta; every other column is kept in meta as its raw text.

Derived meta, following ReferIt3D's analysis code: ``hard`` = more than 2 objects of the target's class
(``n`` of the stimulus id, or 1 + number of distractors) and ``view_dependent`` = a token in
:data:`VIEW_DEPENDENT_WORDS`. No row is filtered here (``mentions_target_class`` is left to the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from univlg.data.formats.fields import (
    Where,
    as_bool,
    as_int,
    as_int_list,
    as_str,
    as_str_list,
    iter_csv_rows,
    require,
    write_csv,
)
from univlg.data.formats.scanents3d import build_entities, entity_names, entity_spans, parse_entities
from univlg.data.formats.tokens import tokenize
from univlg.data.records import Referral

VIEW_DEPENDENT_WORDS = frozenset(
    {"front", "behind", "back", "right", "left", "facing", "leftmost", "rightmost", "looking", "across"}
)
SR3D_COLUMNS = [
    "scan_id",
    "target_id",
    "distractor_ids",
    "utterance",
    "stimulus_id",
    "coarse_reference_type",
    "reference_type",
    "instance_type",
    "anchors_types",
    "anchor_ids",
    "tokens",
    "dataset",
    "mentions_target_class",
    "correct_guess",
]
# Columns the reader turns into Referral fields or typed meta; any other column is kept verbatim in meta.
_PARSED = set(SR3D_COLUMNS) | {"entities", "is_unique_scanrefer", "description"}
_DERIVED_META = {"tokens", "stimulus_id", "hard", "view_dependent", "anchor_types", "coarse_relation",
                 "mentions_target_class", "correct_guess", "unique", "entity_names"}  # fmt: skip


@dataclass(frozen=True)
class Stimulus:
    """A decoded ReferIt3D ``stimulus_id``: the scene, the target class, n objects of that class, their ids."""

    scene_id: str
    instance_type: str
    n_objects: int
    target_id: int
    distractor_ids: tuple[int, ...]


def decode_stimulus_id(text: str, where: Where, field: str = "stimulus_id") -> Stimulus:
    """Parse ``<scene>-<class with _ for spaces>-<n>-<target>-<d1>-...-<d(n-1)>`` (n counts the target)."""
    parts = text.strip().split("-")
    numeric = [k for k in range(2, len(parts)) if parts[k].isdigit()]
    if numeric:  # the class name ends before the first all-digit part ("t-shirt" keeps its hyphen)
        tail = parts[numeric[0] :]
        if all(p.isdigit() for p in tail) and int(tail[0]) >= 1 and len(tail) == int(tail[0]) + 1:
            ids = [int(p) for p in tail]
            label = "-".join(parts[1 : numeric[0]]).replace("_", " ")
            return Stimulus(parts[0], label, ids[0], ids[1], tuple(ids[2:]))
    raise where.error(field, f"not a '<scene>-<class>-<n>-<target>-<distractors...>' stimulus id: {text!r}")


def encode_stimulus_id(scene_id: str, instance_type: str, target_id: int, distractor_ids: tuple[int, ...]) -> str:
    """The ReferIt3D stimulus id of a target and its same-class distractors (inverse of :func:`decode_stimulus_id`)."""
    ids = [len(distractor_ids) + 1, target_id, *distractor_ids]
    return "-".join([scene_id, instance_type.replace(" ", "_"), *map(str, ids)])


def is_view_dependent(tokens: list[str]) -> bool:
    """ReferIt3D's view-dependence test: any token (lower-cased) in :data:`VIEW_DEPENDENT_WORDS`."""
    return any(token.lower() in VIEW_DEPENDENT_WORDS for token in tokens)


def _optional(row: dict[str, str], column: str) -> str | None:
    value = row.get(column)
    return value if value is not None and value.strip() else None


def _referral_from_row(row: dict[str, str], where: Where, dataset: str | None) -> Referral:
    scene_id = as_str(require(row, "scan_id", where), where, "scan_id").strip()
    target_id = as_int(require(row, "target_id", where), where, "target_id", minimum=0)
    text_column = "utterance" if "utterance" in row else "description"
    utterance = as_str(require(row, text_column, where), where, text_column)
    raw_tokens = _optional(row, "tokens")
    tokens = as_str_list(raw_tokens, where, "tokens", from_text=True) if raw_tokens else tokenize(utterance)
    meta: dict = {"tokens": tokens, "view_dependent": is_view_dependent(tokens)}

    distractors = None
    if _optional(row, "distractor_ids"):
        distractors = as_int_list(row["distractor_ids"], where, "distractor_ids", from_text=True)
    if _optional(row, "stimulus_id"):
        stimulus = decode_stimulus_id(row["stimulus_id"], where)
        if stimulus.scene_id != scene_id or stimulus.target_id != target_id:
            raise where.error(
                "stimulus_id", f"{row['stimulus_id']!r} names scene/target {stimulus.scene_id}/{stimulus.target_id}"
            )
        meta["stimulus_id"] = row["stimulus_id"].strip()
        distractors = list(stimulus.distractor_ids) if distractors is None else distractors
        meta["hard"] = stimulus.n_objects > 2
    elif distractors is not None:
        meta["hard"] = len(distractors) + 1 > 2

    spans: dict = {}
    entity_anchor_ids: list[int] = []
    if _optional(row, "entities"):
        entities = parse_entities(row["entities"], where, len(tokens), from_text=True)
        spans = entity_spans(utterance, tokens, entities)
        meta["entity_names"] = entity_names(entities)
        entity_anchor_ids = sorted({i for e in entities for i, _ in e.objects if i != target_id})
    anchors = (
        as_int_list(row["anchor_ids"], where, "anchor_ids", from_text=True)
        if _optional(row, "anchor_ids")
        else entity_anchor_ids
    )
    if _optional(row, "anchors_types"):
        meta["anchor_types"] = as_str_list(row["anchors_types"], where, "anchors_types", from_text=True)
    for column, key in (("mentions_target_class", "mentions_target_class"), ("correct_guess", "correct_guess"),
                        ("is_unique_scanrefer", "unique")):  # fmt: skip
        if _optional(row, column):
            meta[key] = as_bool(row[column], where, column)
    if _optional(row, "coarse_reference_type"):
        meta["coarse_relation"] = row["coarse_reference_type"].strip()
    meta.update({k: v for k, v in row.items() if k not in _PARSED and k not in meta and v.strip()})
    return Referral(
        scene_id=scene_id,
        utterance=utterance,
        target_id=target_id,
        anchor_ids=tuple(anchors),
        distractor_ids=tuple(distractors or ()),
        spans=spans,
        target_class=(row.get("instance_type") or "").strip(),
        relation=(row.get("reference_type") or "").strip(),
        dataset=dataset or (row.get("dataset") or "").strip(),
        meta=meta,
    )


def read_referit3d_csv(path: str | Path, dataset: str | None = None) -> list[Referral]:
    """All rows of a ReferIt3D-style CSV (SR3D, NR3D, ScanEnts3D NR3D, ScanRefer-as-CSV) as Referrals.

    ``dataset`` overrides the ``dataset`` column. Raises FormatError naming the file, line and field of a bad row.
    """
    referrals = []
    for where, row in iter_csv_rows(path, required=("scan_id", "target_id")):
        if "utterance" not in row and "description" not in row:
            raise where.error("utterance", "missing column (neither 'utterance' nor 'description')")
        referrals.append(_referral_from_row(row, where, dataset))
    return referrals


def read_sr3d_csv(path: str | Path) -> list[Referral]:
    """SR3D rows (``sr3d_train.csv`` / ``sr3d_test.csv``) as Referrals with ``dataset="sr3d"``."""
    return read_referit3d_csv(path, dataset="sr3d")


def read_nr3d_csv(path: str | Path) -> list[Referral]:
    """NR3D rows (``nr3d.csv``, ScanEnts3D ``ScanEnts3D_Nr3D*.csv``) as Referrals with ``dataset="nr3d"``."""
    return read_referit3d_csv(path, dataset="nr3d")


def _bool_text(value: bool) -> str:
    return "True" if value else "False"


def _row_of(referral: Referral, dataset: str | None) -> dict[str, str]:
    meta = referral.meta
    tokens = list(meta.get("tokens") or tokenize(referral.utterance))
    anchor_types = list(meta.get("anchor_types") or [""] * len(referral.anchor_ids))
    stimulus = meta.get("stimulus_id") or encode_stimulus_id(
        referral.scene_id, referral.target_class or "object", referral.target_id, tuple(referral.distractor_ids)
    )
    row = {
        "scan_id": referral.scene_id,
        "target_id": str(referral.target_id),
        "distractor_ids": str(list(referral.distractor_ids)),
        "utterance": referral.utterance,
        "stimulus_id": stimulus,
        "coarse_reference_type": meta.get("coarse_relation", ""),
        "reference_type": referral.relation,
        "instance_type": referral.target_class,
        "anchors_types": str(anchor_types),
        "anchor_ids": str(list(referral.anchor_ids)),
        "tokens": str(tokens),
        "dataset": dataset or referral.dataset,
        "mentions_target_class": _bool_text(meta.get("mentions_target_class", True)),
        "correct_guess": _bool_text(meta.get("correct_guess", True)),
    }
    if referral.spans:
        names = dict(meta.get("entity_names") or {})
        names.setdefault(referral.target_id, referral.target_class)
        for anchor, label in zip(referral.anchor_ids, anchor_types, strict=False):
            names.setdefault(anchor, label)
        row["entities"] = str(build_entities(referral.utterance, tokens, referral.spans, names))
    if "unique" in meta:
        row["is_unique_scanrefer"] = _bool_text(meta["unique"])
    row.update({k: str(v) for k, v in meta.items() if k not in _DERIVED_META and k not in row})
    return row


def write_referit3d_csv(path: str | Path, referrals: list[Referral], dataset: str | None = None) -> None:
    """Write Referrals as a ReferIt3D CSV with the official SR3D columns (+ ``entities`` when any has spans).

    ``tokens`` come from ``meta["tokens"]`` or :func:`~univlg.data.formats.tokens.tokenize`; ``stimulus_id`` from
    ``meta["stimulus_id"]`` or is encoded from target and distractors; ``anchors_types`` from
    ``meta["anchor_types"]``; ``mentions_target_class`` / ``correct_guess`` default to True. Spans become
    ScanEnts3D entities over the tokens, so spans should start and end on word boundaries to round-trip.
    Other meta entries are written as extra columns (their ``str``).
    """
    rows = [_row_of(referral, dataset) for referral in referrals]
    columns = list(SR3D_COLUMNS)
    for row in rows:
        columns.extend(column for column in row if column not in columns)
    write_csv(path, columns, rows)


def write_sr3d_csv(path: str | Path, referrals: list[Referral]) -> None:
    """Write Referrals as an SR3D CSV (``dataset`` column "sr3d"); see :func:`write_referit3d_csv`."""
    write_referit3d_csv(path, referrals, dataset="sr3d")


def write_nr3d_csv(path: str | Path, referrals: list[Referral]) -> None:
    """Write Referrals as an NR3D / ScanEnts3D-NR3D CSV (``dataset`` column "nr3d"); see :func:`write_referit3d_csv`."""
    write_referit3d_csv(path, referrals, dataset="nr3d")
