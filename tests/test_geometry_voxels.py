"""Voxelization and scatter reductions against Python loops."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest
import torch

import univlg.geometry as g

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def loop_voxels(points, voxel_size, batch=None):
    """{(batch, i, j, k): [point indices]} by a plain Python loop over points."""
    groups = defaultdict(list)
    for n, p in enumerate(points.tolist()):
        b = 0 if batch is None else int(batch[n])
        groups[(b, *(math.floor(c / voxel_size) for c in p))].append(n)
    return groups


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_voxel_centroids_are_per_voxel_means(dtype, device):
    points = (torch.rand(400, 3, dtype=torch.float64) * 2 - 1).to(dtype)
    voxel_of_point, centers = g.voxelize(points.to(device), 0.5)
    voxel_of_point, centers = voxel_of_point.cpu(), centers.cpu()
    groups = loop_voxels(points, 0.5)
    assert centers.shape == (len(groups), 3) and centers.dtype == dtype
    for members in groups.values():
        ids = voxel_of_point[members]
        assert (ids == ids[0]).all()
        expected = points[members].double().mean(dim=0)
        torch.testing.assert_close(centers[ids[0]].double(), expected, atol=1e-6, rtol=0)
    # different cells give different voxels
    assert len({int(voxel_of_point[m[0]]) for m in groups.values()}) == len(groups)


def test_centroid_differs_from_cell_centre_and_handles_negative_coordinates():
    points = torch.tensor([[-0.1, 0.0, 0.0], [-0.3, 0.0, 0.0], [0.1, 0.0, 0.0]])
    voxel_of_point, centers = g.voxelize(points, 1.0)
    assert voxel_of_point.tolist() == [0, 0, 1]  # floor(-0.1) = -1 sorts before 0
    torch.testing.assert_close(centers, torch.tensor([[-0.2, 0.0, 0.0], [0.1, 0.0, 0.0]]))


def test_batches_never_mix_and_are_contiguous():
    points = torch.rand(300, 3) * 3
    batch = torch.randint(0, 3, (300,))
    voxel_of_point, centers = g.voxelize(points, 1.0, batch=batch)
    groups = loop_voxels(points, 1.0, batch)
    assert centers.shape[0] == len(groups)
    for members in groups.values():
        ids = voxel_of_point[members]
        assert (ids == ids[0]).all()
        torch.testing.assert_close(centers[ids[0]], points[members].mean(dim=0))
    vb = g.voxel_batch(voxel_of_point, batch)
    assert vb.shape == (len(groups),)
    assert (vb[voxel_of_point] == batch).all()
    assert (vb[1:] >= vb[:-1]).all()
    assert sorted(set(vb.tolist())) == [0, 1, 2]
    # the same cell in two batch elements gives two voxels
    twin = torch.zeros(2, 3)
    ids, _ = g.voxelize(twin, 1.0, batch=torch.tensor([1, 0]))
    assert ids.tolist() == [1, 0]


def test_huge_coordinate_range_falls_back_to_row_unique():
    points = torch.tensor([[-1e15, 0.0, 1e15], [1e15, 2.0, -1e15], [-1e15, 0.1, 1e15]], dtype=torch.float64)
    ids, centers = g.voxelize(points, 1e-3)
    assert ids[0] != ids[2] and centers.shape == (3, 3)
    ids, _ = g.voxelize(points, 1.0)
    assert ids[0] == ids[2] != ids[1]


def test_voxelize_rejects_bad_input_and_accepts_empty():
    with pytest.raises(ValueError):
        g.voxelize(torch.tensor([[0.0, float("nan"), 0.0]]), 0.1)
    with pytest.raises(ValueError):
        g.voxelize(torch.zeros(3, 3), 0.0)
    ids, centers = g.voxelize(torch.zeros(0, 3), 0.1)
    assert ids.shape == (0,) and centers.shape == (0, 3)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_scatter_reductions_against_loops(dtype, device):
    src = torch.randn(50, 4, dtype=dtype)
    index = torch.randint(0, 7, (50,))
    index[index == 5] = 6  # row 5 stays empty
    dim_size = 8  # row 7 too
    mean = g.scatter_mean(src.to(device), index.to(device), dim_size).cpu()
    low = g.scatter_min(src.to(device), index.to(device), dim_size).cpu()
    high = g.scatter_max(src.to(device), index.to(device), dim_size).cpu()
    for row in range(dim_size):
        members = src[index == row]
        if len(members) == 0:
            for out in (mean, low, high):
                assert (out[row] == 0).all()
            continue
        torch.testing.assert_close(mean[row], members.mean(dim=0))
        torch.testing.assert_close(low[row], members.min(dim=0).values)
        torch.testing.assert_close(high[row], members.max(dim=0).values)


def test_scatter_default_size_extra_dims_and_integers():
    src = torch.arange(12).view(6, 2)
    index = torch.tensor([0, 2, 2, 0, 1, 2])
    assert g.scatter_max(src, index).tolist() == [[6, 7], [8, 9], [10, 11]]
    assert g.scatter_min(src, index).tolist() == [[0, 1], [8, 9], [2, 3]]
    src3 = torch.randn(6, 2, 3)
    torch.testing.assert_close(g.scatter_mean(src3, index)[2], src3[[1, 2, 5]].mean(dim=0))


def test_scatter_gradients():
    src = torch.tensor([1.0, 3.0, 2.0, 5.0], requires_grad=True)
    index = torch.tensor([0, 0, 1, 1])
    (g.scatter_mean(src, index) * torch.tensor([1.0, 10.0])).sum().backward()
    assert src.grad.tolist() == [0.5, 0.5, 5.0, 5.0]
    src.grad = None
    g.scatter_max(src, index).sum().backward()
    assert src.grad.tolist() == [0.0, 1.0, 0.0, 1.0]
    src.grad = None
    g.scatter_min(src, index).sum().backward()
    assert src.grad.tolist() == [1.0, 0.0, 1.0, 0.0]
