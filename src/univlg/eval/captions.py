"""Text-generation metrics for QA answers: BLEU-1..4, METEOR, ROUGE-L, CIDEr from pycocoevalcap.

Protocol (reference 5.3 and 12, UniVLG's ``vqa_evaluator.py``): predictions and references are lower-cased and
tokenised by pycocoevalcap's PTB tokenizer (Stanford CoreNLP, Java; punctuation tokens dropped), then every
metric is the **mean of per-item scores** (pycocoevalcap's per-item outputs), not the corpus-level score the
scorers also return; the two differ a lot (BLEU's brevity penalty and METEOR's fragmentation are per item).
CIDEr's per-item scores use document frequencies over the evaluated set, so their mean is CIDEr's usual score.
ScanQA papers report BLEU-1, SQA3D papers BLEU-4. SPICE is not computed (it needs models downloaded at run time).
Java must be on the PATH (PTB tokenizer and METEOR run as Java subprocesses).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence

import numpy as np
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.meteor.meteor import Meteor
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

METRICS = ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "ROUGE-L", "CIDEr")


def ptb_tokenize(texts: dict[int, list[str]]) -> dict[int, list[str]]:
    """PTB-tokenise (lower-case, punctuation removed) ``{item: [text, ...]}`` with pycocoevalcap's tokenizer."""
    return PTBTokenizer().tokenize({k: [{"caption": t} for t in v] for k, v in texts.items()})


def _meteor_scores(references: dict[int, list[str]], predictions: dict[int, list[str]]) -> list[float]:
    scorer = Meteor()
    try:
        return scorer.compute_score(references, predictions)[1]
    finally:
        del scorer  # its __del__ stops the Java process now rather than at interpreter exit


def caption_scores(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    tokenize: bool = True,
    metrics: Sequence[str] = METRICS,
) -> dict[str, np.ndarray]:
    """Per-item scores of the requested metrics (default all of :data:`METRICS`).

    Args:
        predictions: N predicted strings.
        references: N non-empty lists of reference strings.
        tokenize: PTB-tokenise both sides first (the protocol); False scores the strings as given (space-split).
        metrics: names from :data:`METRICS`; METEOR costs ~15 s of Java start-up (its paraphrase table).

    Returns:
        metric name -> (N,) float64 per-item scores; the reported number is their mean (:func:`caption_metrics`).
    """
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} reference lists")
    if any(len(r) == 0 for r in references):
        raise ValueError("every item needs at least one reference")
    unknown = set(metrics) - set(METRICS)
    if unknown:
        raise ValueError(f"unknown metric(s) {sorted(unknown)}; known: {METRICS}")
    if not predictions:
        return {name: np.zeros(0) for name in metrics}
    res = {i: [p] for i, p in enumerate(predictions)}
    gts = {i: list(r) for i, r in enumerate(references)}
    if tokenize:  # one Java run for both sides: predictions under keys -1, -2, ...
        tokens = ptb_tokenize({**gts, **{-1 - i: v for i, v in res.items()}})
        # the tokenizer drops the key of a text that ends the file empty: it tokenises to nothing anyway
        res = {i: tokens.get(-1 - i, [""]) for i in res}
        gts = {i: tokens.get(i, [""] * len(refs)) for i, refs in gts.items()}
    # ROUGE-L divides by the hypothesis length and METEOR's line protocol expects one: empty ones score 0 there.
    non_empty = [i for i in res if res[i][0].strip()]
    with contextlib.redirect_stdout(io.StringIO()):  # the BLEU scorer prints its length ratios
        _, bleu = Bleu(4).compute_score(gts, res)
    scores = {f"BLEU-{n + 1}": np.asarray(bleu[n], dtype=np.float64) for n in range(4)}
    scores["METEOR"], scores["ROUGE-L"] = np.zeros(len(res)), np.zeros(len(res))
    kept_gts, kept_res = {i: gts[i] for i in non_empty}, {i: res[i] for i in non_empty}
    if non_empty and "METEOR" in metrics:
        scores["METEOR"][non_empty] = _meteor_scores(kept_gts, kept_res)
    if non_empty:
        scores["ROUGE-L"][non_empty] = Rouge().compute_score(kept_gts, kept_res)[1]
    scores["CIDEr"] = np.asarray(Cider().compute_score(gts, res)[1], dtype=np.float64)
    return {name: scores[name] for name in metrics}


def caption_metrics(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    tokenize: bool = True,
    metrics: Sequence[str] = METRICS,
) -> dict[str, float]:
    """Means of the per-item scores of :func:`caption_scores` (metric name -> float; NaN for no items)."""
    return {
        name: float(values.mean()) if values.size else float("nan")
        for name, values in caption_scores(predictions, references, tokenize, metrics).items()
    }
