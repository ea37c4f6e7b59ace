"""Readiness for the released checkpoint: every official tensor of the inventory has one home in ``paper``
(or is documented dead / the Jina text encoder), and the packing conventions compute what the official modules do.

``data/official_checkpoint_shapes.json`` is the name -> shape inventory of the released ``univlg.pth`` (made by
instantiating the official model, see the project's reference notes).
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from univlg.config import ImageEncoderConfig, paper_model_config
from univlg.errors import CheckpointError
from univlg.model import build_model
from univlg.model.image_encoder import build_image_encoder
from univlg.model.layers import CrossAttentionBlock
from univlg.model.official import (
    DEAD,
    JINA,
    convert_official_state_dict,
    dinov2_hub_to_transformers,
    load_official_weights,
)
from univlg.model.pixel_decoder import InputProjection

INVENTORY = Path(__file__).parent / "data" / "official_checkpoint_shapes.json"
TRAINABLE_OFFICIAL = 47_818_432
DEAD_PIXEL_DECODER_CROSS_VIEW = 2 * 857_600
# Jina-CLIP v1 is not in transformers: a 768-d BERT of its width and its 520-token table stands in
JINA_STAND_IN = dict(pretrained=False, hidden_size=768, num_layers=1, max_length=520)


def _paper_on_meta(backbone_3d: bool = True):
    cfg = paper_model_config()
    cfg.text_encoder = dataclasses.replace(cfg.text_encoder, **JINA_STAND_IN)
    if not backbone_3d:
        cfg.backbone_3d = dataclasses.replace(cfg.backbone_3d, layers_per_level=())
    with torch.device("meta"):
        return build_model(cfg)


@pytest.fixture(scope="module")
def inventory():
    return {name: torch.empty(shape, device="meta") for name, shape in json.loads(INVENTORY.read_text()).items()}


@pytest.mark.parametrize("backbone_3d", [True, False])
def test_inventory_has_exactly_one_home_per_used_tensor(inventory, backbone_3d):
    model = _paper_on_meta(backbone_3d)
    ours = model.state_dict()
    conversion = convert_official_state_dict(inventory, backbone_3d=backbone_3d)
    assert conversion.unknown == []
    assert len(conversion.jina) == 395 and all(n.startswith(JINA) for n in conversion.jina)
    dead_3d = 0 if backbone_3d else 192 + 16 + 16
    assert len(conversion.dead) == 2 * 20 + 3 + dead_3d and all(
        n.startswith(DEAD) or n.startswith("visual_backbone.backbone.") for n in conversion.dead
    )
    assert {k: tuple(v.shape) for k, v in conversion.state.items()} == {
        k: tuple(ours[k].shape) for k in conversion.state
    }
    assert sorted(k for k in ours if k not in conversion.state) == sorted(
        k for k in ours if k.startswith("text_encoder.backbone.")
    )
    mapped_elements = sum(v.numel() for v in conversion.state.values())
    assert mapped_elements == sum(v.numel() for k, v in ours.items() if not k.startswith("text_encoder.backbone."))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = TRAINABLE_OFFICIAL - DEAD_PIXEL_DECODER_CROSS_VIEW
    assert trainable == (expected if backbone_3d else expected - 12_911_616)


def _reduced_shape(name: str, shape: list[int], width: int) -> list[int]:
    """The inventory shape for a DINOv2 of ``width`` channels instead of 1024 (only tensors touching DINO)."""
    if any(part in name for part in ("token_to_trans", "trans_to_token", "input_proj", "adapter_1")):
        return [width if s == 1024 else 2 * width if s == 2048 else s for s in shape]
    return shape


def test_load_official_weights_places_every_value():
    """At a reduced DINOv2 width: an official-layout checkpoint loads and its values land where they should."""
    cfg = paper_model_config()
    small = dict(hidden_size=32, num_layers=4, num_heads=2, feature_layers=(0, 1, 2, 3), pretrain_image_size=56)
    cfg.image_encoder = dataclasses.replace(cfg.image_encoder, **small)
    cfg.text_encoder = dataclasses.replace(cfg.text_encoder, **JINA_STAND_IN)
    model = build_model(cfg)
    inventory = json.loads(INVENTORY.read_text())
    official = {
        name: torch.randn(_reduced_shape(name, shape, 32))
        for name, shape in inventory.items()
        if not name.startswith(("visual_backbone.backbone.dinov2.", JINA))
    }
    official.update(_hub_state_dict(model.image_encoder.vit.config))
    report = load_official_weights(model, {"model": official})
    assert not report.unknown and len(report.dead) == 2 * 20 + 3
    state = model.state_dict()
    packed = official["mask_decoder.transformer_cross_attention_layers.3.multihead_attn.in_proj_weight"]
    assert torch.equal(state["mask_decoder.layers.3.cross_attn.attn.k_proj.weight"], packed[256:512])
    packed = official[
        "visual_backbone.backbone.cross_view_attn.2.cross_view_attention_layers.5.multihead_attn.in_proj_bias"
    ]
    assert torch.equal(state["backbone_3d.cross_view.2.attention.5.attn.v_proj.bias"], packed[512:])
    conv = official["visual_backbone.pixel_decoder.adapter_1.weight"]
    assert torch.equal(state["pixel_decoder.skip_proj.weight"], conv[:, :, 0, 0])
    assert torch.equal(state["mask_decoder.query_pos.weight"], official["mask_decoder.query_embed.weight"])
    qkv = official["visual_backbone.backbone.dinov2.inner.blocks.2.attn.qkv.weight"]
    assert torch.equal(state["image_encoder.vit.encoder.layer.2.attention.q_proj.weight"], qkv[:32])


def _hub_state_dict(config) -> dict[str, torch.Tensor]:
    """Random DINOv2 tensors under the torch-hub names, for a config of the transformers class."""
    d, n = config.hidden_size, config.num_hidden_layers
    grid = config.image_size // config.patch_size
    prefix = "visual_backbone.backbone.dinov2.inner."
    out = {
        "cls_token": torch.randn(1, 1, d),
        "pos_embed": torch.randn(1, 1 + grid * grid, d),
        "register_tokens": torch.randn(1, config.num_register_tokens, d),
        "mask_token": torch.randn(1, d),
        "patch_embed.proj.weight": torch.randn(d, 3, config.patch_size, config.patch_size) * 0.1,
        "patch_embed.proj.bias": torch.randn(d),
        "norm.weight": torch.rand(d) + 0.5,
        "norm.bias": torch.randn(d),
    }
    for i in range(n):
        block = {
            "norm1.weight": torch.rand(d) + 0.5, "norm1.bias": torch.randn(d) * 0.1,
            "attn.qkv.weight": torch.randn(3 * d, d) / math.sqrt(d), "attn.qkv.bias": torch.randn(3 * d) * 0.1,
            "attn.proj.weight": torch.randn(d, d) / math.sqrt(d), "attn.proj.bias": torch.randn(d) * 0.1,
            "ls1.gamma": torch.rand(d), "ls2.gamma": torch.rand(d),
            "norm2.weight": torch.rand(d) + 0.5, "norm2.bias": torch.randn(d) * 0.1,
            "mlp.fc1.weight": torch.randn(4 * d, d) / math.sqrt(d), "mlp.fc1.bias": torch.randn(4 * d) * 0.1,
            "mlp.fc2.weight": torch.randn(d, 4 * d) / math.sqrt(4 * d), "mlp.fc2.bias": torch.randn(d) * 0.1,
        }  # fmt: skip
        out.update({f"blocks.{i}.{k}": v for k, v in block.items()})
    return {prefix + k: v for k, v in out.items()}


def _hub_forward(hub: dict[str, torch.Tensor], images: torch.Tensor, heads: int, blocks: int) -> list[torch.Tensor]:
    """DINOv2 (torch hub, registers) written out from its definition; returns each block's normed patch tokens."""
    t = {k.split("inner.")[1]: v for k, v in hub.items()}
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    x = F.conv2d((images - mean) / std, t["patch_embed.proj.weight"], t["patch_embed.proj.bias"], stride=14)
    x = x.flatten(2).transpose(1, 2)
    x = torch.cat([t["cls_token"].expand(len(x), -1, -1), x], 1) + t["pos_embed"]
    x = torch.cat([x[:, :1], t["register_tokens"].expand(len(x), -1, -1), x[:, 1:]], 1)
    b, n, d = x.shape
    outs = []
    for i in range(blocks):
        block = {k.removeprefix(f"blocks.{i}."): v for k, v in t.items() if k.startswith(f"blocks.{i}.")}
        p = block.__getitem__
        y = F.layer_norm(x, (d,), p("norm1.weight"), p("norm1.bias"), eps=1e-6)
        qkv = F.linear(y, p("attn.qkv.weight"), p("attn.qkv.bias")).reshape(b, n, 3, heads, d // heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attn = ((q @ k.transpose(-1, -2)) / math.sqrt(d // heads)).softmax(-1) @ v
        y = F.linear(attn.transpose(1, 2).reshape(b, n, d), p("attn.proj.weight"), p("attn.proj.bias"))
        x = x + p("ls1.gamma") * y
        y = F.layer_norm(x, (d,), p("norm2.weight"), p("norm2.bias"), eps=1e-6)
        y = F.linear(
            F.gelu(F.linear(y, p("mlp.fc1.weight"), p("mlp.fc1.bias"))), p("mlp.fc2.weight"), p("mlp.fc2.bias")
        )
        x = x + p("ls2.gamma") * y
        outs.append(F.layer_norm(x, (d,), t["norm.weight"], t["norm.bias"], eps=1e-6)[:, 5:])
    return outs


def test_dinov2_hub_weights_compute_the_hub_model():
    cfg = ImageEncoderConfig(hidden_size=32, num_layers=3, num_heads=2, patch_size=14, num_register_tokens=4,
                             pretrain_image_size=56, feature_layers=(0, 1, 2))  # fmt: skip
    encoder = build_image_encoder(cfg)
    hub = _hub_state_dict(encoder.vit.config)
    bare = {k.removeprefix("visual_backbone.backbone.dinov2.inner."): v for k, v in hub.items()}
    encoder.vit.load_state_dict(dinov2_hub_to_transformers(bare), strict=True)
    images = torch.rand(2, 3, 56, 56)
    ours = encoder(images)
    expected = _hub_forward(hub, images, heads=2, blocks=3)
    for a, b in zip(ours, expected, strict=True):
        torch.testing.assert_close(a, b.reshape(2, 4, 4, 32), atol=1e-4, rtol=1e-4)
    with pytest.raises(CheckpointError, match="not DINOv2 hub tensors"):
        dinov2_hub_to_transformers({"head.weight": torch.zeros(1)})


def test_packed_attention_and_1x1_convolutions_match_torch_modules():
    torch.manual_seed(0)
    dim, heads = 16, 4
    reference = nn.MultiheadAttention(dim, heads, batch_first=True)
    norm = nn.LayerNorm(dim)
    with torch.no_grad():
        reference.in_proj_bias.normal_()
        norm.weight.normal_()
    prefix = "mask_decoder.transformer_cross_attention_layers.0."
    official = {
        prefix + "multihead_attn.in_proj_weight": reference.in_proj_weight.detach(),
        prefix + "multihead_attn.in_proj_bias": reference.in_proj_bias.detach(),
        prefix + "multihead_attn.out_proj.weight": reference.out_proj.weight.detach(),
        prefix + "multihead_attn.out_proj.bias": reference.out_proj.bias.detach(),
        prefix + "norm.weight": norm.weight.detach(),
        prefix + "norm.bias": norm.bias.detach(),
    }
    state = convert_official_state_dict(official).state
    block = CrossAttentionBlock(dim, heads)
    block.load_state_dict({k.removeprefix("mask_decoder.layers.0.cross_attn."): v for k, v in state.items()})
    x, memory, qpos, kpos = (
        torch.randn(2, 5, dim),
        torch.randn(2, 7, dim),
        torch.randn(2, 5, dim),
        torch.randn(2, 7, dim),
    )
    expected = norm(x + reference(x + qpos, memory + kpos, memory, need_weights=False)[0])
    torch.testing.assert_close(block(x, memory, query_pos=qpos, memory_pos=kpos), expected, atol=1e-5, rtol=1e-5)

    conv = nn.Conv2d(12, 8, 1)
    official = {
        "visual_backbone.pixel_decoder.input_proj.1.0.weight": conv.weight.detach(),
        "visual_backbone.pixel_decoder.input_proj.1.0.bias": conv.bias.detach(),
        "visual_backbone.pixel_decoder.input_proj.1.1.weight": torch.ones(8),
        "visual_backbone.pixel_decoder.input_proj.1.1.bias": torch.zeros(8),
    }
    state = convert_official_state_dict(official).state
    proj = InputProjection(12, 8, 4)
    proj.load_state_dict({k.removeprefix("pixel_decoder.input_proj.1."): v for k, v in state.items()})
    image = torch.randn(2, 12, 3, 5)
    expected = F.group_norm(conv(image), 4)
    torch.testing.assert_close(proj(image.permute(0, 2, 3, 1)), expected.permute(0, 2, 3, 1), atol=1e-5, rtol=1e-5)
