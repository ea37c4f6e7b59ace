"""Key mapping from the released UniVLG checkpoint (``univlg.pth``) to this implementation.

The inventory of the official state dict (1,435 tensors) is in the project's reference notes
(official-checkpoint-keys.md). Every tensor the released model uses has exactly one home here, built by the
rules below; packed attention projections are split ([Wq; Wk; Wv] rows), 1x1 convolution kernels lose their
trailing (1, 1). Tensors without a home are reported, never silently dropped:

- ``DEAD``: modules that run in the released recipe but cannot affect its output (reference 1.4-1.5 and the
  inventory): ``pixel_decoder.cross_view_attn.0/.1`` (their outputs feed only unused multi-scale features),
  ``criterion.empty_weight``, the ImageNet mean/std buffers (constants here). The backbone 3D blocks are dead in
  the release but have a home in ``backbone_3d`` when it is enabled (they are zero-initialised, so loading
  their released values keeps the released output);
- ``JINA``: the Jina-CLIP v1 text and vision towers (``mask_decoder.lang_encoder.text_encoder.*``). They are not
  mapped: transformers has no JinaBERT, and our text encoder is a BERT-style one (docs/model.md); only the
  ``text_projector`` on top of Jina is mapped, and it fits a 768-d text encoder.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from univlg.errors import CheckpointError
from univlg.model.state_dict import load_model_state

DINO = "visual_backbone.backbone.dinov2.inner."
JINA = "mask_decoder.lang_encoder.text_encoder."
TEXT_BACKBONE = "text_encoder.backbone."  # ours: the frozen text encoder, loaded from its own folder
DEAD = (
    "visual_backbone.pixel_decoder.cross_view_attn.0.",
    "visual_backbone.pixel_decoder.cross_view_attn.1.",
    "visual_backbone.backbone.preprocessor.",
    "criterion.empty_weight",
)
BACKBONE_3D = ("visual_backbone.backbone.cross_view_attn.", "visual_backbone.backbone.token_to_trans.",
               "visual_backbone.backbone.trans_to_token.")  # fmt: skip

Rule = tuple[str, str]

# DINOv2 hub names (facebookresearch/dinov2) -> transformers Dinov2WithRegistersModel names (transformers 5.x).
DINO_RULES: list[Rule] = [
    (r"cls_token", r"embeddings.cls_token"),
    (r"pos_embed", r"embeddings.position_embeddings"),
    (r"register_tokens", r"embeddings.register_tokens"),
    (r"mask_token", r"embeddings.mask_token"),
    (r"patch_embed\.proj\.(weight|bias)", r"embeddings.patch_embeddings.projection.\1"),
    (r"blocks\.(\d+)\.attn\.qkv\.(weight|bias)", r"encoder.layer.\1.attention.{q,k,v}_proj.\2"),
    (r"blocks\.(\d+)\.attn\.proj\.(weight|bias)", r"encoder.layer.\1.attention.o_proj.\2"),
    (r"blocks\.(\d+)\.ls(\d)\.gamma", r"encoder.layer.\1.layer_scale\2.lambda1"),
    (r"blocks\.(\d+)\.(norm1|norm2|mlp\.fc1|mlp\.fc2)\.(weight|bias)", r"encoder.layer.\1.\2.\3"),
    (r"norm\.(weight|bias)", r"layernorm.\1"),
]

# CrossViewPAnet internals -> CrossViewAttention.
CROSS_VIEW_RULES: list[Rule] = [
    (r"cross_view_attention_layers\.(\d+)\.multihead_attn\.in_proj_(weight|bias)",
     r"attention.\1.attn.{q,k,v}_proj.\2"),
    (r"cross_view_attention_layers\.(\d+)\.multihead_attn\.out_proj\.(weight|bias)", r"attention.\1.attn.out_proj.\2"),
    (r"cross_view_attention_layers\.(\d+)\.norm\.(weight|bias)", r"attention.\1.norm.\2"),
    (r"ffn_layers\.(\d+)\.(linear1|linear2|norm)\.(weight|bias)", r"ffn.\1.\2.\3"),
    (r"layer_norms\.(\d+)\.(weight|bias)", r"out_norm.\1.\2"),
    (r"pe_layer\.position_embedding_head\.(0|1|3)\.(weight|bias)", r"pos.mlp.\1.\2"),
]  # fmt: skip


def _shift(template: str) -> str:
    """A template's group references moved up by one (for rules nested under a prefix with its own group)."""
    return re.sub(r"\\(\d)", lambda m: "\\" + str(int(m.group(1)) + 1), template)


