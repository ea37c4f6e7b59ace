"""Character spans <-> token positive maps (GLIP/MDETR style, reference 1.11).

A *span* is a half-open character range ``(start, end)`` of an utterance. A fast tokenizer gives each token its
character range (``offsets``, (T, 2)); special and padding tokens have the empty range (0, 0) and never match.
A positive map row is 1 on every token whose range overlaps one of the object's spans, normalised to sum 1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from univlg.data.records import ImageReferral

Span = tuple[int, int]


def _offsets(offsets) -> np.ndarray:
    array = np.asarray(offsets, dtype=np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"offsets must be (T, 2), got {array.shape}")
    return array


def tokens_in_spans(offsets, spans: Sequence[Span]) -> np.ndarray:
    """Tokens whose character range overlaps any span.

    Args:
        offsets: (T, 2) int token character ranges [start, end); (0, 0) for special/padding tokens.
        spans: character ranges [start, end).

    Returns:
        (T,) bool.
    """
    offsets = _offsets(offsets)
    starts, ends = offsets[:, 0:1], offsets[:, 1:2]
    real = ends > starts
    hit = np.zeros(offsets.shape[0], dtype=bool)
    for start, end in spans:
        if end <= start:
            continue
        hit |= ((starts < end) & (ends > start) & real)[:, 0]
    return hit


def positive_map(offsets, spans_per_object: Sequence[Sequence[Span]], num_tokens: int | None = None) -> np.ndarray:
    """One normalised positive-map row per object.

    Args:
        offsets: (T, 2) int token character ranges of one utterance.
        spans_per_object: for each of N objects, its character spans.
        num_tokens: width of the map (default T); tokens beyond T stay 0.

    Returns:
        (N, num_tokens) float32; row i sums to 1 over the tokens overlapping object i's spans (all zeros when
        none overlaps, e.g. a span truncated away by the tokenizer's max length).
    """
    offsets = _offsets(offsets)
    width = offsets.shape[0] if num_tokens is None else num_tokens
    out = np.zeros((len(spans_per_object), width), dtype=np.float32)
    for i, spans in enumerate(spans_per_object):
        hit = tokens_in_spans(offsets, spans)[:width]
        if hit.any():
            out[i, : hit.shape[0]] = hit / hit.sum()
    return out


def token_spans_to_chars(offsets, tokens) -> list[Span]:
    """Character spans covered by a set of tokens, merging tokens that touch or are separated by spaces only.

    Args:
        offsets: (T, 2) int token character ranges.
        tokens: (T,) bool (or float weights, > 0 counts) selecting tokens.

    Returns:
        sorted list of (start, end); special tokens contribute nothing.
    """
    offsets = _offsets(offsets)
    chosen = np.asarray(tokens)[: offsets.shape[0]] > 0
    ranges = sorted(
        (int(s), int(e)) for (s, e), keep in zip(offsets.tolist(), chosen.tolist(), strict=True) if keep and e > s
    )
    merged: list[list[int]] = []
    for start, end in ranges:
        if merged and start <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return [(a, b) for a, b in merged]


def find_phrase(text: str, phrase: str, start: int = 0) -> Span | None:
    """First case-insensitive whole-word occurrence of ``phrase`` in ``text`` at or after ``start``.

    Returns:
        (start, end) character span, or None when absent.
    """
    if not phrase.strip():
        return None
    pattern = re.compile(r"(?<!\w)" + re.escape(phrase.strip()) + r"(?!\w)", re.IGNORECASE)
    match = pattern.search(text, start)
    return None if match is None else (match.start(), match.end())


def image_referral_spans(referral: ImageReferral) -> tuple[Span, ...]:
    """The target's character spans in a 2D referral's sentence: the annotated ones, else the first whole-word
    mention of its category name (RefCOCO files store no spans), else none (the caller then picks the head noun)."""
    if referral.spans:
        return tuple(referral.spans)
    mention = find_phrase(referral.utterance, referral.category) if referral.category else None
    return () if mention is None else (mention,)


def lower_preserving_offsets(text: str) -> str:
    """Lower-case ``text`` character by character, keeping characters whose lower case is longer (so every
    character offset still points at the same character)."""
    return "".join(c.lower() if len(c.lower()) == 1 else c for c in text)
