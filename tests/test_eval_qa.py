"""QA metrics: raw vs refined exact match, per-type EM, and pycocoevalcap scores on hand-worked captions."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pytest

from tests.conftest import require_realdata
from univlg.data.formats.scanqa import read_scanqa_json
from univlg.data.records import Question
from univlg.eval.captions import caption_scores
from univlg.eval.qa import evaluate_qa, exact_match, normalize_answer, refined_exact_match

needs_java = pytest.mark.skipif(shutil.which("java") is None, reason="pycocoevalcap's tokenizer and METEOR need Java")


def test_raw_exact_match_does_not_normalise():
    assert exact_match("brown", ["dark brown", "brown"])
    assert not any(exact_match(p, ["brown"]) for p in ("Brown", "brown.", " brown"))


def test_refined_exact_match_normalises_and_accepts_containment():
    assert all(refined_exact_match(p, ["brown"]) for p in ("Brown", "brown.", " brown"))
    assert refined_exact_match("2", ["two"]) and refined_exact_match("the chair", ["chair"])
    assert refined_exact_match("dark brown", ["brown"])  # the answer is contained in the prediction
    assert refined_exact_match("left", ["on the left side"])  # and the other way round
    assert not refined_exact_match("", ["brown"]) and not refined_exact_match("blue", ["brown"])
    assert normalize_answer("None of the 3 TVs!") == "zero of three tvs"


def test_em_by_question_type_without_text_metrics():
    questions = [
        Question("s", "What is it?", ("sofa",), question_type="what"),
        Question("s", "Is it on?", ("yes",), question_type="is"),
        Question("s", "What color?", ("red",), question_type="what"),
    ]
    out = evaluate_qa(["sofa", "Yes", "blue"], questions, text_metrics=False)
    assert out["EM"] == pytest.approx(1 / 3) and out["EM-R"] == pytest.approx(2 / 3)
    assert out["EM_by_type"] == {
        "is": {"EM": 0.0, "EM-R": 1.0, "count": 1},
        "what": {"EM": 0.5, "EM-R": 0.5, "count": 2},
    }


def test_answer_oracle_on_the_real_scanqa_val_file_has_em_one():
    questions = read_scanqa_json(require_realdata("scannet_val_annotations", "scanqa", "ScanQA_v1.0_val.json"))
    out = evaluate_qa([q.answers[0] for q in questions], questions, text_metrics=False)
    assert out["EM"] == 1.0 and out["EM-R"] == 1.0 and out["count"] == 4675


PREDICTIONS = ["the cat sat down", "Red.", "red chair", "blue table", "red table", ""]
REFERENCES = [["the cat sat up"], ["red"], ["red chair"], ["blue table"], ["red chair"], ["green"]]


@pytest.fixture(scope="module")
def hand_scores():
    """One tokenizer run for the hand-worked cases (METEOR's ~15 s Java start-up is left to the slow test)."""
    return caption_scores(PREDICTIONS, REFERENCES, metrics=("BLEU-1", "BLEU-2", "ROUGE-L", "CIDEr"))


@needs_java
def test_bleu_is_a_mean_of_per_item_scores(hand_scores):
    bleu1, bleu2 = hand_scores["BLEU-1"], hand_scores["BLEU-2"]
    assert bleu1[0] == pytest.approx(3 / 4) and bleu2[0] == pytest.approx(math.sqrt(3 / 4 * 2 / 3))
    assert bleu1[1] == pytest.approx(1.0)  # "Red." -> "red" after PTB tokenisation
    assert bleu1[4] == pytest.approx(1 / 2) and bleu1[5] == pytest.approx(0.0, abs=1e-6)


@needs_java
def test_rouge_per_item(hand_scores):
    assert hand_scores["ROUGE-L"][0] == pytest.approx(0.75)  # LCS 3 of 4 on both sides: F = 0.75 for any beta
    assert hand_scores["ROUGE-L"][2] == pytest.approx(1.0) and hand_scores["ROUGE-L"][5] == 0.0  # empty prediction


@needs_java
@pytest.mark.slow
def test_meteor_per_item():
    scores = caption_scores(PREDICTIONS, REFERENCES)  # all metrics, METEOR's Java start-up once
    meteor = scores["METEOR"]
    assert meteor[5] == 0.0 and meteor[2] > meteor[4] > 0 and meteor[2] > 0.9  # empty, exact, partial
    assert scores["BLEU-1"] == pytest.approx([0.75, 1, 1, 1, 0.5, 0], abs=1e-6)
    assert set(scores) == {"BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr"}


@needs_java
def test_cider_on_hand_worked_captions(hand_scores):
    """CIDEr-D by hand: tf-idf n-gram vectors with idf = log(#items) - log(df over references)."""
    cider = hand_scores["CIDEr"]
    n = 6
    df = {"red": 3, "chair": 2, "red chair": 2}
    idf = {k: math.log(n) - math.log(v) for k, v in df.items()}
    # "red chair" vs "red chair": unigram and bigram cosine 1, tri/4-grams absent -> (1 + 1 + 0 + 0) / 4 * 10
    assert cider[2] == pytest.approx(5.0)
    # "red table" vs "red chair": only "red" is shared; "table" has df 1 ("blue table"); bigrams disjoint
    hyp = np.array([idf["red"], math.log(n) - math.log(1)])
    ref = np.array([idf["red"], idf["chair"]])
    unigram = idf["red"] * idf["red"] / (np.linalg.norm(hyp) * np.linalg.norm(ref))
    assert cider[4] == pytest.approx(unigram / 4 * 10)
