"""The training loop: AMP, gradient clipping, DDP, logging, periodic validation, atomic checkpoints, exact resume.

``train(cfg)`` is what ``univlg train`` and ``torchrun -m univlg.train`` run. A run folder holds
``config.yaml``, ``log.jsonl`` (one JSON object per logged step / validation), TensorBoard events under ``tb/``,
``checkpoint.pt`` (latest full training state) and, at the end, ``model/`` (``UniVLG.save_pretrained``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from dataclasses import dataclass, fields
from functools import partial
from pathlib import Path

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from univlg.benchmark_data import filter_referrals, read_benchmark_referrals
from univlg.config import save_config
from univlg.data.collate import TrainingBatch, collate_training
from univlg.data.records import Referral
from univlg.data.scene_store import SceneStore
from univlg.errors import CheckpointError
from univlg.model.predictions import Predictions, unit_targets
from univlg.model.state_dict import load_matching_state, load_model_state
from univlg.model.univlg import WEIGHTS_FILE, UniVLG, build_model
from univlg.predict import predict_referrals, score_referrals
from univlg.train import distributed
from univlg.train.checkpoint import load_checkpoint, save_checkpoint
from univlg.train.config import LossConfig, TrainConfig, validate_train_config
from univlg.train.data_stream import BatchStream, SceneStores, build_source
from univlg.train.losses import LossWeights, SetCriterion
from univlg.train.matcher import HungarianMatcher
from univlg.train.optim import build_optimizer, build_scheduler
from univlg.train.targets import SampleTargets, relation_labels

logger = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"


def build_criterion(cfg: LossConfig) -> SetCriterion:
    """The set criterion with its matcher, from the loss config."""
    matcher = HungarianMatcher(cfg.match_class, cfg.match_mask, cfg.match_dice, cfg.match_bbox, cfg.match_giou)
    weights = LossWeights(**{f.name: getattr(cfg, f.name) for f in fields(LossWeights)})
    return SetCriterion(matcher, weights, box_loss=cfg.box_loss)


def initialise_from(model: UniVLG, folder: Path) -> None:
    """Start ``model`` from the weights of a saved model folder (``init_weights``), keeping what it lacks."""
    from safetensors.torch import load_file

    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"init_weights: {weights} not found (a folder written by UniVLG.save_pretrained)")
    kept = load_matching_state(model, load_file(str(weights)), str(weights))
    logger.info("initialised from %s; %d tensors keep their initial values%s", folder, len(kept),
                f" (e.g. {kept[:3]})" if kept else "")  # fmt: skip


def unit_level_targets(preds: Predictions, batch: TrainingBatch) -> list[SampleTargets]:
    """Ground truth over the model's mask units (reference 3.1), one :class:`SampleTargets` per utterance b: its
    point masks (G_b, P_b) -> voxel fractions -> unit masks (G_b, U), and its distractors' alike. ``preds`` rows
    are utterances too (a visual sample's encoding is repeated for each of its sentences), so
    ``preds.point_to_voxel[b]`` is utterance b's."""
    num_units = preds.mask_logits.shape[-1]

    def to_units(masks: torch.Tensor, b: int) -> torch.Tensor:
        padded = masks.new_zeros(masks.shape[0], preds.point_to_voxel.shape[1])
        padded[:, : masks.shape[1]] = masks
        return unit_targets(padded, preds.point_to_voxel[b], preds.voxel_to_unit[b], num_units)

    targets = []
    for b, masks in enumerate(batch.point_masks):
        distractors = batch.distractor_masks[b]
        targets.append(
            SampleTargets(
                batch.positive_maps[b],
                to_units(masks, b),
                batch.boxes[b],
                batch.anchored[b],
                None if distractors is None else to_units(distractors, b),
            )
        )
    return targets


def compute_losses(model, criterion: SetCriterion, batch: TrainingBatch) -> dict[str, torch.Tensor]:
    """Forward one batch and return the criterion's losses (``loss`` is their weighted sum)."""
    preds = model(batch.batch, with_unit_span=criterion.weights.unit_span > 0)
    targets = unit_level_targets(preds, batch)
    classes = getattr(model, "module", model).cfg.decoder.relation_classes  # DistributedDataParallel wraps it
    labels = relation_labels(batch.infos, classes).to(preds.span_logits.device) if classes else None
    boxes_supervised = all(b is not None for b in batch.boxes)
    return criterion(
        preds.span_logits,
        preds.text_valid,
        preds.mask_logits,
        preds.unit_valid,
        targets,
        boxes=preds.boxes if boxes_supervised else None,
        soft_boxes=preds.soft_boxes if boxes_supervised else None,
        unit_span_logits=preds.unit_span_logits,
        answer_logits=preds.answer_logits,
        answer_labels=batch.batch.answer_labels,
        anchor_word_logits=preds.anchor_word_logits,
        anchor_logits=preds.anchor_logits,
        relation_logits=preds.relation_logits,
        relation_labels=labels,
        geometry_weights=preds.geometry_weights,
        unit_xyz=preds.unit_xyz,
    )


def last_layer_terms(losses: dict[str, torch.Tensor]) -> dict[str, float]:
    """``train/<term>`` of the last decoder layer's weighted loss terms."""
    layers = [int(k.rsplit("_", 1)[1]) for k in losses if k != "loss"]
    last = f"_{max(layers)}" if layers else ""
    terms = {k: v for k, v in losses.items() if k != "loss" and k.endswith(last)}
    return {f"train/{k[5 : -len(last)]}": float(v.detach()) for k, v in terms.items()}


def _autocast(cfg: TrainConfig, device: torch.device):
    if cfg.amp == "none" or device.type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if cfg.amp == "bf16" else torch.float16)


