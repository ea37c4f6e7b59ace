"""Training samples: masks, boxes and augmentation agree with the scene; samples are deterministic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from univlg.data.augment import random_scene_affine
from univlg.data.collate import collate_training
from univlg.data.datasets import (
    DetectionDataset,
    ReferralDataset,
    SampleOptions,
    SceneSampler,
    detection_prompt,
)
from univlg.data.formats.refcoco import read_refcoco
from univlg.data.formats.referit3d import read_sr3d_csv
from univlg.data.image_datasets import FrameDetectionDataset, ImageReferralDataset, patch_mask
from univlg.data.scene_store import SceneStore
from univlg.geometry import project_points

PATCH = 8


@pytest.fixture(scope="module")
def store(synthetic_root):
    return SceneStore(synthetic_root / "scans")


@pytest.fixture(scope="module")
def referrals(synthetic_root):
    return read_sr3d_csv(synthetic_root / "referit3d" / "sr3d_train.csv")


def _sampler(store, max_points=5000, **kwargs):
    return SceneSampler(store, PATCH, SampleOptions(num_frames=4, max_points=max_points, **kwargs))


def test_referral_sample_masks_and_boxes_match_the_scene(store, referrals):
    dataset = ReferralDataset(_sampler(store, augment=False), referrals)
    for index in range(4):
        sample = dataset.sample(index, seed=3)
        referral = referrals[index]
        scene = store.get(referral.scene_id)
        assert sample.info["object_ids"][0] == referral.target_id
        assert sample.text[slice(*sample.spans[0][0])] == referral.utterance[slice(*referral.target_spans[0])]
        # Every masked point is a point of its object in the scene (found by exact coordinates).
        tree = cKDTree(scene.points.xyz)
        points = sample.visual.points.numpy()
        for g, object_id in enumerate(sample.info["object_ids"]):
            chosen = points[sample.point_masks[g].numpy()]
            _, nearest = tree.query(chosen)
            assert (scene.points.instance_ids[nearest] == object_id).all()
            np.testing.assert_allclose(sample.boxes[g, :3], chosen.min(0), atol=1e-6)
            np.testing.assert_allclose(sample.boxes[g, 3:], chosen.max(0), atol=1e-6)
        assert sample.visual.images.shape[0] == 4 and len(points) <= 5000


def test_augmented_depth_still_lands_on_the_augmented_points(store, referrals):
    """Poses and points move together: the lifted depth of the sample lies on its output points."""
    sample = ReferralDataset(_sampler(store, max_points=100000, augment=True), referrals).sample(2, seed=5)
    lifted = sample.visual.point_maps[sample.visual.point_valid].numpy()
    distance, _ = cKDTree(sample.visual.points.numpy()).query(lifted[::5])
    assert np.median(distance) < 0.025
    # Points off by a 15 cm error fail the same check: the threshold has teeth.
    moved = lifted + np.random.default_rng(0).normal(0.0, 0.15, lifted.shape)
    assert np.median(cKDTree(sample.visual.points.numpy()).query(moved[::5])[0]) > 0.05


def test_affine_maps_boxes_to_boxes():
    rng = np.random.default_rng(0)
    points = rng.uniform(-1, 1, (200, 3))
    matrix = random_scene_affine(points, rng)
    linear = matrix[:3, :3]
    # A multiple of 90 degrees about z with per-axis scale: axis-aligned boxes stay axis-aligned.
    assert np.count_nonzero(np.abs(linear) > 1e-9) == 3 and 0.9 <= abs(linear[2, 2]) <= 1.1


def test_transform_scene_moves_poses_and_points(store):
    scene = store.get(sorted(p.name for p in store.root.iterdir())[0])
    matrix = np.eye(4)
    matrix[:3, 3] = [1.0, -2.0, 0.5]
    moved = scene.transformed(matrix)
    np.testing.assert_allclose(moved.points.xyz, scene.points.xyz + [1.0, -2.0, 0.5], atol=1e-5)
    np.testing.assert_allclose(moved.frames.cam_to_world[0][:3, 3], scene.frames.cam_to_world[0][:3, 3] + [1, -2, 0.5])


def test_samples_are_deterministic(store, referrals):
    dataset = ReferralDataset(_sampler(store), referrals)
    a, b = dataset.sample(1, seed=9), dataset.sample(1, seed=9)
    torch.testing.assert_close(a.visual.points, b.visual.points)
    torch.testing.assert_close(a.visual.images, b.visual.images)
    assert torch.equal(a.point_masks, b.point_masks)


def test_detection_sample_covers_instances_of_listed_classes(store):
    classes = ["table", "chair", "cup", "wall"]
    scene_id = sorted(p.name for p in store.root.iterdir() if p.name.startswith("synth_train"))[0]
    dataset = DetectionDataset(_sampler(store, augment=False), [scene_id], classes)
    assert "wall" not in dataset.prompt
    sample = dataset.sample(0, seed=1)
    scene = store.get(scene_id)
    for object_id, spans in zip(sample.info["object_ids"], sample.spans, strict=True):
        assert sample.text[slice(*spans[0])] == scene.objects[object_id]
    assert not sample.anchored  # every object of a prompt is a target, none an anchor
    prompt, spans = detection_prompt(["a", "bb", "trash can"])
    assert prompt == "a. bb. trash can" and prompt[slice(*spans["trash can"])] == "trash can"


def test_patch_mask_samples_patch_centres():
    mask = torch.zeros(12, 16, dtype=torch.bool)
    mask[0:4, 4:8] = True  # covers the centre (2, 6) of patch (0, 1) for patch 4 at full size
    valid = torch.zeros(16, 16, dtype=torch.bool)
    valid[:12] = True
    out = patch_mask(mask, valid, 4).reshape(4, 4)
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[0, 1] = True
    assert torch.equal(out, expected)


def test_image_referrals_lift_only_when_asked(synthetic_root, store):
    referrals = read_refcoco(
        synthetic_root / "refcoco" / "refs(synth_train).p", synthetic_root / "refcoco" / "instances_train.json"
    )
    dataset = ImageReferralDataset(synthetic_root / "scans", referrals, PATCH, SampleOptions(), store)
    plain, lifted = dataset.sample(0, 1, lift=False), dataset.sample(0, 1, lift=True)
    assert plain.visual.point_maps is None and lifted.visual.point_maps is not None
    h, w = plain.visual.images.shape[1] // PATCH, plain.visual.images.shape[2] // PATCH
    assert plain.point_masks.shape == (1, h * w) and plain.point_masks.any()
    assert ImageReferralDataset(synthetic_root / "scans", referrals, PATCH, SampleOptions()).sample(0, 1, True) is None


def test_images_larger_than_the_depth_grid_are_lifted_with_a_resampled_point_map(synthetic_root, store, tmp_path):
    """Real ScanNet frames: 1296 x 968 colour over a 640 x 480 depth grid (here 160 x 120 over 80 x 60)."""
    from dataclasses import replace

    from PIL import Image

    referral = read_refcoco(
        synthetic_root / "refcoco" / "refs(synth_train).p", synthetic_root / "refcoco" / "instances_train.json"
    )[0]
    small = Image.open(synthetic_root / "scans" / referral.file_name)
    large = tmp_path / referral.file_name
    large.parent.mkdir(parents=True)
    small.resize((2 * small.width, 2 * small.height)).save(large)
    referral = replace(referral, width=2 * small.width, height=2 * small.height, segmentation=[[8, 8, 90, 8, 90, 70]])
    dataset = ImageReferralDataset(tmp_path, [referral], PATCH, SampleOptions(), store)
    sample = dataset.sample(0, 1, lift=True)
    scene_id, _, frame = referral.file_name.split("/")
    points, valid = store.camera_point_map(scene_id, frame.rsplit(".", 1)[0])  # (60, 80) depth grid
    lifted, lifted_valid = sample.visual.point_maps[0].numpy(), sample.visual.point_valid[0].numpy()
    assert lifted.shape == (2 * small.height, 2 * small.width, 3)
    for dy in (0, 1):
        for dx in (0, 1):  # every pixel of a 2 x 2 block takes its depth pixel's point
            assert np.array_equal(lifted_valid[dy::2, dx::2], valid)
            assert np.array_equal(lifted[dy::2, dx::2][valid], points[valid])


def test_collate_builds_positive_maps(store, referrals, tiny_tokenize):
    dataset = ReferralDataset(_sampler(store), referrals)
    samples = [dataset.sample(i, 2) for i in range(2)]
    batch = collate_training(samples, tiny_tokenize)
    for b, sample in enumerate(samples):
        rows = batch.positive_maps[b]
        assert rows.shape[0] == len(sample.spans)
        torch.testing.assert_close(rows.sum(1), torch.ones(rows.shape[0]))
        tokens = batch.batch.text.offsets[b][rows[0] > 0]
        start, end = sample.spans[0][0]
        assert ((tokens[:, 0] < end) & (tokens[:, 1] > start)).all()


def test_frame_detection_masks_come_from_the_instance_images(store):
    scene_id = sorted(p.name for p in store.root.iterdir() if p.name.startswith("synth_train"))[0]
    classes = ["table", "chair", "cup", "sofa", "bed", "lamp", "wall"]
    dataset = FrameDetectionDataset(store, [scene_id], classes, PATCH, SampleOptions())
    scene = store.get(scene_id)
    assert len(dataset) == len(scene.frames) and "wall" not in dataset.prompt
    indices = [i for i in range(len(dataset)) if dataset.sample(i, 0) is not None]
    assert indices
    for index in indices[:3]:
        sample = dataset.sample(index, 0)
        frame = scene.frames.names.index(sample.info["frame"])
        width = sample.visual.images.shape[2] // PATCH
        # Independent check: each mask's patch centres lie within a patch of the object's projected 3D points.
        for object_id, mask, spans in zip(sample.info["object_ids"], sample.point_masks, sample.spans, strict=True):
            assert sample.text[slice(*spans[0])] == scene.objects[object_id]
            points = torch.from_numpy(scene.points.xyz[scene.points.instance_ids == object_id])
            uv, z = project_points(
                points,
                torch.from_numpy(scene.frames.intrinsics[frame : frame + 1]),
                torch.from_numpy(scene.frames.cam_to_world[frame : frame + 1]),
            )
            rows, cols = np.divmod(np.flatnonzero(mask.numpy()), width)
            centres = np.stack([cols * PATCH + PATCH // 2, rows * PATCH + PATCH // 2], 1)
            seen = uv[0][z[0] > 0].numpy()
            assert (np.abs(centres[:, None, :] - seen[None]).max(-1).min(1) <= PATCH).all()
    plain, lifted = dataset.sample(indices[0], 0), dataset.sample(indices[0], 0, lift=True)
    assert plain.visual.point_maps is None and lifted.visual.point_maps is not None
    assert torch.equal(lifted.point_masks, plain.point_masks)


def test_companion_sentences_share_the_views_and_have_their_own_masks(store, referrals):
    dataset = ReferralDataset(_sampler(store, augment=False), referrals, sentences_per_scene=3)
    samples = [dataset.sample(index, seed=4) for index in range(8)]
    assert sum(len(s.companions) for s in samples) >= 4  # companions whose target the views miss are left out
    for sample in samples:
        assert len(sample.companions) <= 2
        scene_id = sample.info["scene_id"]
        tree = cKDTree(store.get(scene_id).points.xyz)
        instance_ids = store.get(scene_id).points.instance_ids
        points = sample.visual.points.numpy()
        texts = [sample.text] + [c.text for c in sample.companions]
        assert len(set(texts)) == len(texts)
        by_text = {r.utterance: r for r in referrals if r.scene_id == scene_id}
        for companion in sample.companions:
            assert companion.visual is sample.visual and not companion.companions
            assert companion.info["object_ids"][0] == by_text[companion.text].target_id
            for g, object_id in enumerate(companion.info["object_ids"]):
                chosen = points[companion.point_masks[g].numpy()]
                assert len(chosen) >= SampleOptions.min_object_points
                assert (instance_ids[tree.query(chosen)[1]] == object_id).all()
                np.testing.assert_allclose(companion.boxes[g, :3], chosen.min(0), atol=1e-6)
    assert not ReferralDataset(_sampler(store, augment=False), referrals).sample(0, seed=4).companions
    with pytest.raises(ValueError, match="sentences_per_scene"):
        ReferralDataset(_sampler(store), referrals, sentences_per_scene=0)


def test_referral_distractors_are_the_other_visible_objects_of_the_targets_class(store, referrals):
    """Every utterance of a referral sample (companions too) carries masks of exactly the objects that share its
    target's class, other than the target, and have enough points in the sample (found here by nearest scene
    point); a detection sample, and a referral sample not asked for them, carry none."""
    dataset = ReferralDataset(_sampler(store, augment=False), referrals, sentences_per_scene=2, distractors=True)
    compared = 0
    for index in range(10):
        sample = dataset.sample(index, seed=3)
        scene = store.get(sample.info["scene_id"])
        tree = cKDTree(scene.points.xyz)
        point_ids = scene.points.instance_ids[tree.query(sample.visual.points.numpy())[1]]
        ids, counts = np.unique(point_ids, return_counts=True)
        visible = {int(i) for i, c in zip(ids, counts, strict=True) if c >= SampleOptions.min_object_points}
        for utterance in (sample, *sample.companions):
            target = utterance.info["object_ids"][0]
            expected = {o for o in visible if o != target and scene.objects.get(o) == scene.objects[target]}
            found = set()
            for mask in utterance.distractor_masks:
                owners = np.unique(point_ids[mask.numpy()])
                assert len(owners) == 1
                found.add(int(owners[0]))
            assert found == expected and len(utterance.distractor_masks) == len(expected)
            compared += len(expected)
    assert compared > 0
    assert ReferralDataset(_sampler(store, augment=False), referrals).sample(0, seed=3).distractor_masks is None
    scene_id = sorted(p.name for p in store.root.iterdir() if p.name.startswith("synth_train"))[0]
    detection = DetectionDataset(_sampler(store, augment=False), [scene_id], ["chair", "table"]).sample(0, 0)
    assert detection.distractor_masks is None


def test_collated_companions_decode_against_their_own_visual_sample(store, referrals, tiny_tokenize):
    dataset = ReferralDataset(_sampler(store, augment=False), referrals, sentences_per_scene=2)
    samples = [dataset.sample(0, seed=1), dataset.sample(3, seed=1)]
    batch = collate_training(samples, tiny_tokenize)
    counts = [1 + len(s.companions) for s in samples]
    assert batch.batch.visual.batch_size == 2
    assert batch.batch.visual_index.tolist() == [b for b, n in enumerate(counts) for _ in range(n)]
    utterances = [u for s in samples for u in (s, *s.companions)]
    assert [i["target_id"] for i in batch.infos] == [u.info["target_id"] for u in utterances]
    assert batch.anchored == [True] * len(utterances)  # referrals: the objects after the target are anchors
    assert len(batch.positive_maps) == len(batch.point_masks) == sum(counts)
    for i, utterance in enumerate(utterances):
        assert utterance.visual is samples[batch.batch.visual_index[i]].visual
        assert batch.point_masks[i] is utterance.point_masks
        # The target's row, recomputed from the sentence tokenised alone: uniform over tokens inside its spans.
        offsets = tiny_tokenize([utterance.text]).offsets[0].tolist()
        target_spans = utterance.spans[0]
        inside = [k for k, (a, b) in enumerate(offsets) if b > a and any(a < e and s < b for s, e in target_spans)]
        expected = torch.zeros(batch.positive_maps[i].shape[1])
        expected[inside] = 1 / len(inside)
        torch.testing.assert_close(batch.positive_maps[i][0], expected)


def test_shared_encoding_gives_the_losses_of_repeated_visual_samples(store, referrals, tiny_tokenize):
    """Companions decode against one encoding of their scene: the losses equal those of a batch that repeats the
    visual sample for every utterance (each encoded separately)."""
    from dataclasses import replace

    from tests.test_model_fixtures import micro_config
    from univlg.data.batch import collate_visual
    from univlg.model import build_model
    from univlg.train.config import LossConfig
    from univlg.train.engine import build_criterion, compute_losses

    dataset = ReferralDataset(_sampler(store, max_points=1500, augment=False), referrals, sentences_per_scene=3)
    samples = [dataset.sample(2, seed=1), dataset.sample(5, seed=1)]
    shared = collate_training(samples, tiny_tokenize)
    assert shared.batch.visual_index is not None
    utterances = [u for s in samples for u in (s, *s.companions)]
    repeated = replace(
        shared, batch=replace(shared.batch, visual=collate_visual([u.visual for u in utterances]), visual_index=None)
    )
    model = build_model(micro_config()).eval()
    criterion = build_criterion(LossConfig(box_loss="match_only"))
    with torch.no_grad():
        a, b = compute_losses(model, criterion, shared), compute_losses(model, criterion, repeated)
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=1e-5)


def test_relation_losses_reach_the_relation_head_on_referral_batches(store, referrals, tiny_tokenize):
    """Referral batches carry their anchors and reference types to the criterion: the relation-anchor and
    relation-class terms are positive on every prediction, and their gradients reach the head's anchor-word and
    relation-word scorers (the relation words get none from grounding while the head's weights are zero)."""
    from dataclasses import replace

    from tests.test_model_fixtures import micro_config
    from univlg.model import build_model
    from univlg.train.config import LossConfig
    from univlg.train.engine import build_criterion, compute_losses

    dataset = ReferralDataset(_sampler(store, max_points=1500, augment=False), referrals)
    samples = [dataset.sample(i, seed=1) for i in range(6)]
    batch = collate_training([s for s in samples if s is not None and len(s.spans) > 1][:2], tiny_tokenize)
    assert len(batch.anchored) == 2 and all(batch.anchored)
    cfg = micro_config()
    classes = sorted({r.relation for r in referrals})
    model = build_model(replace(cfg, decoder=replace(cfg.decoder, relation_head=True, relation_classes=classes)))
    criterion = build_criterion(LossConfig(box_loss="match_only", relation_anchor=1.0, relation_class=1.0))
    losses = compute_losses(model, criterion, batch)
    layers = range(cfg.decoder.num_layers + 1)
    terms = [losses[f"loss_relation_{name}_{layer}"] for name in ("anchor", "class") for layer in layers]
    assert all(float(term.detach()) > 0 for term in terms)
    sum(terms).backward()
    head = model.mask_decoder.relation_head
    assert head.anchor_words.weight.grad.abs().sum() > 0 and head.relation_words.weight.grad.abs().sum() > 0
