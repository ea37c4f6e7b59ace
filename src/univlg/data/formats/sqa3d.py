"""SQA3D situated QA: the official question/annotation file pair, and the flat preprocessed list UniVLG reads.

Official layout (VQA-style, two files joined by ``question_id``)::

    v1_balanced_questions_<split>_scannetv2.json    {"questions": [{scene_id, situation, alternative_situation,
                                                                    question, question_id}], ...}
    v1_balanced_sqa_annotations_<split>_scannetv2.json  {"annotations": [{scene_id, question_id, question_type,
                                                          answer_type, answers: [{answer, answer_confidence,
                                                          answer_id}], position, rotation}], ...}

Flat layout (UniVLG's ``SQA_{train,val,test}.json``): a list of ``{scene_id, situation, question, answers: [str],
question_id}``. Both become Question records with ``dataset="sqa3d"`` and ``question_type`` from
:func:`sqa3d_question_type` (the SQA3D paper's breakdown by the question's first word).

Fields a Question has no slot for are kept in ``Question.meta`` and written back from there:
``alternative_situations`` (list of str, the question file's ``alternative_situation``), ``position``
(``{"x", "y", "z"}``) and ``rotation`` (quaternion ``{"_x", "_y", "_z", "_w"}``) of the annotation, the
annotation's ``question_type`` / ``answer_type`` strings (as ``sqa_question_type`` / ``answer_type``).
"""

from __future__ import annotations

import re
from pathlib import Path

from univlg.data.formats.fields import (
    Where,
    as_float,
    as_int,
    as_str,
    as_str_list,
    json_list,
    read_json,
    require,
    write_json,
)
from univlg.data.records import Question

QUESTION_TYPES = ("what", "is", "how", "can", "which", "others")
POSITION_KEYS = ("x", "y", "z")
ROTATION_KEYS = ("_x", "_y", "_z", "_w")
_FIRST_WORD_TYPE = {"what": "what", "is": "is", "are": "is", "how": "how", "can": "can", "which": "which"}


def sqa3d_question_type(question: str) -> str:
    """The SQA3D breakdown type of a question from its first word: what / is (is, are) / how / can / which / others."""
    first = re.match(r"\W*(\w+)", question)
    return _FIRST_WORD_TYPE.get(first.group(1).lower(), "others") if first else "others"


def _question_id(value, where: Where) -> str:
    if isinstance(value, str) and value.strip():
        return value.strip()
    return str(as_int(value, where, "question_id"))


def read_sqa3d(questions_path: str | Path, annotations_path: str | Path | None = None) -> list[Question]:
    """The official SQA3D question file joined with its annotation file by ``question_id``.

    Without ``annotations_path`` (a hidden test set) answers are empty. A question without an annotation, or an
    annotation naming another scene, is a FormatError.
    """
    entries = json_list(read_json(questions_path), questions_path, key="questions")
    answers: dict[str, tuple[str, ...]] = {}
    scenes: dict[str, str] = {}
    extras: dict[str, dict] = {}
    if annotations_path is not None:
        for i, entry in enumerate(json_list(read_json(annotations_path), annotations_path, key="annotations")):
            where = Where(annotations_path, "item", i)
            key = _question_id(require(entry, "question_id", where), where)
            scenes[key] = as_str(require(entry, "scene_id", where), where, "scene_id").strip()
            extras[key] = _annotation_meta(entry, where)
            items = require(entry, "answers", where)
            if not isinstance(items, list) or not items:
                raise where.error("answers", f"expected a non-empty list of {{'answer': ...}}, got {items!r:.80}")
            answers[key] = tuple(
                as_str(require(a, "answer", where), where, f"answers[{k}].answer") for k, a in enumerate(items)
            )
    questions = []
    for i, entry in enumerate(entries):
        where = Where(questions_path, "item", i)
        scene_id = as_str(require(entry, "scene_id", where), where, "scene_id").strip()
        question = as_str(require(entry, "question", where), where, "question")
        key = _question_id(require(entry, "question_id", where), where)
        if annotations_path is not None:
            if key not in answers:
                raise where.error("question_id", f"{key} has no annotation in {annotations_path}")
            if scenes[key] != scene_id:
                raise where.error("scene_id", f"{scene_id} but its annotation names {scenes[key]}")
        meta = dict(extras.get(key, {}))
        if "alternative_situation" in entry:
            meta["alternative_situations"] = as_str_list(entry["alternative_situation"], where, "alternative_situation")
        questions.append(
            Question(
                scene_id=scene_id,
                question=question,
                answers=answers.get(key, ()),
                situation=as_str(require(entry, "situation", where), where, "situation"),
                question_id=key,
                question_type=sqa3d_question_type(question),
                dataset="sqa3d",
                meta=meta,
            )
        )
    return questions


