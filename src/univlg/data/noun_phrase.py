"""A rule-based finder of the referred object's head noun in an English referring expression.

The paper takes the target phrase from an LLM (fallback: spaCy's root noun phrase); we need something that runs
offline without models. Rules, per clause (text split at , . ; : ! ?), first clause with an answer wins:
1. skip leading filler words (articles, "find", "select", "there is", "this is", pronouns, ...);
2. read words until a word that starts a modifier (a preposition, "that/which/who", a relational word such as
   "closest", "next", "between", a verb such as "is");
3. the head is the last word read (English noun phrases end in their head: "the small brown *chair*").
Fallback: the last word of the sentence that is not a filler word; then the whole sentence.

Limits: the target must be the first noun phrase of its clause ("facing the bed, the lamp on the left" works
because the first clause yields nothing after "facing" is cut; "next to the bed is a lamp" returns "bed");
compounds give their last word ("trash can" -> "can"); pronoun targets ("the one that ...") return "one";
adjectives in predicate position ("the chair is brown" -> "chair") work, but unlisted verbs and misspelt words
are read as nouns. English only.
"""

from __future__ import annotations

import re

_FILLER = {
    "a", "an", "the", "this", "that", "these", "those", "it", "its", "there", "here", "is", "are", "was", "were",
    "find", "select", "choose", "pick", "locate", "show", "identify", "point", "look", "for", "at", "me", "please",
    "i", "you", "we", "see", "can", "want", "need", "mean", "of", "out", "two", "three", "some", "any",
}  # fmt: skip
_CUT = {
    "that", "which", "who", "whose", "where", "when", "while", "with", "without", "near", "nearest", "next",
    "beside", "besides", "between", "behind", "in", "inside", "on", "onto", "under", "underneath", "above",
    "below", "over", "at", "by", "from", "to", "toward", "towards", "of", "closest", "closer", "close",
    "farthest", "furthest", "farther", "further", "far", "facing", "faces", "against", "across", "along",
    "around", "outside", "is", "are", "was", "were", "has", "have", "and", "or", "but", "if", "than", "sits",
    "sitting", "stands", "standing", "located", "placed", "lies", "lying", "hanging", "leaning", "opposite",
    "among", "beneath", "atop", "into", "adjacent", "like", "as", "so",
}  # fmt: skip
_WORD = re.compile(r"[A-Za-z0-9]+(?:['-][A-Za-z0-9]+)*")
_CLAUSE = re.compile(r"[^,.;:!?]+")


def _head_of_clause(text: str, start: int, end: int) -> tuple[int, int] | None:
    words = [(m.start() + start, m.end() + start, m.group().lower()) for m in _WORD.finditer(text[start:end])]
    i = 0
    while i < len(words) and words[i][2] in _FILLER:
        i += 1
    read = []
    for word in words[i:]:
        if word[2] in _CUT:
            break
        read.append(word)
    return (read[-1][0], read[-1][1]) if read else None


def find_target_span(sentence: str) -> tuple[int, int]:
    """Character span (start, end) of the head noun of the referred object (see the module docstring)."""
    for clause in _CLAUSE.finditer(sentence):
        span = _head_of_clause(sentence, clause.start(), clause.end())
        if span is not None:
            return span
    content = [m for m in _WORD.finditer(sentence) if m.group().lower() not in _FILLER]
    if content:
        return content[-1].start(), content[-1].end()
    return 0, len(sentence)