def _attention(official: str, ours: str) -> list[Rule]:
    """Rules for a Mask2Former attention block (nn.MultiheadAttention inside, plus its norm)."""
    return [
        (rf"{official}\.(\d+)\.(?:multihead_attn|self_attn)\.in_proj_(weight|bias)", rf"{ours}.{{q,k,v}}_proj.\2"),
        (rf"{official}\.(\d+)\.(?:multihead_attn|self_attn)\.out_proj\.(weight|bias)", rf"{ours}.out_proj.\2"),
        (rf"{official}\.(\d+)\.norm\.(weight|bias)", rf"{ours[: -len('.attn')]}.norm.\2"),
    ]


TRAINABLE_RULES: list[Rule] = [
    # backbone 3D blocks (reference 1.4)
    (r"visual_backbone\.backbone\.token_to_trans\.(\d+)\.(0|1)\.(weight|bias)", r"backbone_3d.down.\1.\2.\3"),
    (r"visual_backbone\.backbone\.trans_to_token\.(\d+)\.(1|2)\.(weight|bias)", r"backbone_3d.up.\1.\2.\3"),
    *[(rf"visual_backbone\.backbone\.cross_view_attn\.(\d+)\.{a}", rf"backbone_3d.cross_view.\1.{_shift(b)}")
      for a, b in CROSS_VIEW_RULES],
    # pixel decoder (reference 1.5)
    (r"visual_backbone\.pixel_decoder\.input_proj\.(\d+)\.0\.(weight|bias)", r"pixel_decoder.input_proj.\1.proj.\2"),
    (r"visual_backbone\.pixel_decoder\.input_proj\.(\d+)\.1\.(weight|bias)", r"pixel_decoder.input_proj.\1.norm.\2"),
    (r"visual_backbone\.pixel_decoder\.transformer\.level_embed", r"pixel_decoder.level_embed"),
    (r"visual_backbone\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.self_attn\.(\w+)\.(weight|bias)",
     r"pixel_decoder.encoder.\1.attn.\2.\3"),
    (r"visual_backbone\.pixel_decoder\.transformer\.encoder\.layers\.(\d+)\.(norm1|norm2|linear1|linear2)\.(weight|bias)",
     r"pixel_decoder.encoder.\1.\2.\3"),
    *[(rf"visual_backbone\.pixel_decoder\.cross_view_attn\.2\.{a}", rf"pixel_decoder.cross_view.{b}")
      for a, b in CROSS_VIEW_RULES],
    (r"visual_backbone\.pixel_decoder\.adapter_1\.weight", r"pixel_decoder.skip_proj.weight"),
    (r"visual_backbone\.pixel_decoder\.adapter_1\.norm\.(weight|bias)", r"pixel_decoder.skip_norm.\1"),
    (r"visual_backbone\.pixel_decoder\.layer_1\.(weight|bias)", r"pixel_decoder.fuse.\1"),
    (r"visual_backbone\.pixel_decoder\.layer_1\.norm\.(weight|bias)", r"pixel_decoder.fuse_norm.\1"),
    (r"visual_backbone\.pixel_decoder\.mask_features\.(weight|bias)", r"pixel_decoder.mask_features.\1"),
    # mask decoder (reference 1.9-1.10)
    (r"mask_decoder\.pe_layer\.position_embedding_head\.(0|1|3)\.(weight|bias)", r"mask_decoder.pos_3d.mlp.\1.\2"),
    *_attention(r"mask_decoder\.transformer_cross_attention_layers", r"mask_decoder.layers.\1.cross_attn.attn"),
    *_attention(r"mask_decoder\.transformer_self_attention_layers", r"mask_decoder.layers.\1.self_attn.attn"),
    *_attention(r"mask_decoder\.vis_output_cross_attn", r"mask_decoder.layers.\1.unit_cross_attn.attn"),
    (r"mask_decoder\.transformer_ffn_layers\.(\d+)\.(linear1|linear2|norm)\.(weight|bias)",
     r"mask_decoder.layers.\1.ffn.\2.\3"),
    (r"mask_decoder\.vis_output_ffn\.(\d+)\.(linear1|linear2|norm)\.(weight|bias)",
     r"mask_decoder.layers.\1.unit_ffn.\2.\3"),
    (r"mask_decoder\.decoder_norm\.(weight|bias)", r"mask_decoder.heads.norm.\1"),
    (r"mask_decoder\.class_embed\.(weight|bias)", r"mask_decoder.heads.class_embed.\1"),
    (r"mask_decoder\.mask_embed\.layers\.(\d+)\.(weight|bias)", r"mask_decoder.heads.mask_embed.layers.\1.\2"),
    (r"mask_decoder\.query_feat\.weight", r"mask_decoder.query_feat.weight"),
    (r"mask_decoder\.query_embed\.weight", r"mask_decoder.query_pos.weight"),
    (r"mask_decoder\.lang_pos_embed\.weight", r"mask_decoder.text_pos.weight"),
    (r"mask_decoder\.lang_encoder\.text_projector\.0\.(weight|bias)", r"text_encoder.projector.\1"),
]  # fmt: skip

