"""ScanQA JSON (``ScanQA_v1.0_{train,val,test_w_obj,test_wo_obj}.json``), read into and written from Question.

Each entry: ``{scene_id, question_id, question, answers: [str], object_ids: [int], object_names: [str]}``.
The test files have no ``answers`` (and ``test_wo_obj`` no objects): those become empty tuples. Question ids
are strings like ``"val-scene0011-0"``. ``object_names`` (one class name per object id) is kept in
``Question.meta["object_names"]`` and written back from there. An optional ``question_type`` key (not in the
official files; the synthetic world writes it) fills ``Question.question_type``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from univlg.data.formats.fields import (
    Where,
    as_int_list,
    as_str,
    as_str_list,
    json_list,
    read_json,
    require,
    write_json,
)
from univlg.data.records import Question


def _question_from_entry(entry: dict, where: Where, dataset: str) -> Question:
    scene_id = as_str(require(entry, "scene_id", where), where, "scene_id").strip()
    question = as_str(require(entry, "question", where), where, "question")
    answers = as_str_list(entry["answers"], where, "answers") if "answers" in entry else []
    object_ids = as_int_list(entry["object_ids"], where, "object_ids") if "object_ids" in entry else []
    question_id = entry.get("question_id", "")
    if not isinstance(question_id, (str, int)) or isinstance(question_id, bool):
        raise where.error("question_id", f"expected a string or integer, got {question_id!r}")
    meta = {}
    if "object_names" in entry:
        names = as_str_list(entry["object_names"], where, "object_names")
        if len(names) != len(object_ids):
            raise where.error("object_names", f"{len(names)} names for {len(object_ids)} object_ids")
        meta["object_names"] = names
    question_type = as_str(entry["question_type"], where, "question_type") if "question_type" in entry else ""
    return Question(
        scene_id=scene_id,
        question=question,
        answers=tuple(answers),
        object_ids=tuple(object_ids),
        question_id=str(question_id),
        question_type=question_type,
        dataset=dataset,
        meta=meta,
    )


def read_scanqa_json(path: str | Path, dataset: str = "scanqa") -> list[Question]:
    """Entries of a ScanQA JSON list as Questions; FormatError names the file, entry index and field."""
    entries = json_list(read_json(path), path)
    return [_question_from_entry(entry, Where(path, "item", i), dataset) for i, entry in enumerate(entries)]


def write_scanqa_json(
    path: str | Path, questions: list[Question], object_names: Mapping[tuple[str, int], str] | None = None
) -> None:
    """Write Questions as a ScanQA JSON list.

    ``object_names`` maps ``(scene_id, object_id)`` to the object's class name for the ``object_names`` field;
    where it has no entry, the question's own ``meta["object_names"]`` is used, else "object". A question without
    ``question_id`` gets ``"<scene_id>-<index>"``; a ``question_type`` is written only when set.
    """
    names = object_names or {}
    entries = []
    for index, question in enumerate(questions):
        own = question.meta.get("object_names") or []
        own = own if len(own) == len(question.object_ids) else ["object"] * len(question.object_ids)
        pairs = zip(question.object_ids, own, strict=True)
        entry = {
            "answers": list(question.answers),
            "object_ids": list(question.object_ids),
            "object_names": [names.get((question.scene_id, i), n) for i, n in pairs],
            "question": question.question,
            "question_id": question.question_id or f"{question.scene_id}-{index}",
            "scene_id": question.scene_id,
        }
        if question.question_type:
            entry["question_type"] = question.question_type
        entries.append(entry)
    write_json(path, entries)
