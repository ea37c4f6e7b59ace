"""Boxes from masks and (generalized) IoU against hand-worked cases, loops and grid counting."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

import univlg.geometry as g

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
NAN = float("nan")


def loop_boxes(points, masks):
    """(Q, 6) min/max of the masked points by a loop; NaN rows for empty masks."""
    out = []
    for mask in masks:
        chosen = points[mask]
        if len(chosen) == 0:
            out.append([NAN] * 6)
        else:
            out.append(chosen.min(dim=0).values.tolist() + chosen.max(dim=0).values.tolist())
    return torch.tensor(out, dtype=points.dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_boxes_from_bool_and_probability_masks(device):
    points = torch.randn(200, 3, dtype=torch.float64)
    probs = torch.rand(7, 200, dtype=torch.float64)
    probs[3] = 0.2  # empty
    expected = loop_boxes(points, probs > 0.5)
    got = g.boxes_from_masks(points.to(device), probs.to(device)).cpu()
    torch.testing.assert_close(got, expected, equal_nan=True)
    assert torch.isnan(got[3]).all()
    got_bool = g.boxes_from_masks(points.to(device), (probs > 0.7).to(device)).cpu()
    torch.testing.assert_close(got_bool, loop_boxes(points, probs > 0.7), equal_nan=True)
    torch.testing.assert_close(
        g.boxes_from_masks(points, probs, threshold=0.7), loop_boxes(points, probs > 0.7), equal_nan=True
    )


def test_boxes_from_masks_batched_with_invalid_points():
    points = torch.randn(2, 50, 3)
    masks = torch.rand(2, 4, 50) > 0.3
    valid = torch.ones(2, 50, dtype=torch.bool)
    valid[1, 25:] = False
    points[1, 25:] = -10.0  # padding that must never enter a box
    got = g.boxes_from_masks(points, masks, point_valid=valid)
    assert got.shape == (2, 4, 6)
    for b in range(2):
        torch.testing.assert_close(got[b], loop_boxes(points[b], masks[b] & valid[b]), equal_nan=True)
    assert g.boxes_from_masks(points[0], masks[0, :0]).shape == (0, 6)


def test_boxes_from_masks_hand_case_and_gradient():
    points = torch.tensor([[0.0, 0, 0], [1.0, 2, 3], [-1.0, 5, 1], [9.0, 9, 9]], requires_grad=True)
    masks = torch.tensor([[True, True, True, False]])
    box = g.boxes_from_masks(points, masks)
    assert box.tolist() == [[-1.0, 0.0, 0.0, 1.0, 5.0, 3.0]]
    box.sum().backward()
    assert points.grad[3].abs().sum() == 0 and points.grad[:3].abs().sum() == 6


@pytest.mark.slow
def test_boxes_from_masks_100_queries_100k_points():
    points = torch.randn(100_000, 3)
    probs = torch.rand(100, 100_000)
    got = g.boxes_from_masks(points, probs)
    for q in (0, 57, 99):
        torch.testing.assert_close(got[q], loop_boxes(points, probs[q : q + 1] > 0.5)[0])


def test_soft_boxes_converge_to_hard_boxes():
    gen = torch.Generator().manual_seed(5)
    points = torch.rand(2, 300, 3, dtype=torch.float64, generator=gen) * 4
    probs = torch.rand(2, 6, 300, dtype=torch.float64, generator=gen)
    # convergence is per point, at a speed set by |prob - 0.5|: keep a margin of 0.01 in this test
    probs = torch.where((probs - 0.5).abs() < 0.01, torch.full_like(probs, 0.9), probs)
    probs[0, 0] = torch.where(probs[0, 0] > 0.5, 0.5, probs[0, 0])  # prob == 0.5 exactly is outside
    probs[0, 0, :5] = 0.95
    hard = g.boxes_from_masks(points, probs)
    errors = []
    for temperature in (0.1, 0.03, 0.01, 0.003, 0.001, 0.0003):
        soft = g.soft_boxes_from_masks(points, probs, temperature=temperature)
        assert torch.isfinite(soft).all()
        errors.append((soft - hard).abs().max().item())
    assert all(later < earlier for earlier, later in itertools.pairwise(errors)), errors
    assert errors[-1] < 1e-3, errors
    unbatched = g.soft_boxes_from_masks(points[1], probs[1], temperature=0.001)
    torch.testing.assert_close(unbatched, g.soft_boxes_from_masks(points, probs, temperature=0.001)[1])


def test_soft_box_is_inside_the_cloud_and_carries_gradient():
    points = torch.rand(100, 3, dtype=torch.float64) * 2
    probs = torch.rand(3, 100, dtype=torch.float64, requires_grad=True)
    soft = g.soft_boxes_from_masks(points, probs, temperature=0.1)
    cloud_lo, cloud_hi = points.min(dim=0).values, points.max(dim=0).values
    assert (soft[:, :3] >= cloud_lo - 1e-12).all() and (soft[:, 3:] <= cloud_hi + 1e-12).all()
    (soft[:, 3:] - soft[:, :3]).sum().backward()
    assert torch.isfinite(probs.grad).all() and probs.grad.abs().sum() > 0
    small = probs[:, :20].detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: g.soft_boxes_from_masks(points[:20], p, 0.2), (small,))


def test_soft_box_gradient_sign_follows_the_point_position():
    """d xmax / d prob_p has the sign of x_p - xmax: points beyond the soft extreme push it outwards."""
    points = torch.tensor([[0.0, 0, 0], [1.0, 1, 1], [3.0, 0.5, 0.5], [0.5, 0.2, 0.2]], dtype=torch.float64)
    probs = torch.tensor([[0.9, 0.9, 0.3, 0.6]], dtype=torch.float64, requires_grad=True)
    soft = g.soft_boxes_from_masks(points, probs, temperature=0.2)
    soft[0, 3].backward()  # xmax
    expected_sign = torch.sign(points[:, 0] - soft[0, 3].detach())
    assert (torch.sign(probs.grad[0]) == expected_sign).all()


def test_soft_boxes_of_empty_masks_and_empty_clouds_are_finite():
    points = torch.tensor([[0.0, 0, 0], [1.0, 2, 3], [2.0, 1, 3]])
    empty = torch.full((1, 3), 0.2)
    soft = g.soft_boxes_from_masks(points, empty, temperature=0.001)
    centroid = points.mean(dim=0)
    torch.testing.assert_close(soft[0], torch.cat([centroid, centroid]), atol=1e-3, rtol=0)
    assert g.box_iou_3d(soft, torch.tensor([[0.0, 0, 0, 2, 2, 3]])).item() == 0
    probs = torch.rand(2, 3, requires_grad=True)
    nothing = g.soft_boxes_from_masks(points, probs, point_valid=torch.zeros(3, dtype=torch.bool))
    assert (nothing == 0).all()
    nothing.sum().backward()
    assert torch.isfinite(probs.grad).all()


def test_soft_box_of_a_mask_flat_on_the_cloud_boundary():
    """A floor mask whose zmax equals the cloud's zmin (synthetic rooms have exactly flat floors)."""
    points = torch.rand(200, 3, dtype=torch.float64) * 3
    points[:50, 2] = 0.0
    probs = torch.full((1, 200), 0.1, dtype=torch.float64)
    probs[0, :50] = 0.9
    soft = g.soft_boxes_from_masks(points, probs, temperature=1e-3)
    hard = g.boxes_from_masks(points, probs)
    torch.testing.assert_close(soft, hard, atol=5e-3, rtol=0)