ALL_RULES: list[Rule] = [(re.escape(DINO) + a, "image_encoder.vit." + b) for a, b in DINO_RULES] + TRAINABLE_RULES
_COMPILED = [(re.compile(a + r"$"), b) for a, b in ALL_RULES]


def official_to_ours(name: str) -> list[str] | None:
    """Our name(s) for one official tensor name: one name, three for a packed [q; k; v] tensor, None if unmapped."""
    for pattern, template in _COMPILED:
        match = pattern.match(name)
        if match:
            target = match.expand(template)
            if "{q,k,v}" in target:
                return [target.replace("{q,k,v}", part) for part in "qkv"]
            return [target]
    return None


def _convert(value: torch.Tensor, count: int) -> list[torch.Tensor]:
    if count == 3:
        return list(value.chunk(3, dim=0))
    if value.dim() == 4 and value.shape[-2:] == (1, 1):  # 1x1 convolution -> Linear
        return [value[:, :, 0, 0]]
    return [value]


@dataclass
class OfficialConversion:
    """Result of :func:`convert_official_state_dict`: ``state`` (our names), and the official names that were
    ``dead`` (documented no-effect modules), ``jina`` (the Jina-CLIP towers, not mapped) or ``unknown``."""

    state: dict[str, torch.Tensor] = field(default_factory=dict)
    dead: list[str] = field(default_factory=list)
    jina: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def convert_official_state_dict(
    official: dict[str, torch.Tensor], backbone_3d: bool = True, transform: Callable | None = None
) -> OfficialConversion:
    """Rename (and split/squeeze) an official state dict into ours.

    Args:
        official: name -> tensor as saved by the official code (a ``{"model": ...}`` wrapper is unwrapped).
        backbone_3d: map the backbone 3D blocks (our ``backbone_3d`` enabled); otherwise they count as dead.
        transform: optional function applied to every converted tensor (e.g. a dtype cast).
    """
    if "model" in official and isinstance(official["model"], dict):
        official = official["model"]
    out = OfficialConversion()
    for name, value in official.items():
        if name.startswith(JINA):
            out.jina.append(name)
            continue
        if name.startswith(DEAD) or (not backbone_3d and name.startswith(BACKBONE_3D)):
            out.dead.append(name)
            continue
        targets = official_to_ours(name)
        if targets is None:
            out.unknown.append(name)
            continue
        for target, tensor in zip(targets, _convert(value, len(targets)), strict=True):
            out.state[target] = tensor if transform is None else transform(tensor)
    return out


def dinov2_hub_to_transformers(hub: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A torch-hub DINOv2 (with registers) state dict, e.g. ``dinov2_vitl14_reg4_pretrain.pth``, under the names
    of transformers' ``Dinov2WithRegistersModel`` (qkv split); load it with ``model.load_state_dict``.

    Raises:
        CheckpointError: a tensor name that is not a DINOv2 hub name.
    """
    conversion = convert_official_state_dict({DINO + name: value for name, value in hub.items()})
    if conversion.unknown:
        names = [n.removeprefix(DINO) for n in conversion.unknown]
        raise CheckpointError(f"not DINOv2 hub tensors: {names[:5]} ({len(names)})")
    return {name.removeprefix("image_encoder.vit."): value for name, value in conversion.state.items()}


def load_official_weights(model: torch.nn.Module, official: dict[str, torch.Tensor]) -> OfficialConversion:
    """Load a released state dict into ``model`` (a ``paper``-shaped UniVLG); returns the conversion report.

    Every converted tensor must exist in the model with the same shape, and every model tensor outside the text
    encoder backbone must be provided (:func:`~univlg.model.state_dict.load_model_state`).

    Raises:
        CheckpointError: unknown official tensors, shape mismatches, or model tensors left without a value.
    """
    has_3d = getattr(model, "backbone_3d", None) is not None
    ours = model.state_dict()
    conversion = convert_official_state_dict(official, backbone_3d=has_3d)
    if conversion.unknown:
        raise CheckpointError(
            f"official checkpoint: unknown tensors {conversion.unknown[:5]} ({len(conversion.unknown)})"
        )
    state = {k: v.to(ours[k].dtype) if k in ours else v for k, v in conversion.state.items()}
    load_model_state(model, state, "official checkpoint", ignore_prefixes=(TEXT_BACKBONE,))
    return conversion
