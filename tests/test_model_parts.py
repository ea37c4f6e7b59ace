"""Model building blocks against brute-force computations written out here."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from univlg.geometry import idw_interpolate
from univlg.model.cross_view import Backbone3D, CrossViewAttention
from univlg.model.deformable import MSDeformAttn, reference_points
from univlg.model.layers import sample_group_norm, sine_position_encoding_2d
from univlg.model.lifting import build_units, idw_matrix, make_patch_cloud, make_voxel_grid, patch_point_map
from univlg.model.predictions import unit_targets


def _bilinear(image: np.ndarray, x: float, y: float) -> np.ndarray:
    """image (C, H, W); (x, y) continuous pixel coordinates, pixel centres at integers, zeros outside."""
    c, h, w = image.shape
    x0, y0 = math.floor(x), math.floor(y)
    out = np.zeros(c)
    for yy in (y0, y0 + 1):
        for xx in (x0, x0 + 1):
            weight = (1 - abs(x - xx)) * (1 - abs(y - yy))
            if 0 <= xx < w and 0 <= yy < h:
                out += weight * image[:, yy, xx]
    return out


def test_deformable_attention_matches_brute_force_bilinear_sampling():
    torch.manual_seed(0)
    dim, heads, levels, points = 8, 2, 2, 3
    shapes = [(3, 4), (2, 5)]
    attn = MSDeformAttn(dim, levels, heads, points)
    with torch.no_grad():
        attn.sampling_offsets.weight.normal_(0, 0.5)
        attn.attention_weights.weight.normal_(0, 0.5)
    tokens = sum(h * w for h, w in shapes)
    value = torch.randn(1, tokens, dim)
    query = torch.randn(1, 4, dim)
    refs = torch.rand(1, 4, 2)
    out = attn(query, refs, value, shapes)

    v = attn.value_proj(value)[0].detach().numpy()
    off = attn.sampling_offsets(query)[0].detach().numpy().reshape(4, heads, levels, points, 2)
    logit = attn.attention_weights(query)[0].detach().numpy().reshape(4, heads, levels * points)
    weights = (np.exp(logit) / np.exp(logit).sum(-1, keepdims=True)).reshape(4, heads, levels, points)
    d = dim // heads
    expected = np.zeros((4, dim))
    for q in range(4):
        for hd in range(heads):
            start = 0
            for lv, (h, w) in enumerate(shapes):
                grid = v[start : start + h * w, hd * d : (hd + 1) * d].T.reshape(d, h, w)
                start += h * w
                for p in range(points):
                    x = (refs[0, q, 0].item() + off[q, hd, lv, p, 0] / w) * w - 0.5
                    y = (refs[0, q, 1].item() + off[q, hd, lv, p, 1] / h) * h - 0.5
                    expected[q, hd * d : (hd + 1) * d] += weights[q, hd, lv, p] * _bilinear(grid, x, y)
    expected = expected @ attn.output_proj.weight.detach().numpy().T + attn.output_proj.bias.detach().numpy()
    np.testing.assert_allclose(out[0].detach().numpy(), expected, atol=1e-5)


def test_reference_points_are_pixel_centres():
    refs = reference_points([(2, 4)], "cpu")[0]
    assert refs[0].tolist() == [0.125, 0.25] and refs[5].tolist() == [0.375, 0.75]


def test_cross_view_attention_matches_brute_force():
    torch.manual_seed(0)
    dim, heads, k = 8, 2, 3
    module = CrossViewAttention(dim, heads, 16, num_layers=2, knn=k)
    xyz = torch.rand(9, 3) * 2
    batch = torch.tensor([0] * 5 + [1] * 4)
    grid = make_voxel_grid(xyz, batch, 0.01)  # every point its own voxel
    features = torch.randn(grid.num, dim)
    out = module(features, grid).detach().numpy()

    centres, vb = grid.xyz.numpy(), grid.batch.numpy()
    x = features.numpy().astype(np.float64)
    pos = lambda p: module.pos(torch.as_tensor(p, dtype=torch.float32)).detach().numpy()  # noqa: E731
    for attention, ffn, norm in zip(module.attention, module.ffn, module.out_norm, strict=True):
        new = np.zeros_like(x)
        for i in range(len(x)):
            same = np.flatnonzero(vb == vb[i])
            nbrs = same[np.argsort(np.linalg.norm(centres[same] - centres[i], axis=1))[:k]]
            q_in = norm_np(x[i], attention.norm) + pos(np.zeros(3))
            keys = x[nbrs] + pos(centres[nbrs] - centres[i])
            a = attention.attn
            q = lin(q_in, a.q_proj)
            kk, vv = lin(keys, a.k_proj), lin(x[nbrs], a.v_proj)
            d = dim // heads
            o = np.zeros(dim)
            for hd in range(heads):
                s = slice(hd * d, (hd + 1) * d)
                score = kk[:, s] @ q[s] / math.sqrt(d)
                w = np.exp(score - score.max())
                o[s] = (w / w.sum()) @ vv[:, s]
            y = x[i] + lin(o, a.out_proj)
            y = y + lin(np.maximum(lin(norm_np(y, ffn.norm), ffn.linear1), 0), ffn.linear2)
            new[i] = norm_np(y, norm)
        x = new
    np.testing.assert_allclose(out, x, atol=1e-4)


def lin(x, layer):
    return x @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()


def norm_np(x, layer):
    mean = x.mean(-1, keepdims=True)
    var = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + layer.eps) * layer.weight.detach().numpy() + layer.bias.detach().numpy()


def test_backbone_3d_starts_as_identity_and_modulates_only_valid_patches():
    torch.manual_seed(0)
    from univlg.config import CrossViewConfig

    module = Backbone3D(16, (1, 1), CrossViewConfig(dim=8, num_heads=2, ffn_dim=16, knn=3, voxel_size=0.5))
    levels = [torch.randn(2, 3, 4, 16) for _ in range(2)]
    xyz = torch.rand(2, 3, 4, 3) * 3
    valid = torch.rand(2, 3, 4) > 0.3
    cloud = make_patch_cloud(xyz, valid, torch.tensor([0, 0]))
    same = module(levels, cloud)
    assert all(torch.equal(a, b) for a, b in zip(same, levels, strict=True))
    with torch.no_grad():
        for up in module.up:
            up[2].weight.normal_()
    changed = module(levels, cloud)
    for a, b in zip(changed, levels, strict=True):
        assert torch.equal(a[~valid], b[~valid]) and not torch.allclose(a[valid], b[valid])


def test_sample_group_norm_equals_group_norm_per_sample():
    torch.manual_seed(0)
    x = torch.randn(11, 8)
    sample = torch.tensor([0] * 4 + [1] * 7)
    norm = nn.GroupNorm(2, 8)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    out = sample_group_norm(x, sample, 2, 2, norm.weight, norm.bias)
    for b in range(2):
        expected = norm(x[sample == b].T[None])[0].T
        torch.testing.assert_close(out[sample == b], expected, atol=1e-5, rtol=1e-5)


def test_sine_encoding_matches_detr_formula():
    xy = torch.tensor([[0.25, 0.5]])
    dim = 8
    out = sine_position_encoding_2d(xy, dim)[0]
    half = dim // 2
    expected = []
    for value in (0.5, 0.25):  # y first, then x
        for i in range(half):
            angle = value * 2 * math.pi / 10000 ** (2 * (i // 2) / half)
            expected.append(math.sin(angle) if i % 2 == 0 else math.cos(angle))
    torch.testing.assert_close(out, torch.tensor(expected))


def test_idw_matrix_equals_geometry_interpolation():
    torch.manual_seed(0)
    ref, query = torch.rand(40, 3), torch.rand(25, 3)
    ref_batch = torch.tensor([0] * 30 + [1] * 10)
    query_batch = torch.tensor([0] * 20 + [1] * 5)
    feat = torch.randn(40, 6)
    expected = idw_interpolate(ref, feat, query, 4, ref_batch, query_batch)
    got = torch.sparse.mm(idw_matrix(query, query_batch, ref, ref_batch, 4), feat)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_patch_point_map_takes_the_centre_pixel():
    grid = torch.arange(8 * 8 * 3, dtype=torch.float32).view(1, 8, 8, 3)
    valid = torch.ones(1, 8, 8, dtype=torch.bool)
    valid[0, 2, 6] = False
    xyz, ok = patch_point_map(grid, valid, 4)
    assert torch.equal(xyz[0, 0, 1], grid[0, 2, 6]) and not ok[0, 0, 1] and ok.sum() == 3


def test_units_follow_voxels_and_min_segment_rule():
    rng = np.random.default_rng(0)
    points = torch.from_numpy(rng.uniform(0, 1, (2, 300, 3)).astype(np.float32))
    valid = torch.ones(2, 300, dtype=torch.bool)
    valid[1, 250:] = False
    segments = torch.from_numpy(rng.integers(0, 12, (2, 300)))
    units, _ = build_units(points, valid, 0.25, segments)
    for b in range(2):
        n = int(valid[b].sum())
        cells = [tuple(c) for c in np.floor(points[b, :n].numpy() / 0.25).astype(int)]
        voxel_segment = {}
        for cell, seg in zip(cells, segments[b, :n].tolist(), strict=True):
            voxel_segment[cell] = min(seg, voxel_segment.get(cell, seg))
        # points share a unit exactly when their voxels share a segment
        keys = [voxel_segment[c] for c in cells]
        assign = units.point_to_unit[b, :n].tolist()
        assert len(set(assign)) == len(set(keys)) == int(units.valid[b].sum())
        assert len({(k, a) for k, a in zip(keys, assign, strict=True)}) == len(set(keys))
        # unit centroid = mean of its voxels' centroids
        for unit in set(assign):
            members = [c for c, a in zip(cells, assign, strict=True) if a == unit]
            centroids = [points[b, :n][[cc == c for cc in cells]].mean(0) for c in set(members)]
            torch.testing.assert_close(units.xyz[b, unit], torch.stack(centroids).mean(0), atol=1e-5, rtol=1e-5)
    assert (units.point_to_unit[1, 250:] == -1).all()


def test_unit_targets_average_voxel_fractions_per_unit():
    # 6 points; voxels {0,1,2}, {3,4}, {5}; units {voxel 0, voxel 1}, {voxel 2}
    point_to_voxel = torch.tensor([0, 0, 0, 1, 1, 2, -1])
    voxel_to_unit = torch.tensor([0, 0, 1])
    masks = torch.tensor([[1, 1, 0, 0, 0, 1, 1], [1, 1, 1, 1, 0, 0, 0]], dtype=torch.bool)
    out = unit_targets(masks, point_to_voxel, voxel_to_unit, 2)
    # mask 0: voxel fractions 2/3, 0, 1 -> unit 0 mean 1/3 (no), unit 1: 1 (yes)
    # mask 1: voxel fractions 1, 1/2, 0 -> unit 0 mean 3/4 (yes), unit 1: 0 (no)
    assert out.tolist() == [[0.0, 1.0], [1.0, 0.0]]
