"""Word tokens of an utterance and their character offsets, to turn token-index annotations into char spans.

The language datasets store pre-tokenised, lower-cased word lists (ReferIt3D ``tokens``, ScanRefer ``token``)
and ScanEnts3D entities point into those lists by index. Records keep character spans into the raw utterance
instead, so the token list is aligned to the utterance: the utterance is split into words here, and the two
word sequences are matched by longest common subsequence (``difflib``), which tolerates the datasets'
rewrites ("it's" -> "it", "is"; dropped punctuation). A dataset token with no counterpart has no offset.
"""

from __future__ import annotations

import difflib
import re

from univlg.data.records import CharSpan

WORD = re.compile(r"\w+|[^\w\s]")


def tokenize_with_offsets(text: str) -> list[tuple[str, int, int]]:
    """Lower-cased words and punctuation marks of ``text`` with their half-open char offsets ``(tok, start, end)``."""
    return [(m.group().lower(), m.start(), m.end()) for m in WORD.finditer(text)]


def tokenize(text: str) -> list[str]:
    """Lower-cased words and punctuation marks of ``text`` (the writers' ``tokens`` column)."""
    return [token for token, _, _ in tokenize_with_offsets(text)]


def align_tokens(text: str, tokens: list[str]) -> list[CharSpan | None]:
    """Char span in ``text`` of each dataset token (None when it has no counterpart): len(tokens) entries."""
    words = tokenize_with_offsets(text)
    matcher = difflib.SequenceMatcher(None, [t.lower() for t in tokens], [w for w, _, _ in words], autojunk=False)
    offsets: list[CharSpan | None] = [None] * len(tokens)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            _, start, end = words[block.b + k]
            offsets[block.a + k] = (start, end)
    return offsets


def spans_of_token_indices(offsets: list[CharSpan | None], indices: list[int]) -> tuple[CharSpan, ...]:
    """Char spans covering the tokens at ``indices``: runs of consecutive aligned tokens merge into one span."""
    spans: list[list[int]] = []
    previous = None
    for index in sorted(set(indices)):
        if not 0 <= index < len(offsets) or offsets[index] is None:
            previous = None
            continue
        start, end = offsets[index]
        if previous is not None and index == previous + 1:
            spans[-1][1] = end
        else:
            spans.append([start, end])
        previous = index
    return tuple((s, e) for s, e in spans)


def token_indices_of_spans(offsets: list[CharSpan | None], spans: tuple[CharSpan, ...]) -> list[int]:
    """Indices of the aligned tokens that overlap any of the char ``spans`` (ascending)."""
    return [
        i
        for i, offset in enumerate(offsets)
        if offset is not None and any(offset[0] < end and start < offset[1] for start, end in spans)
    ]
