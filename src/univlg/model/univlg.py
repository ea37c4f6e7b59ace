"""UniVLG: image encoder -> (3D blocks) -> pixel decoder -> units -> language-conditioned mask decoder.

``forward(batch) -> Predictions`` is what training uses; ``encode_visual`` + ``decode`` split it so a scene is
encoded once for many utterances (``ground`` does this). ``save_pretrained`` / ``from_pretrained`` use a folder
with ``config.json`` (the :class:`~univlg.config.ModelConfig`) and ``model.safetensors``; frozen pretrained
encoders are referenced by their local path in the config, not copied.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from torch import nn

from univlg.config import ModelConfig, from_dict, to_dict
from univlg.data.batch import Batch, TextBatch, VisualBatch, tokenize
from univlg.data.formats.fields import read_json
from univlg.device import resolve_device
from univlg.errors import CheckpointError, ConfigError, FormatError
from univlg.geometry.boxes import boxes_from_masks, soft_boxes_from_masks
from univlg.model.answer_head import AnswerHead, build_answer_head
from univlg.model.answering import answer_questions
from univlg.model.cross_view import Backbone3D, build_backbone_3d
from univlg.model.grounding import Grounding, ground_sentences
from univlg.model.image_encoder import ImageEncoder, build_image_encoder
from univlg.model.lifting import Units, build_units, make_patch_cloud, patch_centres, patch_point_map, patch_units
from univlg.model.mask_decoder import MaskDecoder, build_mask_decoder
from univlg.model.pixel_decoder import PixelDecoder, build_pixel_decoder
from univlg.model.predictions import Predictions, VisualFeatures
from univlg.model.state_dict import load_model_state, shared_tensor_aliases
from univlg.model.text_encoder import TextEncoder, build_text_encoder, load_tokenizer

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class UniVLG(nn.Module):
    """The model; build it with :func:`build_model` or :meth:`from_pretrained`."""

    def __init__(
        self,
        cfg: ModelConfig,
        image_encoder: ImageEncoder,
        text_encoder: TextEncoder,
        tokenizer,
        backbone_3d: Backbone3D | None,
        pixel_decoder: PixelDecoder,
        mask_decoder: MaskDecoder,
        answer_head: AnswerHead | None = None,
    ):
        super().__init__()
        self.cfg = cfg
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.tokenizer = tokenizer
        self.backbone_3d = backbone_3d
        self.pixel_decoder = pixel_decoder
        self.mask_decoder = mask_decoder
        self.answer_head = answer_head

    @property
    def patch_size(self) -> int:
        """Pixels per patch side of the image encoder (images must be padded to multiples of it)."""
        return self.image_encoder.patch_size

    @property
    def device(self) -> torch.device:
        """Device of the parameters."""
        return next(self.parameters()).device

    def tokenize(self, texts: list[str]) -> TextBatch:
        """Tokenise utterances as the model expects (lower-cased when configured, truncated at max_length)."""
        cfg = self.cfg.text_encoder
        return tokenize(self.tokenizer, list(texts), cfg.max_length, cfg.lowercase)

    def encode_visual(self, visual: VisualBatch) -> VisualFeatures:
        """Encode B scenes or images into mask units (no Python loop over frames, points or queries)."""
        levels = self.image_encoder(visual.images[visual.view_valid])
        units, flat = self._lifted(visual, levels) if visual.lifted else self._plain_2d(visual, levels)
        return VisualFeatures(
            features=units.pack(flat),
            pos=self.mask_decoder.unit_position(units.xyz, units.pos2d),
            valid=units.valid,
            xyz=units.xyz,
            point_to_unit=units.point_to_unit,
            point_to_voxel=units.point_to_voxel,
            voxel_to_unit=units.voxel_to_unit,
            voxel_valid=units.voxel_valid,
        )

    def _lifted(self, visual: VisualBatch, levels: list[torch.Tensor]) -> tuple[Units, torch.Tensor]:
        """3D scenes and lifted images: units over the output points, (U, C) flat unit features."""
        b, v = visual.view_valid.shape
        n, h, w = levels[0].shape[:3]
        xyz, valid = patch_point_map(
            visual.point_maps[visual.view_valid], visual.point_valid[visual.view_valid], self.patch_size
        )
        cloud = make_patch_cloud(xyz, valid, visual.view_valid.nonzero()[:, 0])
        if self.backbone_3d is not None:
            levels = self.backbone_3d(levels, cloud)
        decoded = self.pixel_decoder.encode_2d(levels[1:])
        if visual.points is not None:
            points, points_valid = visual.points, visual.points_valid
        else:  # the valid patch-grid points of every view, in (view, row, column) order
            points = xyz.new_zeros(b, v, h, w, 3)
            points[visual.view_valid] = xyz
            points_valid = valid.new_zeros(b, v, h, w)
            points_valid[visual.view_valid] = valid
            points, points_valid = points.view(b, -1, 3), points_valid.view(b, -1)
        segments = visual.segment_ids if self.cfg.output.use_segments else None
        units, grid = build_units(points, points_valid, self.cfg.output.voxel_size, segments)
        unit_of_voxel = units.unit_of_voxel if segments is not None else None
        flat = self.pixel_decoder.forward_3d(levels[0], decoded, cloud, grid, b, unit_of_voxel, units.num_flat)
        return units, flat

    def _plain_2d(self, visual: VisualBatch, levels: list[torch.Tensor]) -> tuple[Units, torch.Tensor]:
        """Images without point maps: one unit per real patch, (U, C) flat unit features."""
        b, v = visual.view_valid.shape
        n, h, w = levels[0].shape[:3]
        if visual.pixel_valid is None:
            valid = torch.ones(n, h, w, dtype=torch.bool, device=visual.images.device)
        else:
            valid = patch_centres(visual.pixel_valid[visual.view_valid], self.patch_size)
        full = valid.new_zeros(b, v, h, w)
        full[visual.view_valid] = valid
        units = patch_units(full, self.patch_size)
        decoded = self.pixel_decoder.encode_2d(levels[1:])
        return units, self.pixel_decoder.forward_2d(levels[0], decoded, valid, units.flat_batch, b)

    def decode(
        self,
        visual: VisualFeatures,
        text: TextBatch,
        visual_index: torch.Tensor | None = None,
        with_boxes: bool = True,
        answer_labels: torch.Tensor | None = None,
        with_unit_span: bool = False,
    ) -> Predictions:
        """Decode utterances against encoded visual samples (``visual_index``: sample of each utterance);
        ``answer_labels`` (B, A): teacher-force the generation head (needs one); ``with_unit_span``: fill
        ``Predictions.unit_span_logits`` (the dense training term's input)."""
        visual = visual.select(visual_index)
        if visual.features.shape[0] != text.input_ids.shape[0]:
            raise ValueError(
                f"{text.input_ids.shape[0]} utterances for {visual.features.shape[0]} visual samples: "
                "give visual_index to pair them"
            )
        text_features = self.text_encoder(text.input_ids, text.attention_mask)
        out = self.mask_decoder(
            visual.features, visual.pos, visual.valid, text_features, text.attention_mask, visual.xyz, with_unit_span
        )
        boxes = soft = None
        if with_boxes:
            temperature = self.cfg.decoder.soft_box_temperature
            boxes = torch.stack(
                [boxes_from_masks(visual.xyz, m > 0, point_valid=visual.valid) for m in out.mask_logits]
            )
            soft = torch.stack(
                [soft_boxes_from_masks(visual.xyz, m.sigmoid(), temperature, visual.valid) for m in out.mask_logits]
            )
        return Predictions(
            span_logits=out.span_logits,
            mask_logits=out.mask_logits,
            boxes=boxes,
            soft_boxes=soft,
            queries=out.queries,
            unit_span_logits=out.unit_span_logits,
            text_valid=text.attention_mask,
            unit_valid=visual.valid,
            unit_xyz=visual.xyz,
            point_to_unit=visual.point_to_unit,
            point_to_voxel=visual.point_to_voxel,
            voxel_to_unit=visual.voxel_to_unit,
            voxel_valid=visual.voxel_valid,
            answer_logits=self._answer_logits(out.queries[-1], answer_labels),
            anchor_word_logits=out.anchor_word_logits,
            anchor_logits=out.anchor_logits,
            geometry_weights=out.geometry_weights,
            relation_logits=out.relation_logits,
        )

    def _answer_logits(self, queries: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor | None:
        if labels is None:
            return None
        if self.answer_head is None:
            raise ConfigError("answer labels given to a model without a generation head (model.answer.enabled)")
        return self.answer_head(queries, labels)

    def forward(self, batch: Batch, with_boxes: bool = True, with_unit_span: bool = False) -> Predictions:
        """batch -> Predictions (see :class:`~univlg.model.predictions.Predictions` for shapes)."""
        visual = self.encode_visual(batch.visual)
        return self.decode(visual, batch.text, batch.visual_index, with_boxes, batch.answer_labels, with_unit_span)

    def ground(
        self,
        scene,
        sentences: list[str],
        spans: list[tuple[int, int] | None] | None = None,
        batch_size: int = 8,
        max_frames: int | None = 450,
        max_size: int | None = None,
    ) -> list[Grounding]:
        """Ground sentences in a scene (encoded once); see :func:`univlg.model.grounding.ground_sentences`."""
        return ground_sentences(self, scene, sentences, spans, batch_size, max_frames, max_size)

    def answer(
        self,
        scene,
        questions: list[str],
        batch_size: int = 8,
        max_frames: int | None = 450,
        max_size: int | None = None,
        max_new_tokens: int | None = None,
        situations: list[str] | None = None,
    ) -> list[str]:
        """Answer questions about a scene (needs the generation head), each after its SQA3D situation when
        ``situations`` is given; see :func:`univlg.model.answering.answer_questions`."""
        return answer_questions(self, scene, questions, batch_size, max_frames, max_size, max_new_tokens, situations)

    # ------------------------------------------------------------------------------------------- persistence

    def _unsaved_prefixes(self) -> tuple[str, ...]:
        """State-dict prefixes not written by save_pretrained: frozen encoders loaded from a local folder."""
        prefixes = []
        if self.cfg.image_encoder.pretrained and self.cfg.image_encoder.frozen:
            prefixes.append("image_encoder.vit.")
        if self.cfg.text_encoder.pretrained and self.cfg.text_encoder.frozen:
            prefixes.append("text_encoder.backbone.")
        return tuple(prefixes)

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write ``config.json`` and ``model.safetensors`` (without frozen pretrained encoders) to ``folder``.

        Relative encoder folders (relative to the working directory) are written relative to ``folder``, which is
        how :meth:`from_pretrained` reads them; absolute ones are kept.
        """
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        skip = self._unsaved_prefixes()
        own = self.state_dict()
        aliases = shared_tensor_aliases(own)
        state = {
            k: t.detach().contiguous().cpu() for k, t in own.items() if not k.startswith(skip) and k not in aliases
        }
        save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "library": "univlg"})
        config = to_dict(self.cfg)
        for encoder in ("image_encoder", "text_encoder", "answer"):
            path = config[encoder]["path"]
            if path is not None and not Path(path).is_absolute():
                config[encoder]["path"] = os.path.relpath(path, folder)  # both relative to the working directory
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, map_location: str | torch.device = "cpu") -> UniVLG:
        """Build the model from ``folder/config.json`` and load ``folder/model.safetensors``; in eval mode.

        ``map_location``: a device or a name for :func:`univlg.device.resolve_device` ("auto", "cpu", "cuda:1").
        Relative encoder folders in the config are resolved against ``folder`` (not the working directory).

        Raises:
            CheckpointError: a file is missing or unreadable, or the weights do not fit the config (the message
            lists missing, unexpected and mis-shaped tensors).
            ConfigError: ``map_location`` names a device that is not available.
        """
        from safetensors.torch import load_file

        device = resolve_device(map_location) if isinstance(map_location, str) else torch.device(map_location)
        folder = Path(folder)
        config_path, weights_path = folder / CONFIG_FILE, folder / WEIGHTS_FILE
        for path in (config_path, weights_path):
            if not path.is_file():
                raise CheckpointError(
                    f"{path}: not found (a UniVLG checkpoint folder has {CONFIG_FILE} and {WEIGHTS_FILE})"
                )
        try:
            cfg = from_dict(ModelConfig, read_json(config_path), where=str(config_path))
        except (FormatError, ConfigError) as error:
            raise CheckpointError(f"{config_path}: {error}") from error
        for encoder in (cfg.image_encoder, cfg.text_encoder, cfg.answer):
            if encoder.path is not None and not Path(encoder.path).is_absolute():
                encoder.path = str(folder / encoder.path)
        model = build_model(cfg)
        try:
            state = load_file(str(weights_path), device=str(device))
        except Exception as error:  # safetensors raises its own error types for corrupt files
            raise CheckpointError(f"{weights_path}: cannot read: {error}") from error
        load_model_state(model, state, f"{weights_path} (config {config_path})", model._unsaved_prefixes())
        return model.to(device).eval()


def build_model(cfg: ModelConfig) -> UniVLG:
    """The UniVLG model described by ``cfg`` (frozen encoders from their local folders, the rest random-init)."""
    if cfg.pixel_decoder.dim != cfg.decoder.dim:
        raise ConfigError(f"pixel_decoder.dim {cfg.pixel_decoder.dim} must equal decoder.dim {cfg.decoder.dim}")
    if len(cfg.image_encoder.feature_layers) < 2:
        raise ConfigError("image_encoder.feature_layers needs a skip level and at least one decoder level")
    tokenizer = load_tokenizer(cfg.text_encoder)
    image_encoder = build_image_encoder(cfg.image_encoder)
    num_levels = len(cfg.image_encoder.feature_layers)
    model = UniVLG(
        cfg=cfg,
        image_encoder=image_encoder,
        text_encoder=build_text_encoder(cfg.text_encoder, cfg.decoder.dim, tokenizer),
        tokenizer=tokenizer,
        backbone_3d=build_backbone_3d(cfg.backbone_3d, image_encoder.hidden_size, num_levels),
        pixel_decoder=build_pixel_decoder(cfg.pixel_decoder, image_encoder.hidden_size, num_levels - 1),
        mask_decoder=build_mask_decoder(cfg.decoder, cfg.text_encoder.max_length),
        answer_head=build_answer_head(cfg.answer, cfg.decoder.dim, tokenizer),
    )
    logger.debug("built UniVLG: %d trainable parameters", sum(p.numel() for p in model.parameters() if p.requires_grad))
    return model
