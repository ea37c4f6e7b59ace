"""The rule-based head-noun finder on typical referring expressions (and its documented limits)."""

from __future__ import annotations

import pytest

from univlg.data.noun_phrase import find_target_span


@pytest.mark.parametrize(
    ("sentence", "head"),
    [
        ("the chair closest to the door", "chair"),
        ("Find the brown wooden chair that is next to the table.", "chair"),
        ("It is a small black monitor on the desk", "monitor"),
        ("this is a white pillow. it is on the bed", "pillow"),
        ("There is a tall lamp in the corner of the room", "lamp"),
        ("facing the bed, the lamp on the left", "lamp"),
        ("select the kitchen cabinets above the sink", "cabinets"),
        ("the trash can under the desk", "can"),  # documented limit: compounds give their last word
        ("the one that is farthest from the window", "one"),  # documented limit: pronoun targets
        ("pillows", "pillows"),
    ],
)
def test_head_noun(sentence, head):
    start, end = find_target_span(sentence)
    assert sentence[start:end] == head


def test_fallbacks():
    assert find_target_span("on the table") == (7, 12)  # no head before the cut: last content word
    assert find_target_span("the it") == (0, 6)  # only filler: the whole sentence