def validation_referrals(cfg: TrainConfig) -> list[Referral]:
    """The first ``val_max_referrals`` validation referrals that pass the benchmarks' filter (``filter_referrals``)."""
    referrals, _ = filter_referrals(read_benchmark_referrals(Path(cfg.data.val_annotations)))
    return referrals[: cfg.data.val_max_referrals]


def validate(model: UniVLG, referrals: list[Referral], store: SceneStore) -> dict[str, float]:
    """Grounding accuracy (Acc@0.25/0.5/0.75, per relation) on ``referrals`` (scenes from ``store``), whole
    scenes, GT spans."""
    report = score_referrals(store, predict_referrals(model, store, referrals))
    metrics = {f"val/{k}": v for k, v in report.accuracy.items()}
    for relation, accuracy in (report.by_relation or {}).items():
        metrics[f"val/{relation}/acc@0.25"] = accuracy["acc@0.25"]
    return metrics


class RunLog:
    """JSON lines + TensorBoard scalars, written by the main process only."""

    def __init__(self, folder: Path, enabled: bool):
        self.enabled = enabled
        self.writer = SummaryWriter(str(folder / "tb")) if enabled else None
        self.path = folder / "log.jsonl"

    def write(self, step: int, values: dict[str, float]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a") as handle:
            handle.write(json.dumps({"step": step, **values}) + "\n")
        for key, value in values.items():
            self.writer.add_scalar(key, value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


@dataclass
class TrainResult:
    """The trained model (unwrapped from DDP), this process's rank, and the last metrics: validation (if any)
    and ``train/loss``."""

    model: UniVLG
    rank: int
    metrics: dict[str, float]


def train(cfg: TrainConfig, resume: bool = False, until: int | None = None) -> TrainResult:
    """Run (or, with ``resume``, continue from ``output_dir/checkpoint.pt``) the training ``cfg`` describes.

    ``until`` stops after that step with a checkpoint (for time-limited jobs; ``resume`` later continues exactly
    as if uninterrupted). The final model is saved only when the run reaches ``cfg.steps``. A config with
    impossible values raises ConfigError before anything starts.
    """
    validate_train_config(cfg)
    process = distributed.setup(cfg.device)
    if cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    out = Path(cfg.output_dir)
    if process.is_main:
        out.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out / "config.yaml")
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model).to(process.device)
    criterion = build_criterion(cfg.loss)
    optimizer = build_optimizer(model, cfg.optim.lr, cfg.optim.weight_decay, cfg.optim.lr_multipliers)
    scheduler = build_scheduler(optimizer, cfg.steps, cfg.optim.warmup_steps, cfg.optim.warmup_factor)
    scaler = torch.amp.GradScaler("cuda", enabled=cfg.amp == "fp16" and process.device.type == "cuda")
    if cfg.init_weights and not resume:
        initialise_from(model, Path(cfg.init_weights))
    start = 0
    if resume:
        state = load_checkpoint(out / CHECKPOINT, map_location=process.device)
        load_model_state(model, state["model"], str(out / CHECKPOINT))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start = int(state["step"])
        logger.info("resuming %s at step %d", out, start)
    trained = model
    if process.world_size > 1:
        trained = DistributedDataParallel(model, find_unused_parameters=cfg.find_unused_parameters)
    stores = SceneStores(cfg.data.scene_cache)
    distractors = cfg.loss.relation_geometry > 0  # only that term reads the distractors' masks
    sources = [build_source(s, cfg.data, stores, model.patch_size, distractors) for s in cfg.data.sources]
    if model.answer_head is None and any(s.kind == "qa" for s in cfg.data.sources):
        logger.warning("qa sources train grounding only: the model has no answer head (model.answer.enabled)")
    validating = bool(cfg.data.val_annotations) and process.is_main
    # One store for the whole run: the training sources' own when the validation scans are theirs.
    val_store = stores.get(cfg.data.val_scans) if validating else None
    val_referrals = validation_referrals(cfg) if validating else []
    answer_labels = None if model.answer_head is None else model.answer_head.labels
    collate = partial(collate_training, tokenize=model.tokenize, answer_labels=answer_labels)
    stream = BatchStream(
        sources,
        collate,
        cfg.batch_size,
        cfg.seed,
        cfg.data.prob_2d,
        cfg.data.lift_probability,
        start,
        cfg.steps,
        process.rank,
    )
    loader = torch.utils.data.DataLoader(stream, batch_size=None, num_workers=cfg.data.num_workers)
    stop = cfg.steps if until is None else min(until, cfg.steps)
    log = RunLog(out, process.is_main)
    metrics: dict[str, float] = {}
    last_loss = float("nan")
    progress = tqdm(total=cfg.steps, initial=start, desc="train", unit="step", disable=not process.is_main)
    tic, logged = time.perf_counter(), start
    for step, batch in loader:
        model.train()
        with _autocast(cfg, process.device):
            losses = compute_losses(trained, criterion, batch.to(process.device))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.clip_norm)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        last_loss = float(losses["loss"].detach())
        done = step + 1
        progress.update(1)
        if done % cfg.log_every == 0 or done == cfg.steps:
            elapsed = time.perf_counter() - tic
            values = last_layer_terms(losses)
            values.update(
                {
                    "train/loss": last_loss,
                    "train/grad_norm": float(grad_norm),
                    "train/lr": scheduler.get_last_lr()[0],
                    "train/samples_per_s": cfg.batch_size * process.world_size * (done - logged) / max(elapsed, 1e-9),
                }
            )
            log.write(done, values)
            progress.set_postfix(loss=f"{values['train/loss']:.3f}")
            tic, logged = time.perf_counter(), done
        if process.is_main and (done % cfg.checkpoint_every == 0 or done in (stop, cfg.steps)):
            state = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "step": done,
            }
            save_checkpoint(out / CHECKPOINT, state)
        if validating and (done % cfg.val_every == 0 or done == cfg.steps):
            metrics = validate(model, val_referrals, val_store)
            log.write(done, metrics)
            logger.info("step %d: %s", done, ", ".join(f"{k} {v:.3f}" for k, v in sorted(metrics.items())))
        distributed.barrier()
        if done >= stop:
            break
    progress.close()
    if process.is_main and stop == cfg.steps:
        model.save_pretrained(out / "model")
    log.close()
    distributed.teardown()
    return TrainResult(model=model, rank=process.rank, metrics={**metrics, "train/loss": last_loss})
