"""Spatial attention bias and relation head (univlg.model.spatial_attention, univlg.model.relation_head) against
hand-worked values and brute-force loops."""

import math

import torch

from univlg.config import MaskDecoderConfig
from univlg.model.layers import MultiheadAttention
from univlg.model.mask_decoder import MaskDecoder
from univlg.model.relation_head import RelationHead
from univlg.model.spatial_attention import (
    NUM_PAIR_FEATURES,
    SpatialAttentionBias,
    pair_features,
    query_geometry,
)


def test_query_geometry_of_a_hard_mask_is_its_points_centroid_and_rms_radius():
    xyz = torch.tensor([[[1.0, 0, 0], [3, 0, 0], [3, 2, 0], [50, 50, 50]]])
    valid = torch.tensor([[True, True, True, False]])
    # query 0 covers points 0 and 1, query 1 point 2 alone; point 3 is padding (even though its logit is high)
    logits = torch.tensor([[[40.0, 40.0, -40.0, 40.0], [-40.0, -40.0, 40.0, 40.0]]])
    centre, spread = torch.tensor([[[1.0, 0.0, 0.0]]]), torch.tensor([[[2.0]]])
    centroids, log_extent = query_geometry(logits, xyz, valid, centre, spread)
    assert torch.allclose(centroids[0, 0], torch.tensor([0.5, 0.0, 0.0]), atol=1e-5)  # ((1+3)/2 - 1) / 2
    assert torch.allclose(centroids[0, 1], torch.tensor([1.0, 1.0, 0.0]), atol=1e-5)
    # query 0: points at -0.5 and +0.5 around its centroid (in spreads) -> RMS 0.5; query 1: one point, floor
    assert math.isclose(float(log_extent[0, 0]), math.log(0.5), abs_tol=1e-4)
    assert math.isclose(float(log_extent[0, 1]), math.log(1e-3), abs_tol=1e-4)


def test_confident_geometry_drops_the_spill_outside_the_mask_and_keeps_a_query_that_covers_nothing():
    xyz = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [10, 0, 0]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    spill = math.log(0.2 / 0.8)  # probability 0.2 on the far point
    # query 0 covers points 0 and 1 (probability 0.5 + tiny) and spills 0.2 onto point 2; query 1 covers nothing
    logits = torch.tensor([[[1e-4, 1e-4, spill], [spill, spill, spill]]])
    centre, spread = torch.zeros(1, 1, 3), torch.ones(1, 1, 1)
    soft, _ = query_geometry(logits, xyz, valid, centre, spread)
    confident, log_extent = query_geometry(logits, xyz, valid, centre, spread, confident_only=True)
    assert math.isclose(float(soft[0, 0, 0]), (0.5 * 2 + 0.2 * 10) / 1.2, rel_tol=1e-3)  # pulled towards x=10
    assert torch.allclose(confident[0, 0], torch.tensor([1.0, 0.0, 0.0]), atol=1e-3)  # the two covered points
    assert math.isclose(float(log_extent[0, 0]), math.log(1.0), abs_tol=1e-3)  # points at +-1 around x=1
    assert torch.allclose(confident[0, 1], soft[0, 1])  # covers nothing: all its probabilities (mean x=4)
    assert math.isclose(float(confident[0, 1, 0]), 4.0, rel_tol=1e-4)


def test_pair_features_match_a_loop_over_pairs():
    torch.manual_seed(0)
    centroids, log_extent = torch.randn(2, 4, 3), torch.randn(2, 4)
    features = pair_features(centroids, log_extent)
    assert features.shape == (2, 4, 4, NUM_PAIR_FEATURES)
    for b in range(2):
        for i in range(4):
            for j in range(4):
                dx, dy, dz = (centroids[b, j] - centroids[b, i]).tolist()
                d = math.sqrt(dx * dx + dy * dy + dz * dz)
                expected = [
                    d,
                    math.hypot(dx, dy),
                    dx,
                    dy,
                    dz,
                    math.exp(-d),
                    float(log_extent[b, j] - log_extent[b, i]),
                    1,
                ]
                assert torch.allclose(features[b, i, j], torch.tensor(expected), atol=1e-5)


