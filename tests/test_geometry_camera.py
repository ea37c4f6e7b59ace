"""Camera maths against hand-worked pixels, round trips and the published ScanNet intrinsics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import univlg.geometry as g
from tests.conftest import require_realdata

DTYPES = [torch.float32, torch.float64]
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def random_pose(dtype, generator=None) -> torch.Tensor:
    """(4, 4) rigid camera-to-world pose with a random rotation and translation."""
    q, r = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    pose = torch.eye(4, dtype=torch.float64)
    pose[:3, :3] = q
    pose[:3, 3] = torch.randn(3, dtype=torch.float64, generator=generator) * 2
    return pose.to(dtype)


def intrinsic(fx, fy, cx, cy, dtype=torch.float64) -> torch.Tensor:
    return torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_hand_worked_pixel(dtype):
    depth = torch.zeros(1, 3, 4, dtype=dtype)
    depth[0, 2, 3] = 2.0  # row v=2, column u=3
    k = intrinsic(2.0, 4.0, 1.0, 1.0, dtype)[None]
    pose = torch.eye(4, dtype=dtype)
    pose[:3, :3] = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]], dtype=dtype)
    pose[:3, 3] = torch.tensor([1.0, 2.0, 3.0], dtype=dtype)
    points, valid = g.unproject_depth(depth, k, pose[None])
    # camera point: x = (3-1)*2/2 = 2, y = (2-1)*2/4 = 0.5, z = 2; rotated: (-0.5, 2, 2); plus t: (0.5, 4, 5)
    assert points.dtype == dtype and points.shape == (1, 3, 4, 3)
    torch.testing.assert_close(points[0, 2, 3], torch.tensor([0.5, 4.0, 5.0], dtype=dtype))
    assert valid.sum() == 1 and valid[0, 2, 3]
    assert (points[~valid] == 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_unproject_project_round_trip(dtype, device):
    gen = torch.Generator().manual_seed(1)
    views, height, width = 3, 12, 16
    depth = (torch.rand(views, height, width, generator=gen, dtype=torch.float64) * 5 + 0.5).to(dtype)
    ks = torch.stack([intrinsic(20.0 + 5 * i, 22.0 - i, 7.3 + i, 5.1, dtype) for i in range(views)])
    poses = torch.stack([random_pose(dtype, gen) for _ in range(views)])
    depth, ks, poses = depth.to(device), ks.to(device), poses.to(device)
    points, valid = g.unproject_depth(depth, ks, poses)
    assert valid.all()
    uv, z = g.project_points(points.reshape(views, -1, 3), ks, poses)
    rows, cols = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    expected_uv = torch.stack([cols, rows], dim=-1).reshape(1, -1, 2).to(uv).expand(views, -1, -1)
    tol = 1e-9 if dtype == torch.float64 else 2e-3
    torch.testing.assert_close(uv, expected_uv, atol=tol, rtol=0)
    torch.testing.assert_close(z, depth.reshape(views, -1), atol=tol, rtol=tol)


def test_project_shared_points_and_behind_camera():
    k = intrinsic(10.0, 10.0, 5.0, 5.0)[None].expand(2, 3, 3)
    poses = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    poses[1, 2, 3] = 3.0  # second camera 3 m further along z: the point at z=2 is behind it
    points = torch.tensor([[1.0, -1.0, 2.0]], dtype=torch.float64)
    uv, z = g.project_points(points, k, poses)
    assert uv.shape == (2, 1, 2) and z.shape == (2, 1)
    torch.testing.assert_close(uv[0, 0], torch.tensor([10.0, 0.0], dtype=torch.float64))  # 10*1/2+5, 10*-1/2+5
    assert z[0, 0] == 2.0 and z[1, 0] == -1.0
    assert torch.isnan(uv[1, 0]).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_invalid_depth_never_becomes_a_point(dtype):
    depth = torch.tensor([[[0.0, -1.0, float("nan"), float("inf"), 15.0, 15.5, 3.0, -float("inf")]]], dtype=dtype)
    k = intrinsic(5.0, 5.0, 3.5, 0.0, dtype)[None]
    points, valid = g.unproject_depth(depth, k, random_pose(dtype)[None], max_depth=15.0)
    assert valid[0, 0].tolist() == [False, False, False, False, True, False, True, False]
    assert torch.isfinite(points).all()
    assert (points[~valid] == 0).all()
    _, all_valid = g.unproject_depth(depth, k, torch.eye(4, dtype=dtype)[None], max_depth=None)
    assert all_valid[0, 0].tolist() == [False, False, False, False, True, True, True, False]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_pose_invalidates_the_whole_frame(bad):
    depth = torch.full((2, 4, 5), 2.0)
    k = intrinsic(5.0, 5.0, 2.0, 1.5, torch.float32)[None].expand(2, 3, 3)
    poses = torch.eye(4).repeat(2, 1, 1)
    poses[0, 1, 2] = bad
    points, valid = g.unproject_depth(depth, k, poses)
    assert not valid[0].any() and valid[1].all()
    assert (points[0] == 0).all() and torch.isfinite(points).all()
    uv, z = g.project_points(torch.tensor([[0.0, 0.0, 1.0]]), k, poses)
    assert torch.isnan(uv[0]).all() and torch.isnan(z[0]).all()
    assert torch.isfinite(uv[1]).all() and z[1, 0] == 1.0


def test_singular_pose_projects_to_nan():
    k = intrinsic(5.0, 5.0, 2.0, 1.5)[None].expand(2, 3, 3)
    poses = torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)
    poses[0] = 0.0
    uv, z = g.project_points(torch.tensor([[0.0, 0.0, 2.0]], dtype=torch.float64), k, poses)
    assert torch.isnan(uv[0]).all() and torch.isnan(z[0]).all()
    assert uv[1, 0].tolist() == [2.0, 1.5] and z[1, 0] == 2.0


def test_unproject_gradient_reaches_depth():
    depth = torch.full((1, 2, 2), 2.0, requires_grad=True)
    k = intrinsic(1.0, 1.0, 0.0, 0.0, torch.float32)[None]
    points, valid = g.unproject_depth(depth, k, torch.eye(4)[None])
    points[valid].sum().backward()
    # d(x + y + z)/dz = (u - cx)/fx + (v - cy)/fy + 1
    expected = torch.tensor([[[1.0, 2.0], [2.0, 3.0]]])
    torch.testing.assert_close(depth.grad, expected)


def test_resize_intrinsics_scannet_colour_to_depth():
    colour = torch.tensor(
        [[1169.621094, 0.0, 646.295044], [0.0, 1167.105103, 489.927032], [0.0, 0.0, 1.0]], dtype=torch.float64
    )
    depth_k = g.resize_intrinsics(colour, (968, 1296), (480, 640))
    # ScanNet's published depth intrinsic: fx=577.590698 fy=578.729797 cx=318.905426 cy=242.683609
    assert math.isclose(depth_k[0, 0].item(), 577.590698, abs_tol=0.01)
    assert math.isclose(depth_k[0, 2].item(), 318.905426, abs_tol=0.01)
    assert math.isclose(depth_k[1, 1].item(), 578.729797, abs_tol=0.1)
    assert math.isclose(depth_k[1, 2].item(), 242.683609, abs_tol=0.1)
    assert depth_k[2].tolist() == [0.0, 0.0, 1.0]


def test_resize_maps_pixel_edges_to_edges():
    # the left edge of pixel 0 (u=-0.5) and right edge of the last pixel (u=W-0.5) stay the image borders
    k = intrinsic(100.0, 100.0, -0.5, -0.5)
    k4 = torch.eye(4, dtype=torch.float64)
    k4[:3, :3] = intrinsic(100.0, 80.0, 99.5, 49.5)
    small = g.resize_intrinsics(torch.stack([k, k4[:3, :3]]), (100, 200), (25, 50))
    assert small[0, 0, 2] == -0.5 and small[0, 1, 2] == -0.5
    torch.testing.assert_close(small[1, 0, 2], torch.tensor(24.5, dtype=torch.float64))  # image centre stays
    torch.testing.assert_close(small[1, 1, 2], torch.tensor(12.0, dtype=torch.float64))
    assert g.resize_intrinsics(k4, (100, 200), (25, 50)).shape == (4, 4)


def test_crop_intrinsics_matches_cropped_unprojection():
    gen = torch.Generator().manual_seed(3)
    depth = torch.rand(1, 10, 12, generator=gen, dtype=torch.float64) + 1
    k = intrinsic(9.0, 8.0, 5.5, 4.5)[None]
    pose = random_pose(torch.float64, gen)[None]
    full, _ = g.unproject_depth(depth, k, pose)
    top, left = 3, 4
    cropped, _ = g.unproject_depth(depth[:, top:, left:], g.crop_intrinsics(k, top, left), pose)
    torch.testing.assert_close(cropped, full[:, top:, left:])
    per_frame = g.crop_intrinsics(k.expand(2, 3, 3), torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
    assert per_frame[:, 0, 2].tolist() == [2.5, 1.5] and per_frame[:, 1, 2].tolist() == [3.5, 2.5]


def test_resized_unprojection_matches_numpy_formula():
    """A resized depth map unprojects with the resized intrinsics exactly like the formula written in numpy."""
    k = intrinsic(1169.621094, 1167.105103, 646.295044, 489.927032)
    k_small = g.resize_intrinsics(k, (968, 1296), (6, 8)).numpy()
    depth = np.linspace(0.5, 3, 48).reshape(1, 6, 8)
    points, _ = g.unproject_depth(torch.from_numpy(depth), torch.from_numpy(k_small)[None], torch.eye(4)[None])
    v, u = np.mgrid[0:6, 0:8]
    x = (u - k_small[0, 2]) * depth[0] / k_small[0, 0]
    y = (v - k_small[1, 2]) * depth[0] / k_small[1, 1]
    np.testing.assert_allclose(points[0].numpy(), np.stack([x, y, depth[0]], axis=-1), rtol=1e-12)


def test_real_scannet_depth_lands_on_the_mesh():
    """Real frames unprojected with the resized colour intrinsic lie on the official mesh (README: ~3 cm)."""
    from PIL import Image
    from plyfile import PlyData

    root = require_realdata("scannet_scene0000_00")
    colour = np.loadtxt(root / "frames" / "intrinsic_color.txt")[:3, :3]
    k = g.resize_intrinsics(torch.from_numpy(colour), (968, 1296), (480, 640))
    names = ["00000", "00150"]
    depth = np.stack(
        [np.asarray(Image.open(root / "frames" / "depth" / f"{n}.png"), dtype=np.float64) / 1000 for n in names]
    )
    poses = np.stack([np.loadtxt(root / "frames" / "pose" / f"{n}.txt") for n in names])
    vertex = PlyData.read(str(root / "scan" / "scene0000_00_vh_clean_2.ply"))["vertex"]
    mesh = torch.from_numpy(np.stack([vertex["x"], vertex["y"], vertex["z"]], axis=1).astype(np.float64))
    depth_t = torch.from_numpy(depth)[:, ::8, ::8]  # pixel 8i becomes i: u = 8 u', so fx' = fx / 8, cx' = cx / 8
    k_sub = k.clone()
    k_sub[:2] /= 8
    points, valid = g.unproject_depth(depth_t, k_sub.expand(2, 3, 3), torch.from_numpy(poses))
    assert valid.float().mean() > 0.8
    dist, _ = g.knn(points[valid], mesh, 1)
    assert dist.median() < 0.05
    wrong, wrong_valid = g.unproject_depth(depth_t, k_sub.expand(2, 3, 3), torch.from_numpy(poses[::-1].copy()))
    assert g.knn(wrong[wrong_valid], mesh, 1)[0].median() > 0.1
