"""Prediction helpers against hand-worked cases: detection-mode instances, class prompts, patch logits -> pixels,
and the sharding of scenes over processes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from univlg.data.batch import tokenize
from univlg.errors import ConfigError
from univlg.evaluation import shard_keys
from univlg.model.grounding import best_queries, mean_span_probability
from univlg.predict import detection_prompts, detections_from_logits
from univlg.predict_images import UNSEEN_LOGIT, unit_logits_to_pixels


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def test_detections_rank_query_class_pairs_and_weight_by_mean_mask_sigmoid():
    scores = torch.tensor([[0.9, 0.2], [0.1, 0.6]])  # (Q=2, C=2)
    logits = torch.tensor([[2.0, 1.0, -1.0, -3.0], [-2.0, -1.0, 3.0, float("-inf")]])  # (Q, P=4)
    out = detections_from_logits(scores, logits, class_ids=[7, 9], top_k=3)
    # the three best pairs: (q0, c0) 0.9, (q1, c1) 0.6, (q0, c1) 0.2
    assert out.classes.tolist() == [7, 9, 9]
    assert out.masks.tolist() == [[True, True, False, False], [False, False, True, False], [True, True, False, False]]
    q0_mask_score = (_sigmoid(2.0) + _sigmoid(1.0)) / 2
    expected = [0.9 * q0_mask_score, 0.6 * _sigmoid(3.0), 0.2 * q0_mask_score]
    assert out.scores == pytest.approx(expected, rel=1e-6)


def test_empty_mask_scores_zero_and_top_k_is_capped_by_the_pairs():
    out = detections_from_logits(torch.tensor([[0.5]]), torch.tensor([[-1.0, -2.0]]), class_ids=[3], top_k=100)
    assert out.masks.shape == (1, 2) and not out.masks.any() and out.scores.tolist() == [0.0]


def test_query_scores_are_mean_span_probabilities_over_each_phrase_tokens():
    probs = torch.tensor([[0.2, 0.4, 0.6, 0.8], [0.9, 0.1, 0.5, 0.5]])  # (Q=2, T=4)
    tokens = torch.tensor([[True, True, False, False], [False, False, False, True], [False] * 4])  # 3 phrases
    scores = mean_span_probability(probs[None], tokens)  # one set of queries scored for every phrase
    assert scores.tolist() == [pytest.approx([0.3, 0.5]), pytest.approx([0.8, 0.5]), [0.0, 0.0]]
    logits = torch.logit(torch.stack([probs, probs.flip(0)]))  # two sentences, (n=2, Q=2, T=4)
    best, per_query = best_queries(logits, tokens[[0, 0]])
    assert best.tolist() == [1, 0] and per_query[0].tolist() == pytest.approx([0.3, 0.5])


def test_detection_prompt_is_one_prompt_when_it_fits_and_splits_when_truncated(tiny_tokenize):
    from univlg.config import TextEncoderConfig
    from univlg.model.text_encoder import load_tokenizer

    names = ["chair", "coffee table", "trash can", "lamp", "sofa", "bed"]
    (prompt,) = detection_prompts(tiny_tokenize, names)
    assert prompt[0] == "chair. coffee table. trash can. lamp. sofa. bed"
    assert prompt[1] == list(range(6)) and [prompt[0][a:b] for a, b in prompt[2]] == names
    tokenizer = load_tokenizer(TextEncoderConfig())
    short = detection_prompts(lambda texts: tokenize(tokenizer, list(texts), 8), names)  # [CLS] + 6 tokens + [SEP]
    assert len(short) > 1 and sum((p[1] for p in short), []) == list(range(6))
    for text, indices, spans in short:
        assert [text[a:b] for a, b in spans] == [names[i] for i in indices]
        assert len(tokenizer(text)["input_ids"]) <= 8  # nothing truncated away
    with pytest.raises(ConfigError, match="does not fit"):
        detection_prompts(lambda texts: tokenize(tokenizer, list(texts), 2), names)


def test_nearest_upsampling_repeats_patch_logits_then_crops_and_resizes():
    logits = torch.tensor([[1.0, -1.0], [-2.0, 3.0]])  # 2x2 patches of 4 px: an 8x8 padded image
    pixels = unit_logits_to_pixels(logits, resized_hw=(8, 8), original_hw=(8, 8), patch=4, mode="nearest")
    expected = np.kron(logits.numpy(), np.ones((4, 4)))
    assert np.array_equal(pixels.numpy(), expected)
    # resized image 6x8 inside the padded 8x8, original 3x4: every original pixel samples the 2x2 block centre
    pixels = unit_logits_to_pixels(logits, resized_hw=(6, 8), original_hw=(3, 4), patch=4, mode="nearest")
    assert pixels.numpy().tolist() == [[1, 1, -1, -1], [1, 1, -1, -1], [-2, -2, 3, 3]]


def test_bilinear_upsampling_hits_patch_centres_and_keeps_constants():
    logits = torch.tensor([[0.0, 4.0]])  # one row of two 2-px patches: centres at pixel x = 0.5 and 2.5
    pixels = unit_logits_to_pixels(logits, resized_hw=(2, 4), original_hw=(2, 4), patch=2, mode="bilinear")
    # pixel centres x = 0, 1, 2, 3 -> 0 (clamped), 1/4 of the way, 3/4 of the way, 4 (clamped)
    assert pixels[0].tolist() == pytest.approx([0.0, 1.0, 3.0, 4.0])
    constant = unit_logits_to_pixels(torch.full((3, 5), 2.5), (40, 70), (97, 113), patch=14, mode="bilinear")
    assert constant.shape == (97, 113) and torch.allclose(constant, torch.tensor(2.5))


def test_unseen_patches_are_background():
    logits = torch.tensor([[5.0, float("-inf")]])
    pixels = unit_logits_to_pixels(logits, (1, 2), (1, 2), patch=1, mode="nearest")
    assert pixels.tolist() == [[5.0, UNSEEN_LOGIT]]
    with pytest.raises(ValueError, match="upsampling mode"):
        unit_logits_to_pixels(logits, (1, 2), (1, 2), patch=1, mode="bicubic")


def test_shards_are_disjoint_strided_and_cover_every_scene():
    keys = ["s3", "s1", "s2", "s1", "s5", "s4", "s3"]
    shards = [shard_keys(keys, r, 2) for r in range(2)]
    assert shards == [["s1", "s3", "s5"], ["s2", "s4"]]
    for world in (1, 2, 3, 7, 9):
        parts = [shard_keys(keys, r, world) for r in range(world)]
        assert sorted(sum(parts, [])) == sorted(set(keys))
    with pytest.raises(ValueError, match="outside"):
        shard_keys(keys, 2, 2)


def test_point_maps_of_scan_frames_are_resampled_to_the_image_size(synthetic_root):
    from univlg.data.scene_store import SceneStore

    store = SceneStore(synthetic_root / "scans")
    scene_id = (synthetic_root / "splits" / "synth_val.txt").read_text().split()[0]
    frame = store.get(scene_id).frames.names[0]
    points, valid = store.camera_point_map(scene_id, frame)  # (60, 80) depth grid
    same = store.image_point_map(f"{scene_id}/color/{frame}.jpg", (60, 80))
    assert np.array_equal(same[0], points) and np.array_equal(same[1], valid)
    double, double_valid = store.image_point_map(f"{scene_id}/color/{frame}.jpg", (120, 160))
    assert np.array_equal(double[1::2, 1::2], points) and np.array_equal(double[::2, ::2], points)
    assert np.array_equal(double_valid[::2, 1::2], valid)
    assert store.image_point_map("COCO_train2014_000000000001.jpg", (60, 80)) is None
    assert store.image_point_map("no_such_scene/color/0.jpg", (60, 80)) is None