def test_bias_is_sentence_mean_times_pair_features_per_head():
    torch.manual_seed(0)
    module = SpatialAttentionBias(dim=6, num_heads=2)
    assert (
        torch.count_nonzero(module(torch.randn(1, 3, 6), torch.ones(1, 3, dtype=torch.bool), torch.randn(1, 2, 2, 8)))
        == 0
    )
    torch.nn.init.normal_(module.weights.weight)
    torch.nn.init.normal_(module.weights.bias)
    text = torch.randn(1, 3, 6)
    text_valid = torch.tensor([[True, True, False]])  # the padded token must not enter the mean
    features = torch.randn(1, 2, 2, NUM_PAIR_FEATURES)
    with torch.no_grad():
        bias = module(text, text_valid, features)
    sentence = (text[0, 0] + text[0, 1]) / 2
    w = (module.weights.weight @ sentence + module.weights.bias).detach().view(2, NUM_PAIR_FEATURES)
    for h in range(2):
        for i in range(2):
            for j in range(2):
                assert math.isclose(
                    float(bias[0, h, i, j]), float(w[h] @ features[0, i, j]), rel_tol=1e-5, abs_tol=1e-5
                )


def test_attention_bias_is_added_to_the_logits_under_the_mask():
    torch.manual_seed(0)
    attn = MultiheadAttention(dim=4, num_heads=1)
    x = torch.randn(1, 3, 4)
    attend = torch.tensor([[[True, True, False]]])
    bias = torch.randn(1, 1, 3, 3)
    out = attn(x, x, x, attend, bias)
    q, k, v = attn.q_proj(x)[0], attn.k_proj(x)[0], attn.v_proj(x)[0]
    logits = q @ k.T / 2.0 + bias[0, 0]
    logits[:, 2] = float("-inf")
    expected = attn.out_proj(logits.softmax(-1) @ v)
    assert torch.allclose(out[0], expected, atol=1e-5)


def _decoder(spatial: bool, anchored: bool) -> MaskDecoder:
    torch.manual_seed(0)
    cfg = MaskDecoderConfig(
        dim=16, num_heads=2, ffn_dim=32, num_layers=2, num_queries=4, anchored_queries=anchored,
        spatial_attention=spatial,
    )  # fmt: skip
    return MaskDecoder(cfg, max_text_len=8).eval()


def test_zero_initialised_bias_leaves_the_decoder_unchanged_and_a_trained_one_changes_it():
    units, xyz = torch.randn(2, 20, 16), torch.rand(2, 20, 3) * 4
    valid = torch.ones(2, 20, dtype=torch.bool)
    valid[1, 15:] = False
    text, text_valid = torch.randn(2, 5, 16), torch.ones(2, 5, dtype=torch.bool)
    for anchored in (True, False):
        plain, spatial = _decoder(False, anchored), _decoder(True, anchored)
        missing, unexpected = spatial.load_state_dict(plain.state_dict(), strict=False)
        assert not unexpected and all(".spatial_bias." in name for name in missing)
        with torch.no_grad():
            a = plain(units, plain.pos_3d(xyz), valid, text, text_valid, xyz)
            b = spatial(units, spatial.pos_3d(xyz), valid, text, text_valid, xyz)
            assert torch.allclose(a.mask_logits, b.mask_logits, atol=1e-5)
            assert torch.allclose(a.span_logits, b.span_logits, atol=1e-5)
            for layer in spatial.layers:
                torch.nn.init.normal_(layer.spatial_bias.weights.bias, std=3.0)
            c = spatial(units, spatial.pos_3d(xyz), valid, text, text_valid, xyz)
        assert not torch.allclose(a.span_logits[-1], c.span_logits[-1], atol=1e-3)
        assert torch.isfinite(c.mask_logits).all() and torch.isfinite(c.span_logits).all()


