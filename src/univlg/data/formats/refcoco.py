"""RefCOCO / RefCOCO+ / RefCOCOg: the REFER ``refs(unc).p`` / ``refs(umd).p`` pickle plus COCO instances.

A refs file is a pickled list of dicts ``{ref_id, ann_id, image_id, split, category_id, sentences: [{sent,
sent_id, tokens, raw}], sent_ids, file_name}``; the target's box and segmentation live in the COCO instances
file under ``ann_id``. It is loaded with :func:`~univlg.data.formats.safe_pickle.load_plain_pickle`, so a crafted
file cannot run code. Each sentence becomes one ImageReferral (box ``(x, y, x + w, y + h)`` in pixels of the
original image, the annotation's segmentation, the category name, ``split``, ``ref_id``, ``ann_id``); the
sentence's ``sent_id``, ``tokens`` and ``raw`` text are kept in ``ImageReferral.meta`` and written back from there.
"""

from __future__ import annotations

import pickle
from pathlib import Path

from univlg.data.formats.coco import (
    CocoAnnotation,
    CocoImage,
    CocoInstances,
    read_coco_instances,
    write_coco_instances,
)
from univlg.data.formats.fields import Where, as_int, as_str, as_str_list, require
from univlg.data.formats.safe_pickle import load_plain_pickle
from univlg.data.formats.tokens import tokenize
from univlg.data.records import ImageReferral
from univlg.errors import FormatError


def read_refcoco_refs(path: str | Path) -> list[dict]:
    """The raw ref dicts of a REFER pickle (validated to be a list of dicts), loaded without running code."""
    refs = load_plain_pickle(path)
    if not isinstance(refs, list) or not all(isinstance(ref, dict) for ref in refs):
        raise FormatError(f"{path}: expected a pickled list of ref dicts, got {type(refs).__name__}")
    return refs


def referrals_from_refs(
    refs: list[dict], instances: CocoInstances, path: str | Path, split: str | None = None, dataset: str = "refcoco"
) -> list[ImageReferral]:
    """One ImageReferral per sentence of each ref (only refs of ``split`` when given), joined with ``instances``."""
    referrals = []
    for i, ref in enumerate(refs):
        where = Where(path, "ref", i)
        ref_split = as_str(require(ref, "split", where), where, "split")
        if split is not None and ref_split != split:
            continue
        ann_id = as_int(require(ref, "ann_id", where), where, "ann_id")
        annotation = instances.annotations.get(ann_id)
        if annotation is None:
            raise where.error("ann_id", f"{ann_id} is not in the COCO instances file")
        image_id = as_int(require(ref, "image_id", where), where, "image_id")
        if image_id != annotation.image_id:
            raise where.error("image_id", f"{image_id} but annotation {ann_id} belongs to image {annotation.image_id}")
        image = instances.images[image_id]
        sentences = require(ref, "sentences", where)
        if not isinstance(sentences, list) or not sentences:
            raise where.error("sentences", "expected a non-empty list of {'sent': ...}")
        for k, sentence in enumerate(sentences):
            text = as_str(require(sentence, "sent", where), where, f"sentences[{k}].sent")
            referrals.append(
                ImageReferral(
                    image_id=image_id,
                    file_name=image.file_name,
                    width=image.width,
                    height=image.height,
                    utterance=text,
                    box_xyxy=annotation.bbox_xyxy,
                    segmentation=annotation.segmentation,
                    category=instances.categories[annotation.category_id],
                    ann_id=ann_id,
                    ref_id=as_int(ref.get("ref_id", i), where, "ref_id"),
                    split=ref_split,
                    dataset=dataset,
                    meta=_sentence_meta(sentence, where, k),
                )
            )
    return referrals


def _sentence_meta(sentence: dict, where: Where, k: int) -> dict:
    """``sent_id``, ``tokens`` and ``raw`` of one sentence dict, those present."""
    meta: dict = {}
    if "sent_id" in sentence:
        meta["sent_id"] = as_int(sentence["sent_id"], where, f"sentences[{k}].sent_id", minimum=0)
    if "tokens" in sentence:
        meta["tokens"] = as_str_list(sentence["tokens"], where, f"sentences[{k}].tokens")
    if "raw" in sentence:
        meta["raw"] = as_str(sentence["raw"], where, f"sentences[{k}].raw", allow_empty=True)
    return meta


