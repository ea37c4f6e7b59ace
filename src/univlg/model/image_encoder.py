"""Image encoder: a ``Dinov2WithRegistersModel`` (transformers) giving several blocks' patch features.

For ``paper`` it is the frozen DINOv2 ViT-L/14 with registers, loaded from a local Hugging Face folder, run in
bf16 on CUDA and in chunks of frames; for ``tiny`` the same class with a small random-init config, trainable.
Each level is a block's output passed through the final LayerNorm, with the CLS and register tokens dropped,
reshaped to the patch grid (reference 1.3).
"""

from __future__ import annotations

import contextlib
import logging

import torch
from torch import nn

from univlg.config import ImageEncoderConfig
from univlg.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ImageEncoder(nn.Module):
    """Multi-level patch features of a ViT.

    Args:
        vit: a transformers ``Dinov2WithRegistersModel`` (``embeddings``, ``encoder.layer``, ``layernorm``).
        feature_layers: 0-based block indices whose (layer-normed) outputs are returned, in this order.
        frozen: no gradient, eval mode, bf16 autocast on CUDA (``bf16_on_cuda``), ``frame_chunk`` frames at a time.
    """

    def __init__(
        self,
        vit: nn.Module,
        feature_layers: tuple[int, ...],
        frozen: bool,
        frame_chunk: int = 16,
        bf16_on_cuda: bool = True,
    ):
        super().__init__()
        num_layers = len(vit.encoder.layer)
        if not feature_layers or any(not 0 <= i < num_layers for i in feature_layers):
            raise ConfigError(f"image_encoder.feature_layers {feature_layers} must lie in [0, {num_layers})")
        self.vit = vit
        self.feature_layers = tuple(feature_layers)
        self.frozen = frozen
        self.frame_chunk = frame_chunk
        self.bf16_on_cuda = bf16_on_cuda
        self.patch_size = int(vit.config.patch_size)
        self.hidden_size = int(vit.config.hidden_size)
        self.num_prefix = 1 + int(vit.config.num_register_tokens)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        if frozen:
            self.vit.requires_grad_(False)
            self.vit.eval()
        else:  # parameters the forward never uses stay frozen, so every trainable one gets a gradient
            self.vit.embeddings.mask_token.requires_grad_(False)
            for layer in self.vit.encoder.layer[max(self.feature_layers) + 1 :]:
                layer.requires_grad_(False)

    def train(self, mode: bool = True) -> ImageEncoder:
        """Set the mode; a frozen ViT stays in eval mode."""
        super().train(mode)
        if self.frozen:
            self.vit.eval()
        return self

    def _encode(self, images: torch.Tensor) -> list[torch.Tensor]:
        n, _, height, width = images.shape
        h, w = height // self.patch_size, width // self.patch_size
        x = self.vit.embeddings((images - self.mean) / self.std)
        wanted = set(self.feature_layers)
        found = {}
        for index, layer in enumerate(self.vit.encoder.layer[: max(self.feature_layers) + 1]):
            x = layer(x)
            x = x[0] if isinstance(x, tuple) else x  # transformers 4.x layers return tuples
            if index in wanted:
                found[index] = self.vit.layernorm(x)[:, self.num_prefix :].reshape(n, h, w, -1)
        return [found[i] for i in self.feature_layers]

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        """images: (N, 3, H, W) float in [0, 1], H and W multiples of the patch size.

        Returns:
            one (N, H / p, W / p, C) float32 tensor per feature layer (channels last).
        """
        if images.shape[-2] % self.patch_size or images.shape[-1] % self.patch_size:
            raise ValueError(f"image size {tuple(images.shape[-2:])} is not a multiple of {self.patch_size}")
        if not self.frozen:
            return self._encode(images)
        use_bf16 = self.bf16_on_cuda and images.is_cuda
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_bf16 else contextlib.nullcontext()
        chunks = []
        with torch.no_grad(), autocast:
            for start in range(0, images.shape[0], self.frame_chunk):
                chunks.append(self._encode(images[start : start + self.frame_chunk]))
        return [torch.cat([c[i] for c in chunks]).float() for i in range(len(self.feature_layers))]


def build_vit(cfg: ImageEncoderConfig) -> nn.Module:
    """The ``Dinov2WithRegistersModel``: from ``cfg.path`` when ``cfg.pretrained``, else random init of the sizes."""
    from transformers import Dinov2WithRegistersConfig, Dinov2WithRegistersModel

    if cfg.pretrained:
        if not cfg.path:
            raise ConfigError("image_encoder.pretrained needs image_encoder.path (a local Hugging Face folder)")
        try:
            return Dinov2WithRegistersModel.from_pretrained(cfg.path)
        except (OSError, ValueError) as error:
            raise CheckpointError(f"{cfg.path}: cannot load a Dinov2WithRegistersModel: {error}") from error
    config = Dinov2WithRegistersConfig(
        hidden_size=cfg.hidden_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        mlp_ratio=4,
        patch_size=cfg.patch_size,
        image_size=cfg.pretrain_image_size,
        num_register_tokens=cfg.num_register_tokens,
    )
    return Dinov2WithRegistersModel(config)


def build_image_encoder(cfg: ImageEncoderConfig) -> ImageEncoder:
    """The configured image encoder."""
    vit = build_vit(cfg)
    return ImageEncoder(vit, cfg.feature_layers, cfg.frozen, cfg.frame_chunk, cfg.bf16_on_cuda)
