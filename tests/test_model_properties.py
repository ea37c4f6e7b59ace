"""Behaviour the model guarantees: gradients, frame-order invariance, invalid depth ignored, sentence batching,
save/load round trips."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from safetensors import safe_open

from tests.test_model_fixtures import make_scene, micro_config
from univlg.data.batch import Batch, collate_visual, image_to_sample, scene_to_sample
from univlg.model import UniVLG, build_model


def _as_if_trained(model):
    """Perturb the zero-initialised weights (3D modulation, deformable offsets/weights) as one step of training
    would: at init they block the gradient of what lies before them (e.g. the level embedding)."""
    with torch.no_grad():
        for up in model.backbone_3d.up if model.backbone_3d is not None else []:
            up[2].weight.normal_(0, 0.05)
        for layer in model.pixel_decoder.encoder:
            layer.attn.sampling_offsets.weight.normal_(0, 0.01)
            layer.attn.attention_weights.weight.normal_(0, 0.01)
    return model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return _as_if_trained(build_model(micro_config(backbone_3d=True)).eval())


def _scene_batch(model, scene, texts=("the blue wall", "the floor near the red wall")):
    visual = collate_visual([scene_to_sample(scene, model.patch_size)] * len(texts))
    return Batch(visual, model.tokenize(list(texts)))


def _loss(out):
    return out.mask_logits.sum() + out.span_logits.sum() + out.soft_boxes.sum() + out.queries.sum()


@pytest.mark.parametrize("frozen_vit", [False, True])
def test_trainable_parameters_get_gradients_and_frozen_ones_none(frozen_vit):
    torch.manual_seed(0)
    model = _as_if_trained(build_model(micro_config(backbone_3d=True, frozen_vit=frozen_vit)).train())
    _loss(model(_scene_batch(model, make_scene(3)))).backward()
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    frozen = {n: p for n, p in model.named_parameters() if not p.requires_grad}
    no_grad = [n for n, p in trainable.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not no_grad
    assert all(p.grad is None for p in frozen.values())
    assert any(n.startswith("text_encoder.backbone.") for n in frozen)
    assert any(n.startswith("image_encoder.vit.encoder.") for n in (frozen if frozen_vit else trainable))
    if not frozen_vit:  # only the never-used mask token is frozen in a trainable ViT
        assert [n for n in frozen if n.startswith("image_encoder.")] == ["image_encoder.vit.embeddings.mask_token"]


def test_plain_2d_path_gives_gradients_to_its_modules():
    torch.manual_seed(0)
    model = _as_if_trained(build_model(micro_config()).train())
    rgb = np.random.default_rng(0).integers(0, 255, (32, 40, 3), dtype=np.uint8)
    out = model(Batch(collate_visual([image_to_sample(rgb, 8)]), model.tokenize(["a cat"])))
    _loss(out).backward()
    three_d_only = ("pixel_decoder.cross_view.", "mask_decoder.pos_3d.")
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert (p.grad is None) == name.startswith(three_d_only), name
            assert p.grad is None or p.grad.abs().sum() > 0, name


def test_frame_order_does_not_change_outputs(model):
    scene = make_scene(5, seed=3)
    order = [3, 0, 4, 2, 1]
    shuffled = dataclasses.replace(scene, frames=scene.frames.subset(order))
    with torch.no_grad():
        a = model(_scene_batch(model, scene))
        b = model(_scene_batch(model, shuffled))
    assert torch.equal(a.point_to_unit, b.point_to_unit)
    torch.testing.assert_close(a.point_logits(), b.point_logits(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.mask_logits, b.mask_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.span_logits, b.span_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(a.soft_boxes, b.soft_boxes, atol=1e-5, rtol=1e-5)


def test_invalid_depth_pixels_have_no_influence(model):
    scene = make_scene(3, seed=4)
    rng = np.random.default_rng(0)
    holes = rng.random(scene.frames.depth.shape) < 0.3
    outputs = []
    for bad_value in (0.0, np.nan, -2.0, 50.0, np.inf):  # all invalid (the 15 m cap makes 50 m invalid)
        depth = scene.frames.depth.copy()
        depth[holes] = bad_value
        frames = dataclasses.replace(scene.frames, depth=depth)
        with torch.no_grad():
            outputs.append(model(_scene_batch(model, dataclasses.replace(scene, frames=frames))))
    # garbage coordinates at invalid pixels of the point maps themselves change nothing either
    batch = _scene_batch(model, dataclasses.replace(scene, frames=dataclasses.replace(scene.frames, depth=depth)))
    invalid = ~batch.visual.point_valid
    batch.visual.point_maps[invalid] = torch.randn(int(invalid.sum()), 3) * 100
    with torch.no_grad():
        outputs.append(model(batch))
    reference = outputs[0]
    for out in outputs[1:]:
        assert torch.equal(out.mask_logits, reference.mask_logits)
        assert torch.equal(out.span_logits, reference.span_logits)


def test_several_sentences_in_one_call_equal_one_by_one(model):
    scene = make_scene(4, seed=5)
    sentences = ["the blue wall", "find the floor that is next to the red wall in the corner", "a wall"]
    together = model.ground(scene, sentences, batch_size=3)
    alone = [model.ground(scene, [s])[0] for s in sentences]
    for a, b in zip(together, alone, strict=True):
        assert a.query == b.query and a.span == b.span
        assert abs(a.score - b.score) < 1e-5
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_allclose(a.box, b.box, atol=1e-6)
    # and at the logit level, against a batch that encodes the scene once per sentence
    visual = model.encode_visual(collate_visual([scene_to_sample(scene.aligned(), model.patch_size, max_size=64)]))
    text = model.tokenize(sentences)
    with torch.no_grad():
        shared = model.decode(visual, text, torch.zeros(3, dtype=torch.long))
        for i, sentence in enumerate(sentences):
            single = model.decode(visual, model.tokenize([sentence]), torch.zeros(1, dtype=torch.long))
            t = int(text.attention_mask[i].sum())
            torch.testing.assert_close(shared.span_logits[:, i, :, :t], single.span_logits[:, 0], atol=1e-5, rtol=1e-5)
            torch.testing.assert_close(shared.mask_logits[:, i], single.mask_logits[:, 0], atol=1e-5, rtol=1e-5)


def test_ground_reports_masks_over_the_scene_points(model):
    scene = make_scene(3, seed=6)
    result = model.ground(scene, ["the chair closest to the door"], spans=[(4, 9)])[0]
    assert result.phrase == "chair" and result.mask.shape == (len(scene.points),)
    assert result.points.shape == (len(scene.points), 3)
    if result.mask.any():
        inside = result.points[result.mask]
        np.testing.assert_allclose(result.box, np.concatenate([inside.min(0), inside.max(0)]))
    else:
        assert np.isnan(result.box).all()
    lifted = model.ground(dataclasses.replace(scene, points=None), ["the floor"])[0]
    assert lifted.phrase == "floor" and lifted.mask.shape == (len(lifted.points),) and len(lifted.points) > 0


def test_ground_takes_a_list_and_gives_the_callers_mode_back(model):
    scene = make_scene(2, seed=9)
    with pytest.raises(TypeError, match="list of strings"):
        model.ground(scene, "the blue wall")
    model.train()
    model.text_encoder.eval()  # a mixed state comes back as it was
    try:
        model.ground(scene, ["the blue wall"])
        assert model.training and model.mask_decoder.training and not model.text_encoder.training
    finally:
        model.eval()
    model.ground(scene, ["the blue wall"])
    assert not any(module.training for module in model.modules())


def test_save_and_load_round_trip_is_identical(model, tmp_path):
    batch = _scene_batch(model, make_scene(3, seed=7))
    model.save_pretrained(tmp_path / "ckpt")
    loaded = UniVLG.from_pretrained(tmp_path / "ckpt").eval()
    with torch.no_grad():
        a, b = model(batch), loaded(batch)
    assert torch.equal(a.mask_logits, b.mask_logits) and torch.equal(a.span_logits, b.span_logits)
    with safe_open(str(tmp_path / "ckpt" / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert "image_encoder.vit.embeddings.cls_token" in names  # random-init encoders are saved
    assert "text_encoder.backbone.embeddings.word_embeddings.weight" in names


def test_frozen_pretrained_text_encoder_is_referenced_not_saved(tmp_path):
    cfg = micro_config()
    cfg = dataclasses.replace(cfg, text_encoder=dataclasses.replace(cfg.text_encoder, pretrained=True))
    torch.manual_seed(1)
    model = build_model(cfg).eval()
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert not any(n.startswith("text_encoder.backbone.") for n in names)
    assert "text_encoder.projector.weight" in names
    loaded = UniVLG.from_pretrained(tmp_path).eval()
    batch = _scene_batch(model, make_scene(2, seed=8), texts=("the red wall",))
    with torch.no_grad():
        assert torch.equal(model(batch).span_logits, loaded(batch).span_logits)


def test_ground_keeps_the_largest_connected_part_when_the_config_asks(eval_checkpoint):
    from tests.test_geometry_components import brute_force_parts

    wide = UniVLG.from_pretrained(eval_checkpoint)  # masks cover most of the scene, in several parts at 0.1 m
    scene = make_scene(3, seed=6)
    sentences = ["the blue wall", "the floor near the red wall"]
    raw = wide.ground(scene, sentences)
    wide.cfg.output.grounding_component_cell = 0.1
    cut = wide.ground(scene, sentences)
    for before, after in zip(raw, cut, strict=True):
        assert after.query == before.query and not (after.mask & ~before.mask).any()
        inside = np.flatnonzero(before.mask)
        parts = brute_force_parts(before.points[inside], 0.1)
        assert len(parts) > 1
        assert after.mask.sum() == max(len(part) for part in parts) < before.mask.sum()
        kept = after.points[after.mask]
        np.testing.assert_allclose(after.box, np.concatenate([kept.min(0), kept.max(0)]))
