"""Question-answering metrics (ScanQA, SQA3D, synthetic): exact match, refined exact match, per-type EM, text metrics.

Two exact-match numbers, kept apart on purpose (reference 5.3 and 12):

- ``EM`` (UniVLG's official ``vqa_evaluator.py``, what the UniVLG paper reports): the raw predicted string is an
  element of the answer list. No normalisation at all: "Brown", "brown." and " brown" all fail against "brown".
- ``EM-R`` ("refined EM" of LEO and later 3D-LLM papers): prediction and answers are normalised by
  :func:`normalize_answer` (LEO's ``clean_answer`` rules: lower case, drop characters outside letters, digits and
  ``,'-:``, fix a few typos, numbers 0-20 to words, "none" -> "zero", drop articles before a word, ...) and the
  prediction matches when equal to an answer or when one contains the other after removing all whitespace
  (an empty prediction never matches).

SQA3D additionally reports EM per question type (the question's first word: what / is / how / can / which /
others, :func:`univlg.data.formats.sqa3d.sqa3d_question_type`). ScanQA papers report BLEU-1, SQA3D papers BLEU-4
(:mod:`univlg.eval.captions`: means of per-item pycocoevalcap scores on the raw strings).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from univlg.data.records import Question
from univlg.eval.captions import caption_metrics

_TYPO_FIXES = (
    (r"\bletf\b", "left"), (r"\blet\b", "left"), (r"\btehre\b", "there"), (r"\brigth\b", "right"),
    (r"\brght\b", "right"), (r"\bbehine\b", "behind"), (r"\bchai\b", "chair"), (r"\bwasing\b", "washing"),
    (r"\bwaslked\b", "walked"), (r"\boclock\b", "o'clock"), (r"\bo'[ ]+clock\b", "o'clock"),
)  # fmt: skip
_NUMBER_WORDS = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty"
).split()


def exact_match(prediction: str, answers: Sequence[str]) -> bool:
    """Official EM: the raw prediction is one of the answers (plain string equality)."""
    return prediction in answers


def normalize_answer(text: str) -> str:
    """LEO's answer cleaning (see the module docstring), applied to predictions and answers before EM-R."""
    text = text.lower().strip()
    text = re.sub(" {2,}", " ", text)
    text = re.sub(r"\.[ ]{2,}", ". ", text)
    text = re.sub(r"[^a-zA-Z0-9,'\s\-:]+", "", text)
    for pattern, replacement in _TYPO_FIXES:
        text = re.sub(pattern, replacement, text)
    text = re.sub(r"\bnone\b", "zero", text)
    for number, word in enumerate(_NUMBER_WORDS):
        text = re.sub(rf"\b{number}\b", word, text)
    text = re.sub(r"\b23\b", "twenty-three", text)
    text = re.sub(r"\b([a-zA-Z]+)([0-9])\b", r"\g<1>", text)  # "no1", "mat2" -> "no", "mat"
    for article in ("a", "an", "the"):
        text = re.sub(rf"\b{article}\b ([a-zA-Z]+)", r"\g<1>", text)
    return re.sub(r"\bbackwards\b", "backward", text)


def refined_exact_match(prediction: str, answers: Sequence[str]) -> bool:
    """EM-R: normalised prediction equals a normalised answer, or one contains the other (whitespace removed)."""
    pred = normalize_answer(prediction)
    if not pred:
        return False
    cleaned = [normalize_answer(a) for a in answers]
    if pred in cleaned:
        return True
    squeezed = "".join(pred.split())
    return any(squeezed in "".join(a.split()) or "".join(a.split()) in squeezed for a in cleaned)


def evaluate_qa(
    predictions: Sequence[str], questions: Sequence[Question], text_metrics: bool = True
) -> dict[str, float | dict]:
    """EM, EM-R (and per question type when the questions have types), plus text metrics.

    Args:
        predictions: N decoded answers, in the order of ``questions``.
        questions: N Question records (their ``answers`` are the references; ``question_type`` groups EM).
        text_metrics: also compute BLEU-1..4 / METEOR / ROUGE-L / CIDEr (needs Java).

    Returns:
        ``{"count", "EM", "EM-R", "BLEU-1", ..., "CIDEr", "EM_by_type": {type: {"EM", "EM-R", "count"}}}``; EM values
        are fractions in [0, 1].
    """
    if len(predictions) != len(questions):
        raise ValueError(f"{len(predictions)} predictions for {len(questions)} questions")
    em = np.array([exact_match(p, q.answers) for p, q in zip(predictions, questions, strict=True)], dtype=float)
    em_r = np.array([refined_exact_match(p, q.answers) for p, q in zip(predictions, questions, strict=True)], float)
    out: dict[str, float | dict] = {
        "count": len(questions),
        "EM": float(em.mean()) if em.size else float("nan"),
        "EM-R": float(em_r.mean()) if em_r.size else float("nan"),
    }
    types = np.array([q.question_type for q in questions], dtype=object)
    if any(types):
        out["EM_by_type"] = {
            t: {
                "EM": float(em[types == t].mean()),
                "EM-R": float(em_r[types == t].mean()),
                "count": int((types == t).sum()),
            }
            for t in sorted({t for t in types if t})
        }
    if text_metrics and questions:
        out.update(caption_metrics(list(predictions), [list(q.answers) for q in questions]))
    return out