def _number_dict(value, keys: tuple[str, ...], where: Where, field: str) -> dict[str, float]:
    """A dict with numeric ``keys`` (an annotation's position or rotation)."""
    if not isinstance(value, dict) or any(k not in value for k in keys):
        raise where.error(field, f"expected an object with keys {list(keys)}, got {value!r:.80}")
    return {k: as_float(value[k], where, f"{field}.{k}") for k in keys}


def _annotation_meta(entry: dict, where: Where) -> dict:
    """The annotation fields a Question has no slot for: position, rotation, question/answer type strings."""
    meta: dict = {}
    if "position" in entry:
        meta["position"] = _number_dict(entry["position"], POSITION_KEYS, where, "position")
    if "rotation" in entry:
        meta["rotation"] = _number_dict(entry["rotation"], ROTATION_KEYS, where, "rotation")
    for field, key in (("question_type", "sqa_question_type"), ("answer_type", "answer_type")):
        if field in entry:
            meta[key] = as_str(entry[field], where, field, allow_empty=True)
    return meta


def read_sqa3d_flat(path: str | Path) -> list[Question]:
    """A flat list ``[{scene_id, situation, question, answers: [str], question_id}]`` (UniVLG's ``SQA_*.json``)."""
    questions = []
    for i, entry in enumerate(json_list(read_json(path), path)):
        where = Where(path, "item", i)
        question = as_str(require(entry, "question", where), where, "question")
        questions.append(
            Question(
                scene_id=as_str(require(entry, "scene_id", where), where, "scene_id").strip(),
                question=question,
                answers=tuple(as_str_list(require(entry, "answers", where), where, "answers")),
                situation=as_str(require(entry, "situation", where), where, "situation"),
                question_id=_question_id(entry.get("question_id", i), where),
                question_type=sqa3d_question_type(question),
                dataset="sqa3d",
            )
        )
    return questions


def write_sqa3d(questions_path: str | Path, annotations_path: str | Path, questions: list[Question]) -> None:
    """Write Questions as the official SQA3D pair of files (question ids numbered from 0 where missing).

    Annotations carry ``answers`` (confidence "yes", ids from 1). ``alternative_situation``, ``position``,
    ``rotation``, ``question_type`` and ``answer_type`` come from the question's ``meta`` (see the module
    docstring); without them: no alternatives, the origin, the identity rotation, "N/A" and "other" (the values of
    the released test files).
    """
    question_entries, annotation_entries = [], []
    for index, question in enumerate(questions):
        question_id = question.question_id or str(index)
        question_id = int(question_id) if question_id.isdigit() else question_id
        question_entries.append(
            {
                "scene_id": question.scene_id,
                "situation": question.situation,
                "alternative_situation": list(question.meta.get("alternative_situations", [])),
                "question": question.question,
                "question_id": question_id,
            }
        )
        annotation_entries.append(
            {
                "scene_id": question.scene_id,
                "question_type": question.meta.get("sqa_question_type", "N/A"),
                "answer_type": question.meta.get("answer_type", "other"),
                "question_id": question_id,
                "answers": [
                    {"answer": a, "answer_confidence": "yes", "answer_id": k + 1}
                    for k, a in enumerate(question.answers)
                ],
                "rotation": dict(question.meta.get("rotation", {"_x": 0, "_y": 0, "_z": 0, "_w": 1})),
                "position": dict(question.meta.get("position", {"x": 0, "y": 0, "z": 0})),
            }
        )
    header = {"info": {"description": "SQA3D-format data written by univlg"}, "data_type": "scannet"}
    write_json(questions_path, {**header, "questions": question_entries})
    write_json(annotations_path, {**header, "annotations": annotation_entries})
