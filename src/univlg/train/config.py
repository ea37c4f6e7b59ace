"""Training configuration: data sources, optimiser, losses and the run itself (``configs/*.yaml``).

A YAML file names a model preset (``model_preset: tiny``) and may override any of its fields under ``model:``;
``--set key=value`` overrides apply last (``--set optim.lr=3e-4``, ``--set model.decoder.num_queries=50``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from univlg.config import MODEL_PRESETS, ModelConfig, apply_overrides, from_dict, read_yaml, to_dict
from univlg.data.datasets import SampleOptions
from univlg.errors import ConfigError

SOURCE_KINDS = ("referral", "detection", "image_referral", "frame_detection", "qa")


@dataclass
class SourceConfig:
    """One training data source.

    kind: "referral" (SR3D/NR3D CSV or ScanRefer JSON at ``annotations``), "detection" (every scene listed in
    ``annotations``, a text file of scene ids, or all scenes of ``scans`` when empty), "frame_detection" (2D:
    single frames of those scenes with their ``instance-filt`` images), "image_referral" (RefCOCO refs pickle at
    ``annotations`` with COCO ``instances``, images under ``images``), or "qa" (ScanQA JSON at ``annotations``:
    the question grounds its objects and, with the model's generation head, trains the answer). ``scans`` is the
    folder of scan folders; ``weight`` the sampling weight among sources of the same modality (3D or 2D).
    """

    kind: str
    scans: str = ""
    annotations: str = ""
    instances: str = ""
    images: str = ""
    weight: float = 1.0


@dataclass
class DataConfig:
    """Training sources, the validation referrals and how samples are built (see ``SampleOptions``).

    ``sentences_per_scene``: referral sources decode up to this many sentences of a scene against one encoding
    of its chosen views (``ReferralDataset``); 1 = one sentence per visual sample, as the paper trains.
    """

    sources: list[SourceConfig] = field(default_factory=list)
    val_scans: str = ""
    val_annotations: str = ""
    val_max_referrals: int = 400
    detection_classes: list[str] = field(default_factory=list)
    num_frames: int = SampleOptions.num_frames
    max_size: int | None = SampleOptions.max_size
    max_points: int = SampleOptions.max_points
    subset_distance: float = SampleOptions.subset_distance
    augment: bool = SampleOptions.augment
    lift_probability: float = 0.5
    prob_2d: float = 0.5
    scene_cache: int = 64
    sentences_per_scene: int = 1
    num_workers: int = 0


@dataclass
class OptimConfig:
    """AdamW with per-module learning-rate multipliers (module path -> factor), warm-up + cosine, clipping."""

    lr: float = 1e-4
    weight_decay: float = 0.05
    lr_multipliers: dict = field(default_factory=dict)
    clip_norm: float = 0.01
    warmup_steps: int = 1000
    warmup_factor: float = 1.0


@dataclass
class LossConfig:
    """Loss weights, matching costs (reference 3.2-3.3) and the box-loss mode ("soft" or "match_only").
    ``unit_span`` weighs this library's dense unit-to-words loss (``losses.unit_span_loss``; 0 = off, as in the
    paper), ``query_rank`` its query-ranking contrast (``losses.query_rank_loss``; 0 = off), ``relation_anchor`` its
    supervision of the relation head's anchors (``losses.relation_anchor_loss``; 0 = off), ``relation_class`` of
    its reference-type classifier (``losses.relation_class_loss``; 0 = off), ``relation_geometry`` of its geometry
    weights on the true geometry of a referral's candidates (``losses.relation_geometry_loss``; 0 = off); ``answer`` the
    generation head's token cross-entropy (x5, the released base config)."""

    span: float = 2.0
    mask: float = 15.0
    dice: float = 6.0
    bbox: float = 3.0
    giou: float = 3.0
    unit_span: float = 0.0
    query_rank: float = 0.0
    relation_anchor: float = 0.0
    relation_class: float = 0.0
    relation_geometry: float = 0.0
    answer: float = 5.0
    match_class: float = 2.0
    match_mask: float = 0.2
    match_dice: float = 0.2
    match_bbox: float = 0.1
    match_giou: float = 0.1
    box_loss: str = "soft"