def test_relation_head_matches_a_hand_computation_and_starts_at_zero():
    torch.manual_seed(0)
    head = RelationHead(dim=8, num_classes=3)
    span_logits, text = torch.randn(1, 3, 4) * 5, torch.randn(1, 4, 8)
    text_valid = torch.tensor([[True, True, True, False]])
    centroids, log_extent = torch.randn(1, 3, 3), torch.randn(1, 3)
    with torch.no_grad():
        start = head(span_logits, text, text_valid, pair_features(centroids, log_extent), centroids, log_extent)
        assert torch.count_nonzero(start.score) == 0
        for layer in (head.anchor_words, head.relation_words, head.weights):
            torch.nn.init.normal_(layer.weight)
            torch.nn.init.normal_(layer.bias)
        torch.nn.init.normal_(head.class_weights)
        out = head(span_logits, text, text_valid, pair_features(centroids, log_extent), centroids, log_extent)
        scores = out.score[0]
    with torch.no_grad():
        beta = torch.stack([head.anchor_words(text[0, t])[0] for t in range(3)]).softmax(0)  # padding left out
        gamma = torch.stack([head.relation_words(text[0, t])[0] for t in range(3)]).softmax(0)
        anchor_logits = torch.stack([sum(beta[t] * span_logits[0, j, t] for t in range(3)) for j in range(3)])
        a = anchor_logits.softmax(0)
        classes = head.classifier(sum(gamma[t] * text[0, t] for t in range(3)))
        g = head.weights(sum(gamma[t] * text[0, t] for t in range(3)))
        g = g + sum(classes.softmax(0)[k] * head.class_weights[k] for k in range(3))
    assert torch.allclose(out.relation_logits[0], classes, atol=1e-5)
    assert torch.allclose(out.geometry_weights[0], g, atol=1e-5)
    assert torch.allclose(out.anchor_logits[0], anchor_logits, atol=1e-5)
    assert torch.isneginf(out.anchor_word_logits[0, 3]) and torch.allclose(
        out.anchor_word_logits[0, :3].softmax(0), beta, atol=1e-6
    )
    for i in range(3):
        summary = []
        for f in range(NUM_PAIR_FEATURES):
            total = 0.0
            for j in range(3):
                dx, dy, dz = (centroids[0, j] - centroids[0, i]).tolist()
                d = math.sqrt(dx * dx + dy * dy + dz * dz)
                size = float(log_extent[0, j] - log_extent[0, i])
                phi = [d, math.hypot(dx, dy), dx, dy, dz, math.exp(-d), size, 1]
                total += float(a[j]) * phi[f]
            summary.append(total)
        summary += [float(log_extent[0, i]), float(centroids[0, i, 2])]
        assert math.isclose(float(scores[i]), float(torch.tensor(summary) @ g), rel_tol=1e-4, abs_tol=1e-4)


def test_relation_head_adds_one_score_per_query_to_all_its_span_logits():
    units, xyz = torch.randn(1, 20, 16), torch.rand(1, 20, 3) * 4
    valid = torch.ones(1, 20, dtype=torch.bool)
    text, text_valid = torch.randn(1, 5, 16), torch.ones(1, 5, dtype=torch.bool)
    plain = _decoder(False, True)
    torch.manual_seed(0)
    cfg = MaskDecoderConfig(
        dim=16, num_heads=2, ffn_dim=32, num_layers=2, num_queries=4, anchored_queries=True, relation_head=True
    )
    relational = MaskDecoder(cfg, max_text_len=8).eval()
    missing, _ = relational.load_state_dict(plain.state_dict(), strict=False)
    assert all(name.startswith("relation_head.") for name in missing)
    with torch.no_grad():
        a = plain(units, plain.pos_3d(xyz), valid, text, text_valid, xyz)
        b = relational(units, relational.pos_3d(xyz), valid, text, text_valid, xyz)
        assert torch.allclose(a.span_logits, b.span_logits, atol=1e-5)
        torch.nn.init.normal_(relational.relation_head.weights.bias)
        c = relational(units, relational.pos_3d(xyz), valid, text, text_valid, xyz)
    shift = c.span_logits - a.span_logits  # (L, B, Q, T): the same for every token of a query
    assert torch.allclose(shift, shift[..., :1].expand_as(shift), atol=1e-4)
    assert shift.abs().max() > 1e-3
    assert torch.allclose(c.mask_logits, a.mask_logits, atol=1e-5)


def test_confident_geometry_option_reaches_the_relation_head_and_leaves_the_masks():
    units, xyz = torch.randn(1, 20, 16), torch.rand(1, 20, 3) * 4
    valid = torch.ones(1, 20, dtype=torch.bool)
    text, text_valid = torch.randn(1, 5, 16), torch.ones(1, 5, dtype=torch.bool)
    outputs = []
    for confident in (False, True):
        torch.manual_seed(0)
        cfg = MaskDecoderConfig(
            dim=16, num_heads=2, ffn_dim=32, num_layers=2, num_queries=4, anchored_queries=True,
            relation_head=True, confident_geometry=confident,
        )  # fmt: skip
        decoder = MaskDecoder(cfg, max_text_len=8).eval()
        torch.nn.init.normal_(decoder.relation_head.weights.bias)
        with torch.no_grad():
            outputs.append(decoder(units, decoder.pos_3d(xyz), valid, text, text_valid, xyz))
    soft, confident = outputs
    assert torch.allclose(soft.mask_logits, confident.mask_logits, atol=1e-6)
    assert not torch.allclose(soft.span_logits, confident.span_logits, atol=1e-3)
