"""Character spans <-> token positive maps, by hand and with the real MiniLM fast tokenizer."""

from __future__ import annotations

import numpy as np
import pytest

from univlg.config import TextEncoderConfig
from univlg.data.batch import tokenize
from univlg.data.spans import (
    find_phrase,
    lower_preserving_offsets,
    positive_map,
    token_spans_to_chars,
    tokens_in_spans,
)
from univlg.model.text_encoder import load_tokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TextEncoderConfig())


def test_tokens_overlapping_a_span_by_hand():
    # "[CLS] the night ##stand . [SEP] [PAD]" over "the nightstand."
    offsets = [(0, 0), (0, 3), (4, 9), (9, 14), (14, 15), (0, 0), (0, 0)]
    assert tokens_in_spans(offsets, [(4, 14)]).tolist() == [0, 0, 1, 1, 0, 0, 0]
    assert tokens_in_spans(offsets, [(10, 11)]).tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert tokens_in_spans(offsets, [(3, 4)]).tolist() == [0] * 7  # the space touches no token
    assert tokens_in_spans(offsets, [(0, 0)]).tolist() == [0] * 7  # an empty span matches nothing


def test_positive_map_rows_are_normalised_and_padded():
    offsets = [(0, 0), (0, 3), (4, 9), (9, 14), (14, 15), (0, 0)]
    pm = positive_map(offsets, [[(4, 14)], [(0, 3), (14, 15)], [(20, 25)]], num_tokens=8)
    assert pm.shape == (3, 8)
    np.testing.assert_allclose(pm[0], [0, 0, 0.5, 0.5, 0, 0, 0, 0])
    np.testing.assert_allclose(pm[1], [0, 0.5, 0, 0, 0.5, 0, 0, 0])
    assert pm[2].sum() == 0


def test_real_tokenizer_spans_round_trip(tokenizer):
    text = "The brown nightstand, closest to the armchair."
    batch = tokenize(tokenizer, [text, "a door"], max_length=64)
    offsets = batch.offsets[0].numpy()
    for phrase in ("nightstand", "brown nightstand", "armchair", "the"):
        span = find_phrase(text, phrase)
        hit = tokens_in_spans(offsets, [span])
        assert hit.any()
        assert token_spans_to_chars(offsets, hit) == [span]
    tokens = tokenizer.convert_ids_to_tokens(batch.input_ids[0])
    hit = tokens_in_spans(offsets, [find_phrase(text, "nightstand")])
    assert "".join(t.removeprefix("##") for t, h in zip(tokens, hit, strict=True) if h) == "nightstand"
    assert batch.attention_mask[1].sum() < batch.attention_mask[0].sum()
    assert (batch.offsets[1][~batch.attention_mask[1]] == 0).all()


def test_lowercasing_keeps_character_positions(tokenizer):
    text = "İstanbul CHAIR near the Door"
    lowered = lower_preserving_offsets(text)
    assert len(lowered) == len(text) and lowered.endswith("chair near the door")
    batch = tokenize(tokenizer, [text], max_length=64)
    span = find_phrase(text, "chair")
    hit = tokens_in_spans(batch.offsets[0].numpy(), [span])
    assert tokenizer.convert_ids_to_tokens(batch.input_ids[0][hit])[0] == "chair"


def test_truncation_at_max_length(tokenizer):
    batch = tokenize(tokenizer, ["word " * 50], max_length=10)
    assert batch.input_ids.shape == (1, 10)


def test_find_phrase_matches_whole_words_case_insensitively():
    text = "An armchair and a Chair."
    assert find_phrase(text, "chair") == (18, 23)
    assert find_phrase(text, "CHAIR", start=19) is None
    assert find_phrase(text, "table") is None and find_phrase(text, " ") is None


def test_token_spans_merge_adjacent_tokens():
    offsets = [(0, 0), (0, 3), (4, 9), (9, 14), (16, 20)]
    assert token_spans_to_chars(offsets, [0, 1, 1, 1, 1]) == [(0, 14), (16, 20)]


def test_image_target_spans_are_the_annotated_ones_else_the_category_mention():
    from univlg.data.records import ImageReferral
    from univlg.data.spans import image_referral_spans

    referral = ImageReferral(1, "a.jpg", 8, 8, "the red chair on the left", (0, 0, 1, 1), None, "chair")
    assert image_referral_spans(referral) == ((8, 13),)
    referral.spans = ((4, 7), (8, 13))
    assert image_referral_spans(referral) == ((4, 7), (8, 13))
    assert image_referral_spans(ImageReferral(1, "a.jpg", 8, 8, "the armchair", (0, 0, 1, 1), None, "chair")) == ()