def read_refcoco(
    refs_path: str | Path, instances_path: str | Path, split: str | None = None, dataset: str = "refcoco"
) -> list[ImageReferral]:
    """RefCOCO/+/g sentences of ``split`` ("train", "val", "testA", "testB", "test"; all when None).

    FormatError names the file, the ref index and the field of a bad ref (e.g. an ``ann_id`` missing from the
    instances file).
    """
    instances = read_coco_instances(instances_path)
    return referrals_from_refs(read_refcoco_refs(refs_path), instances, refs_path, split, dataset)


def _xywh(box_xyxy: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box_xyxy
    return (x0, y0, x1 - x0, y1 - y0)


def _with_ids(referrals: list[ImageReferral]) -> list[tuple[ImageReferral, int, int]]:
    """Each referral with its ann_id and ref_id, numbering missing ones per (image, box) after the largest used."""
    next_ann = max([r.ann_id for r in referrals] + [0]) + 1
    next_ref = max([r.ref_id for r in referrals] + [0]) + 1
    ann_of: dict[tuple, int] = {}
    ref_of: dict[int, int] = {}
    out = []
    for r in referrals:
        ann = r.ann_id
        if ann < 0:
            key = (r.image_id, tuple(r.box_xyxy), r.category)
            if key not in ann_of:
                ann_of[key], next_ann = next_ann, next_ann + 1
            ann = ann_of[key]
        ref = r.ref_id
        if ref < 0:
            if ann not in ref_of:
                ref_of[ann], next_ref = next_ref, next_ref + 1
            ref = ref_of[ann]
        out.append((r, ann, ref))
    return out


def write_refcoco(refs_path: str | Path, instances_path: str | Path, referrals: list[ImageReferral]) -> None:
    """Write ImageReferrals as a REFER refs pickle plus the COCO instances file it points into.

    Sentences sharing a ``ref_id`` form one ref; a missing ``ann_id`` / ``ref_id`` (-1) is numbered per distinct
    (image, box, category). Category ids number the sorted category names from 1; an empty ``split`` is written
    "train". A sentence's ``sent_id``, ``tokens`` and ``raw`` come from ``meta`` when there (else: sentence ids
    number the sentences after the largest one given, tokens by :func:`~univlg.data.formats.tokens.tokenize`, raw
    = the utterance). The pickle holds plain data only (protocol 2, like the released files).
    """
    numbered = _with_ids(referrals)
    next_sent = max([int(r.meta.get("sent_id", -1)) for r in referrals] + [-1]) + 1
    category_ids = {name: k + 1 for k, name in enumerate(sorted({r.category or "object" for r in referrals}))}
    images: dict[int, CocoImage] = {}
    annotations: dict[int, CocoAnnotation] = {}
    refs: dict[int, dict] = {}
    for r, ann_id, ref_id in numbered:
        sent_id = r.meta.get("sent_id")
        if sent_id is None:
            sent_id, next_sent = next_sent, next_sent + 1
        images.setdefault(r.image_id, CocoImage(r.image_id, r.file_name, r.width, r.height))
        x, y, w, h = _xywh(r.box_xyxy)
        annotations.setdefault(
            ann_id,
            CocoAnnotation(ann_id, r.image_id, category_ids[r.category or "object"], (x, y, w, h), r.segmentation,
                           area=w * h),
        )  # fmt: skip
        ref = refs.setdefault(
            ref_id,
            {
                "ref_id": ref_id,
                "ann_id": ann_id,
                "image_id": r.image_id,
                "split": r.split or "train",
                "category_id": category_ids[r.category or "object"],
                "file_name": r.file_name,
                "sentences": [],
                "sent_ids": [],
            },
        )
        tokens = list(r.meta.get("tokens") or tokenize(r.utterance))
        ref["sentences"].append({"sent": r.utterance, "sent_id": sent_id, "tokens": tokens,
                                 "raw": r.meta.get("raw", r.utterance)})  # fmt: skip
        ref["sent_ids"].append(sent_id)
    write_coco_instances(instances_path, list(images.values()), list(annotations.values()),
                         {v: k for k, v in category_ids.items()})  # fmt: skip
    refs_path = Path(refs_path)
    refs_path.parent.mkdir(parents=True, exist_ok=True)
    with refs_path.open("wb") as handle:
        pickle.dump(list(refs.values()), handle, protocol=2)
