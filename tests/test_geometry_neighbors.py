"""kNN, inverse-distance interpolation and farthest point sampling against brute force."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

import univlg.geometry as g

DTYPES = [torch.float32, torch.float64]
BACKENDS = ["kdtree", "torch"]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def brute_knn(query, ref, k, query_batch=None, ref_batch=None):
    """Sorted distances (N, k) by a float64 numpy distance matrix; inf where fewer than k references."""
    q, r = query.double().cpu().numpy(), ref.double().cpu().numpy()
    d = np.sqrt(((q[:, None, :] - r[None, :, :]) ** 2).sum(-1))
    if query_batch is not None:
        d[query_batch.cpu().numpy()[:, None] != ref_batch.cpu().numpy()[None, :]] = np.inf
    d = np.sort(d, axis=1)[:, :k]
    return np.pad(d, ((0, 0), (0, k - d.shape[1])), constant_values=np.inf)


def check_against_brute(query, ref, k, dist, idx, query_batch=None, ref_batch=None, tol=1e-5):
    expected = brute_knn(query, ref, k, query_batch, ref_batch)
    assert dist.shape == idx.shape == (query.shape[0], k)
    np.testing.assert_allclose(dist.detach().double().cpu().numpy(), expected, atol=tol, rtol=tol)
    real = idx >= 0
    assert (real.cpu().numpy() == np.isfinite(expected)).all()
    # the indices are real neighbours: their true distances are the returned ones (robust to ties)
    gathered = ref.double()[idx.clamp_min(0)]
    true_dist = (query.double()[:, None] - gathered).norm(dim=-1)
    torch.testing.assert_close(true_dist[real], dist.double()[real], atol=tol, rtol=tol)
    for row in idx.cpu().tolist():
        kept = [i for i in row if i >= 0]
        assert len(set(kept)) == len(kept)
    if query_batch is not None:
        same = ref_batch[idx.clamp_min(0)] == query_batch[:, None]
        assert same[real].all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_knn_matches_brute_force(dtype, backend, device):
    query = torch.rand(300, 3, dtype=dtype, device=device) * 4
    ref = torch.rand(500, 3, dtype=dtype, device=device) * 4
    dist, idx = g.knn(query, ref, 8, backend=backend, chunk_size=37)
    assert dist.dtype == dtype and idx.dtype == torch.long and dist.device == query.device
    assert (dist[:, 1:] >= dist[:, :-1]).all()
    check_against_brute(query, ref, 8, dist, idx)


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_batched_with_padding(backend):
    query_batch = torch.tensor([0] * 50 + [1] * 40 + [2] * 30 + [3] * 5)
    ref_batch = torch.tensor([2] * 3 + [0] * 70 + [1] * 60 + [0] * 20)  # element 2 has 3 refs, 3 has none
    perm_q, perm_r = torch.randperm(len(query_batch)), torch.randperm(len(ref_batch))
    query_batch, ref_batch = query_batch[perm_q], ref_batch[perm_r]
    query = torch.rand(len(query_batch), 3, dtype=torch.float64)
    ref = torch.rand(len(ref_batch), 3, dtype=torch.float64)
    dist, idx = g.knn(query, ref, 6, query_batch=query_batch, ref_batch=ref_batch, backend=backend, chunk_size=16)
    check_against_brute(query, ref, 6, dist, idx, query_batch, ref_batch, tol=1e-10)
    small = query_batch == 2
    assert (idx[small, 3:] == -1).all() and torch.isinf(dist[small, 3:]).all() and (idx[small, :3] >= 0).all()
    empty = query_batch == 3
    assert (idx[empty] == -1).all() and torch.isinf(dist[empty]).all()


def test_knn_k_larger_than_reference_and_empty_inputs():
    ref = torch.tensor([[0.0, 0, 0], [1.0, 0, 0]])
    dist, idx = g.knn(torch.tensor([[0.9, 0.0, 0.0]]), ref, 4)
    assert idx.tolist() == [[1, 0, -1, -1]]
    torch.testing.assert_close(dist[0, :2], torch.tensor([0.1, 0.9]))
    assert torch.isinf(dist[0, 2:]).all()
    dist, idx = g.knn(torch.zeros(2, 3), torch.zeros(0, 3), 3)
    assert (idx == -1).all() and torch.isinf(dist).all()
    dist, idx = g.knn(torch.zeros(0, 3), ref, 3, backend="torch")
    assert dist.shape == idx.shape == (0, 3)
    with pytest.raises(ValueError):
        g.knn(ref, ref, 0)
    with pytest.raises(ValueError):
        g.knn(ref, ref, 1, query_batch=torch.zeros(2, dtype=torch.long))


def test_torch_backend_keeps_centimetres_far_from_the_origin():
    """float32 points 1 km away, 1 cm apart: the matmul form of cdist would lose their order."""
    ref = torch.tensor([[1000.0, 0.0, 0.0], [1000.02, 0.0, 0.0], [1000.05, 0.0, 0.0]])
    query = torch.tensor([[1000.031, 0.0, 0.0]])
    _, idx = g.knn(query, ref, 3, backend="torch")
    assert idx.tolist() == [[1, 2, 0]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_distance_gradient(backend):
    query = torch.rand(20, 3, dtype=torch.float64, requires_grad=True)
    ref = torch.rand(30, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda q, r: g.knn(q, r, 4, backend=backend)[0], (query, ref))
    dist, idx = g.knn(query, ref, 1, backend=backend)
    dist.sum().backward()
    direction = (query - ref[idx[:, 0]]) / dist
    torch.testing.assert_close(query.grad, direction.detach())


def test_knn_self_query_has_zero_distance_and_finite_gradient():
    points = torch.rand(50, 3, requires_grad=True)
    dist, idx = g.knn(points, points, 2)
    assert (idx[:, 0] == torch.arange(50)).all() and (dist[:, 0] == 0).all()
    dist.sum().backward()
    assert torch.isfinite(points.grad).all()


def test_idw_hand_case_and_batches():
    ref = torch.tensor([[0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0]], dtype=torch.float64)
    feat = torch.tensor([[0.0], [10.0], [30.0], [100.0], [200.0]], dtype=torch.float64)
    query = torch.tensor([[0.25, 0, 0], [0.25, 0, 0]], dtype=torch.float64)
    out = g.idw_interpolate(
        ref, feat, query, k=2, ref_batch=torch.tensor([0, 0, 0, 1, 1]), query_batch=torch.tensor([0, 1])
    )
    # distances 0.25 and 0.75 -> weights 4 : 4/3 -> 0.75, 0.25
    torch.testing.assert_close(out, torch.tensor([[2.5], [125.0]], dtype=torch.float64))


def test_idw_reproduces_constant_field_and_exact_hits():
    ref = torch.rand(200, 3)
    const = torch.tensor([1.5, -2.0, 7.0]).expand(200, 3)
    query = torch.rand(50, 3)
    torch.testing.assert_close(g.idw_interpolate(ref, const, query, k=8), const[:50])
    feat = torch.randn(200, 4)
    torch.testing.assert_close(g.idw_interpolate(ref, feat, ref[:10], k=8), feat[:10], atol=1e-5, rtol=1e-5)


def test_idw_gradient_is_the_weights_and_empty_elements_give_zeros():
    ref = torch.rand(40, 3, dtype=torch.float64)
    feat = torch.randn(40, 2, dtype=torch.float64, requires_grad=True)
    query = torch.rand(5, 3, dtype=torch.float64)
    out = g.idw_interpolate(ref, feat, query, k=3)
    out[:, 0].sum().backward()
    d = (query[:, None] - ref[None]).norm(dim=-1)
    near_d, near_i = d.topk(3, dim=1, largest=False)
    w = 1 / (near_d + 1e-8)
    w = w / w.sum(dim=1, keepdim=True)
    expected = torch.zeros(40, dtype=torch.float64).index_add_(0, near_i.flatten(), w.flatten())
    torch.testing.assert_close(feat.grad[:, 0], expected)
    assert (feat.grad[:, 1] == 0).all()
    lonely = g.idw_interpolate(
        ref, feat, query, k=3, ref_batch=torch.zeros(40, dtype=torch.long), query_batch=torch.ones(5, dtype=torch.long)
    )
    assert (lonely == 0).all()


def brute_fps(x, n, initial=(), start=0):
    """O(n^2) loop: repeatedly take the lowest-index row farthest from every chosen row."""
    x = x.double().numpy()
    chosen = list(initial) or [start]
    while len(chosen) < min(n, len(x)):
        best, best_d = -1, -1.0
        for i in range(len(x)):
            if i in chosen:
                continue
            d = min(float(((x[i] - x[c]) ** 2).sum()) for c in chosen)
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
    return chosen[:n]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dim", [3, 16])
def test_fps_matches_brute_force(dim, device):
    x = torch.randn(60, dim, dtype=torch.float64)
    assert g.farthest_point_sample(x.to(device), 12).cpu().tolist() == brute_fps(x, 12)
    assert g.farthest_point_sample(x.to(device), 10, start=7).cpu().tolist() == brute_fps(x, 10, start=7)
    picked = g.farthest_point_sample(x.to(device), 15, initial=torch.tensor([5, 9, 5])).cpu().tolist()
    assert picked == brute_fps(x, 15, initial=[5, 9])


def test_fps_all_points_duplicates_and_truncation():
    x = torch.tensor([[0.0, 0], [0.0, 0], [1.0, 0], [0.0, 0], [0.5, 0]])
    order = g.farthest_point_sample(x, 10)
    assert sorted(order.tolist()) == [0, 1, 2, 3, 4] and order.tolist()[:3] == [0, 2, 4]
    assert order.tolist() == brute_fps(x, 10)
    assert g.farthest_point_sample(x, 2, initial=[3, 1, 4]).tolist() == [3, 1]
    assert g.farthest_point_sample(x, 0).shape == (0,)
    with pytest.raises(ValueError):
        g.farthest_point_sample(x, 2, initial=[7])


@pytest.mark.slow
def test_knn_200k_stays_under_2gb_extra_memory():
    """N = M = 200k, k = 16 on the default CPU path, in a fresh process: peak RSS grows by less than 2 GB."""
    script = (
        "import resource, torch, univlg.geometry as g\n"
        "q = torch.rand(200_000, 3) * 10; r = torch.rand(200_000, 3) * 10\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "dist, idx = g.knn(q, r, 16)\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "assert idx.shape == (200_000, 16) and bool((idx >= 0).all())\n"
        "print((after - before) * 1024)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert int(result.stdout.strip()) < 2 * 1024**3