def unit_box(x0, y0=0.0, z0=0.0, size=1.0):
    return [x0, y0, z0, x0 + size, y0 + size, z0 + size]


def test_iou_3d_hand_cases():
    a = torch.tensor([unit_box(0.0)], dtype=torch.float64)
    b = torch.tensor(
        [unit_box(0.0), unit_box(2.0), unit_box(0.5), [0.25, 0.25, 0.25, 0.75, 0.75, 0.75], unit_box(1.0)],
        dtype=torch.float64,
    )
    iou = g.box_iou_3d(a, b)[0]
    torch.testing.assert_close(iou, torch.tensor([1.0, 0.0, 1 / 3, 0.125, 0.0], dtype=torch.float64))
    giou = g.generalized_box_iou_3d(a, b)[0]
    # disjoint [0,1] vs [2,3]: hull 3, union 2 -> -1/3; half overlap: hull 1.5 = union -> 1/3; touching: hull 2
    torch.testing.assert_close(giou, torch.tensor([1.0, -1 / 3, 1 / 3, 0.125, 0.0], dtype=torch.float64))


def test_iou_nan_and_degenerate_policy():
    a = torch.tensor([unit_box(0.0), [NAN] * 6, [0.0, 0, 0, 1, 1, 0], [1.0, 1, 1, 0, 0, 0]])
    b = torch.tensor([unit_box(0.0), [0.0, 0, 0, 1, 1, 0]])
    iou = g.box_iou_3d(a, b)
    assert torch.isnan(iou[1]).all() and not torch.isnan(iou[[0, 2, 3]]).any()
    assert iou[0, 0] == 1 and iou[0, 1] == 0 and (iou[2:] == 0).all()
    giou = g.generalized_box_iou_3d(a, b)
    assert torch.isnan(giou[1]).all()
    finite = giou[[0, 2, 3]]
    assert (finite >= -1).all() and (finite <= 1).all()
    assert giou[2, 1] == 0  # flat boxes in one plane: empty hull, GIoU = IoU = 0


