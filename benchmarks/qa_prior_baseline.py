"""A question-only baseline for ScanQA-style answers: what exact match needs no scene at all.

Each evaluated question gets the answer most often given in the training file to the same question text; a text
never seen in training gets the most frequent answer of questions that start with the same two words ("how many",
"what color", "is there"), else the most frequent answer overall. A model that answers from the scene has to beat
this. Scored with :func:`univlg.eval.qa.exact_match` / ``refined_exact_match`` over the questions that
``univlg eval --benchmark scanqa`` grounds (those with object ids); ``--all`` scores every question.

    .venv/bin/python benchmarks/qa_prior_baseline.py --train data/synth/scanqa/ScanQA_v1.0_train.json \\
        --eval data/synth/scanqa/ScanQA_v1.0_val.json
"""

from __future__ import annotations

import argparse
import json
import logging
from collections import Counter, defaultdict

from univlg.data.formats.scanqa import read_scanqa_json
from univlg.data.records import Question
from univlg.eval.qa import evaluate_qa

logger = logging.getLogger("qa_prior_baseline")


def opening(question: str) -> str:
    """The first two words, lower-cased."""
    return " ".join(question.lower().split()[:2])


class PriorAnswers:
    """Most frequent training answers by question text, by opening words, and overall (first answer of a row)."""

    def __init__(self, training: list[Question]):
        by_text: dict[str, Counter] = defaultdict(Counter)
        by_opening: dict[str, Counter] = defaultdict(Counter)
        overall: Counter = Counter()
        for q in training:
            if q.answers:
                by_text[q.question.lower()][q.answers[0]] += 1
                by_opening[opening(q.question)][q.answers[0]] += 1
                overall[q.answers[0]] += 1
        self.by_text = {k: c.most_common(1)[0][0] for k, c in by_text.items()}
        self.by_opening = {k: c.most_common(1)[0][0] for k, c in by_opening.items()}
        self.overall = overall.most_common(1)[0][0] if overall else ""

    def __call__(self, question: str) -> str:
        return self.by_text.get(question.lower()) or self.by_opening.get(opening(question)) or self.overall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", required=True, help="training ScanQA JSON (the answer statistics)")
    parser.add_argument("--eval", required=True, help="ScanQA JSON to score")
    parser.add_argument("--all", action="store_true", help="score questions without object ids too")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    prior = PriorAnswers(read_scanqa_json(args.train))
    questions = [q for q in read_scanqa_json(args.eval) if args.all or q.object_ids]
    result = evaluate_qa([prior(q.question) for q in questions], questions, text_metrics=False)
    logger.info("%s", json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
