"""Anchored queries (univlg.model.anchors) against brute-force and hand-worked values."""

import math

import numpy as np
import torch

from univlg.config import MaskDecoderConfig
from univlg.geometry.neighbors import batched_farthest_point_sample as farthest_points
from univlg.model.anchors import MAX_PENALTY, QueryAnchors, gaussian_prior, sample_frame
from univlg.model.mask_decoder import MaskDecoder


def brute_force_fps(points: np.ndarray, k: int) -> list[int]:
    chosen = [0]
    while len(chosen) < k:
        best, best_distance = None, -1.0
        for i, p in enumerate(points):
            nearest = min(float(((p - points[j]) ** 2).sum()) for j in chosen)
            if nearest > best_distance:
                best, best_distance = i, nearest
        chosen.append(best)
    return chosen


def test_farthest_points_match_brute_force_per_sample_and_skip_padding():
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-3, 3, (30, 3)), rng.uniform(0, 1, (12, 3))
    xyz = torch.zeros(2, 30, 3, dtype=torch.float64)
    xyz[0] = torch.from_numpy(a)
    xyz[1, :12] = torch.from_numpy(b)
    xyz[1, 12:] = 100.0  # padding far away: must never be picked
    valid = torch.zeros(2, 30, dtype=torch.bool)
    valid[0] = True
    valid[1, :12] = True
    picks = farthest_points(xyz, valid, 6)
    assert picks[0].tolist() == brute_force_fps(a, 6)
    assert picks[1].tolist() == brute_force_fps(b, 6)


def test_sample_frame_is_mean_and_per_axis_rms_of_valid_points():
    xyz = torch.tensor([[[0.0, 0, 0], [2, 0, 0], [0, 4, 0], [9, 9, 9]]])
    valid = torch.tensor([[True, True, True, False]])
    centre, spread = sample_frame(xyz, valid)
    assert torch.allclose(centre, torch.tensor([[[2 / 3, 4 / 3, 0.0]]]))
    points = xyz[0, :3] - centre[0]
    expected = math.sqrt(float((points**2).sum()) / (3 * 3))
    assert math.isclose(float(spread), expected, rel_tol=1e-6)


def test_gaussian_prior_hand_worked_and_clamped():
    xyz = torch.tensor([[[0.0, 0, 0], [0.3, 0.4, 0], [10, 0, 0]]])
    anchors = torch.tensor([[[0.0, 0, 0]]])
    sigma = torch.tensor([[[0.5]]])
    prior = gaussian_prior(xyz, anchors, sigma)[0, 0]
    assert prior[0] == 0.0
    assert math.isclose(float(prior[1]), -0.5 * 0.25 / 0.25, rel_tol=1e-6)  # distance 0.5 = one sigma
    assert float(prior[2]) == -MAX_PENALTY


def test_first_refinement_keeps_the_sampled_anchors_and_initial_width():
    anchors_module = QueryAnchors(dim=16, init_sigma=0.2)
    queries = torch.randn(2, 5, 16)
    anchors = torch.randn(2, 5, 3)
    spread = torch.tensor([[[1.5]], [[0.5]]])
    refined, sigma = anchors_module.update(queries, anchors, spread)
    assert torch.equal(refined, anchors)
    assert torch.allclose(sigma, (0.2 * spread).expand(2, 5, 1))


def test_anchored_decoder_masks_are_content_plus_prior_of_sampled_anchors():
    torch.manual_seed(0)
    cfg = MaskDecoderConfig(dim=16, num_heads=2, ffn_dim=32, num_layers=1, num_queries=3, anchored_queries=True)
    decoder = MaskDecoder(cfg, max_text_len=8).eval()
    units = torch.randn(1, 20, 16)
    xyz = torch.rand(1, 20, 3) * 4
    valid = torch.ones(1, 20, dtype=torch.bool)
    text, text_valid = torch.randn(1, 4, 16), torch.ones(1, 4, dtype=torch.bool)
    with torch.no_grad():
        out = decoder(units, decoder.pos_3d(xyz), valid, text, text_valid, xyz)
        _, content, _ = decoder.heads(decoder.query_feat.weight.expand(1, 3, -1), text, units)
    _, spread = sample_frame(xyz, valid)
    anchors = xyz[0, farthest_points(xyz, valid, 3)[0]][None]
    expected = content + gaussian_prior(xyz, anchors, (0.2 * spread).expand(1, 3, 1))
    assert out.mask_logits.shape == (2, 1, 3, 20)
    assert torch.allclose(out.mask_logits[0], expected, atol=1e-5)