@dataclass
class TrainConfig:
    """A whole training run. ``cpu_threads`` sets torch's intra-op threads (0 keeps torch's default); two runs
    sharing a 2-core machine go faster with 1 each. ``init_weights``: a saved model folder whose tensors start the
    run (fine-tuning; tensors it lacks, e.g. a new answer head, keep their random init; ignored on ``--resume``)."""

    model_preset: str = "tiny"
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    steps: int = 1000
    batch_size: int = 2
    seed: int = 0
    amp: str = "none"
    device: str = "auto"
    output_dir: str = "runs/train"
    log_every: int = 10
    val_every: int = 500
    checkpoint_every: int = 500
    find_unused_parameters: bool = True
    cpu_threads: int = 0
    init_weights: str = ""


def _merge(base: dict, update: dict, where: str) -> dict:
    out = dict(base)
    for key, value in update.items():
        if key not in base:
            raise ConfigError(f"{where}: unknown key {key!r}; known: {sorted(base)}")
        out[key] = (
            _merge(base[key], value, f"{where}.{key}")
            if isinstance(base[key], dict) and isinstance(value, dict) and key != "lr_multipliers"
            else value
        )
    return out


def train_config_from_dict(data: dict, where: str = "config") -> TrainConfig:
    """A :class:`TrainConfig` whose ``model`` starts from the preset ``model_preset`` and takes ``model`` on top."""
    data = dict(data or {})
    preset = data.get("model_preset", TrainConfig.model_preset)
    if preset not in MODEL_PRESETS:
        raise ConfigError(f"{where}: model_preset must be one of {sorted(MODEL_PRESETS)}, got {preset!r}")
    data["model"] = _merge(to_dict(MODEL_PRESETS[preset]()), data.get("model") or {}, f"{where}: model")
    return validate_train_config(from_dict(TrainConfig, data, where=where), where)


def validate_train_config(cfg: TrainConfig, where: str = "config") -> TrainConfig:
    """``cfg`` itself, after checking the fields that take one of a few names or must be in range (here, so that
    every process of a distributed run fails before it starts)."""
    for source in cfg.data.sources:
        if source.kind not in SOURCE_KINDS:
            raise ConfigError(f"{where}: data source kind must be one of {SOURCE_KINDS}, got {source.kind!r}")
    if cfg.loss.box_loss not in ("soft", "match_only"):
        raise ConfigError(f"{where}: loss.box_loss must be 'soft' or 'match_only', got {cfg.loss.box_loss!r}")
    if cfg.amp not in ("none", "bf16", "fp16"):
        raise ConfigError(f"{where}: amp must be none, bf16 or fp16, got {cfg.amp!r}")
    negative = [name for name, value in vars(cfg.loss).items() if isinstance(value, float | int) and value < 0]
    if negative:
        raise ConfigError(f"{where}: loss weights and matching costs cannot be negative: {negative}")
    for term in ("relation_anchor", "relation_geometry"):
        if getattr(cfg.loss, term) > 0 and not cfg.model.decoder.relation_head:
            raise ConfigError(f"{where}: loss.{term} supervises the relation head; set "
                              "model.decoder.relation_head: true (or the weight to 0)")  # fmt: skip
    if cfg.loss.relation_class > 0 and not (cfg.model.decoder.relation_head and cfg.model.decoder.relation_classes):
        raise ConfigError(f"{where}: loss.relation_class trains the relation head's classifier; set "
                          "model.decoder.relation_head: true and model.decoder.relation_classes "
                          "(or the weight to 0)")  # fmt: skip
    if cfg.data.sentences_per_scene < 1:
        raise ConfigError(f"{where}: data.sentences_per_scene must be at least 1, got {cfg.data.sentences_per_scene}")
    if cfg.data.val_annotations and not cfg.data.val_scans:
        raise ConfigError(f"{where}: data.val_annotations is set but data.val_scans (the scans folder they refer to) "
                          "is not")  # fmt: skip
    return cfg


def load_train_config(path: str | Path, overrides: list[str] = ()) -> TrainConfig:
    """Read a training YAML file and apply dotted ``overrides``.

    Raises:
        ConfigError: a bad file or override; ``model_preset`` cannot be overridden (the preset is expanded into
        ``model`` when the file is read), it belongs in the YAML file.
    """
    for item in overrides:
        if item.partition("=")[0].strip() == "model_preset":
            raise ConfigError(
                f"override {item!r}: the model preset cannot be changed with --set (it is expanded when the file is "
                f"read); put 'model_preset: NAME' in {path} or in a copy of it"
            )
    cfg = apply_overrides(train_config_from_dict(read_yaml(path), str(path)), list(overrides))
    return validate_train_config(cfg, f"{path} with overrides {list(overrides)}")