def grid_iou(a, b, dims):
    """IoU of integer boxes by counting unit cells."""

    def cells(box):
        ranges = [range(int(box[i]), int(box[dims + i])) for i in range(dims)]
        return set(itertools.product(*ranges))

    ca, cb = cells(a), cells(b)
    union = len(ca | cb)
    return len(ca & cb) / union if union else 0.0


def random_int_boxes(n, dims, gen):
    lo = torch.randint(0, 6, (n, dims), generator=gen)
    size = torch.randint(1, 5, (n, dims), generator=gen)
    return torch.cat([lo, lo + size], dim=1).double()


@pytest.mark.parametrize("dims", [2, 3])
def test_iou_matches_grid_counting_and_giou_bounds(dims):
    gen = torch.Generator().manual_seed(2)
    a, b = random_int_boxes(12, dims, gen), random_int_boxes(9, dims, gen)
    iou_fn = g.box_iou_3d if dims == 3 else g.box_iou_2d
    giou_fn = g.generalized_box_iou_3d if dims == 3 else g.generalized_box_iou_2d
    iou = iou_fn(a, b)
    expected = torch.tensor([[grid_iou(x.tolist(), y.tolist(), dims) for y in b] for x in a], dtype=torch.float64)
    torch.testing.assert_close(iou, expected)
    giou = giou_fn(a, b)
    assert (giou >= -1).all() and (giou <= iou + 1e-12).all()
    torch.testing.assert_close(giou_fn(b, a), giou.T)
    torch.testing.assert_close(torch.diagonal(giou_fn(a, a)), torch.ones(12, dtype=torch.float64))
    far = torch.cat([torch.zeros(1, dims), torch.full((1, dims), 1e-3)], dim=1).double()
    huge = torch.cat([torch.full((1, dims), 1e3), torch.full((1, dims), 1e3 + 1e-3)], dim=1).double()
    assert -1 <= giou_fn(far, huge).item() < -0.999


def test_iou_2d_hand_case_and_giou_gradient():
    a = torch.tensor([[0.0, 0, 2, 2]], requires_grad=True)
    b = torch.tensor([[1.0, 1, 3, 3], [4.0, 0, 5, 1]])
    torch.testing.assert_close(g.box_iou_2d(a, b), torch.tensor([[1 / 7, 0.0]]))
    giou = g.generalized_box_iou_2d(a, b)
    torch.testing.assert_close(giou, torch.tensor([[1 / 7 - 2 / 9, 0 - 5 / 10]]))  # hulls 9 and 10
    giou.sum().backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


def test_box_format_conversions():
    corners = torch.tensor([[0.0, 1, 2, 4, 3, 8]])
    center = g.box_corners_to_center(corners)
    assert center.tolist() == [[2.0, 2.0, 5.0, 4.0, 2.0, 6.0]]
    torch.testing.assert_close(g.box_center_to_corners(center), corners)
    flat = torch.tensor([[1.0, 2, 3, 6]])
    assert g.box_corners_to_center(flat).tolist() == [[2.0, 4.0, 2.0, 4.0]]
    random = torch.randn(5, 3, 6)
    torch.testing.assert_close(g.box_corners_to_center(g.box_center_to_corners(random)), random)
    with pytest.raises(ValueError):
        g.box_corners_to_center(torch.zeros(2, 5))
    np.testing.assert_equal(g.box_iou_3d(torch.zeros(0, 6), corners).shape, (0, 1))
