"""Running a model over 2D image referrals (RefCOCO/+/g, synthetic frames): one mask per sentence in the image's
original pixels.

Each image is encoded once for all its sentences. An image that is a frame of a scan (``<scene>/color/<frame>``
in a :class:`~univlg.data.scene_store.SceneStore`) has a point map from its depth and goes through the lifted 3D
path; any other image goes through the plain 2D path (reference 2). The target query is the one with the highest
mean span probability over the target phrase's tokens (as for 3D grounding).

From patch logits to pixels (:func:`unit_logits_to_pixels`): the model predicts one logit per patch (plain 2D:
each patch is a unit; lifted: each patch takes the logit of the voxel its centre falls in). The (h, w) patch grid
covers the resized, padded image; the logits are upsampled to that pixel grid (bilinear with patch centres as
sample positions, or nearest: every pixel takes its patch's logit), cropped to the resized image, resized to the
original size the same way, and thresholded at 0. Patches the model did not see (invalid depth, padding) count as
confident background (logit :data:`UNSEEN_LOGIT`). The official code instead interpolates voxel logits to every
pixel's 3D point by inverse-distance kNN before a bilinear resize; on the plain 2D path there are no 3D points.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from univlg.data.batch import collate_visual, image_to_sample
from univlg.data.formats.scannet import read_color
from univlg.data.noun_phrase import find_target_span
from univlg.data.records import ImageReferral
from univlg.data.scene_store import SceneStore
from univlg.data.spans import image_referral_spans
from univlg.errors import SceneError
from univlg.model.grounding import best_queries, check_sentences, eval_mode, target_token_mask

logger = logging.getLogger(__name__)

UNSEEN_LOGIT = -20.0
UPSAMPLING_MODES = ("bilinear", "nearest")


@dataclass
class ImageGroundingPrediction:
    """The model's answer to one image referral: mask (H0, W0) bool in original pixels, the chosen query's mean
    span probability, and whether the image went through the lifted 3D path."""

    referral: ImageReferral
    mask: np.ndarray
    score: float
    lifted: bool


def unit_logits_to_pixels(
    logits: torch.Tensor, resized_hw: tuple[int, int], original_hw: tuple[int, int], patch: int, mode: str = "bilinear"
) -> torch.Tensor:
    """Per-patch logits -> per-pixel logits of the original image (see the module docstring).

    Args:
        logits: (h, w) float over the patch grid of the padded image (non-finite = unseen patch).
        resized_hw: (th, tw) the resized image inside the padded (h * patch, w * patch) one (top-left).
        original_hw: (H0, W0) the original image size.
        mode: "bilinear" or "nearest".

    Returns:
        (H0, W0) float logits.
    """
    if mode not in UPSAMPLING_MODES:
        raise ValueError(f"upsampling mode must be one of {UPSAMPLING_MODES}, got {mode!r}")
    grid = torch.where(torch.isfinite(logits), logits, torch.full_like(logits, UNSEEN_LOGIT)).float()[None, None]
    h, w = logits.shape
    if mode == "nearest":
        pixels = grid.repeat_interleave(patch, dim=2).repeat_interleave(patch, dim=3)
    else:
        pixels = F.interpolate(grid, size=(h * patch, w * patch), mode="bilinear", align_corners=False)
    th, tw = resized_hw
    pixels = pixels[..., :th, :tw]
    if (th, tw) != tuple(original_hw):
        if mode == "nearest":
            pixels = F.interpolate(pixels, size=tuple(original_hw), mode="nearest-exact")
        else:
            pixels = F.interpolate(pixels, size=tuple(original_hw), mode="bilinear", align_corners=False)
    return pixels[0, 0]


def ground_image(
    model,
    rgb: np.ndarray,
    sentences: Sequence[str],
    spans: Sequence[tuple[int, int]],
    point_map: tuple[np.ndarray, np.ndarray] | None = None,
    batch_size: int = 8,
    upsample: str = "bilinear",
) -> list[tuple[np.ndarray, float]]:
    """Ground sentences in one image: per sentence its (H0, W0) bool mask and the chosen query's score.

    Args:
        rgb: (H0, W0, 3) uint8; spans: the target phrase's character span per sentence;
        point_map: optional camera-frame ((H0, W0, 3) float, (H0, W0) bool) to take the lifted path.
    """
    sentences = check_sentences(sentences)
    sample = image_to_sample(
        rgb,
        model.patch_size,
        point_map=None if point_map is None else point_map[0],
        point_valid=None if point_map is None else point_map[1],
        max_size=model.cfg.image_encoder.max_image_size,
    )
    valid = sample.pixel_valid[0]
    resized = (int(valid.any(1).sum()), int(valid.any(0).sum()))
    h, w = valid.shape[0] // model.patch_size, valid.shape[1] // model.patch_size
    out = []
    with eval_mode(model), torch.no_grad():
        visual = model.encode_visual(collate_visual([sample]).to(model.device))
        for start in range(0, len(sentences), batch_size):
            chunk = sentences[start : start + batch_size]
            text = model.tokenize(chunk).to(model.device)
            index = torch.zeros(len(chunk), dtype=torch.long, device=model.device)
            preds = model.decode(visual, text, visual_index=index, with_boxes=False)
            chunk_spans = list(spans[start : start + batch_size])
            target = target_token_mask(text.offsets, text.attention_mask, chunk_spans).to(model.device)
            best, scores = best_queries(preds.span_logits[-1], target)
            logits = preds.point_logits()[torch.arange(len(chunk)), best].cpu()  # (n, h * w)
            for i in range(len(chunk)):
                pixels = unit_logits_to_pixels(logits[i].view(h, w), resized, rgb.shape[:2], model.patch_size, upsample)
                out.append(((pixels > 0).numpy(), float(scores[i, best[i]])))
    return out


def predict_image_referrals(
    model,
    referrals: Sequence[ImageReferral],
    image_root: str | Path,
    store: SceneStore | None = None,
    batch_size: int = 8,
    upsample: str = "bilinear",
    use_gt_spans: bool = True,
    progress: bool = False,
) -> list[ImageGroundingPrediction]:
    """Ground every image referral (in input order), each image encoded once.

    ``image_root``: folder the referrals' ``file_name`` are relative to; ``store``: scans whose frames can be
    lifted (None: every image takes the plain 2D path). Target phrase: with ``use_gt_spans``, the referral's own
    span, else the first mention of its category name (RefCOCO files store no spans; training does the same);
    otherwise, or when neither exists, the head noun of :func:`~univlg.data.noun_phrase.find_target_span`.

    Raises:
        SceneError: an image file is missing or its size differs from the referral's width/height.
    """
    by_image: dict[str, list[int]] = defaultdict(list)
    for i, referral in enumerate(referrals):
        by_image[referral.file_name].append(i)
    results: list[ImageGroundingPrediction | None] = [None] * len(referrals)
    for file_name, indices in tqdm(by_image.items(), desc="images", unit="image", disable=not progress):
        path = Path(image_root) / file_name
        if not path.is_file():
            raise SceneError(f"{path}: image not found (file_name {file_name!r} under {image_root})")
        rgb = read_color(path)
        group = [referrals[i] for i in indices]
        if rgb.shape[:2] != (group[0].height, group[0].width):
            raise SceneError(f"{path}: image is {rgb.shape[1]}x{rgb.shape[0]}, annotations say "
                             f"{group[0].width}x{group[0].height}")  # fmt: skip
        point_map = None if store is None else store.image_point_map(file_name, rgb.shape[:2])
        spans = [image_referral_spans(r) if use_gt_spans else () for r in group]
        spans = [tuple(s[0]) if s else find_target_span(r.utterance) for s, r in zip(spans, group, strict=True)]
        answers = ground_image(model, rgb, [r.utterance for r in group], spans, point_map, batch_size, upsample)
        for i, referral, (mask, score) in zip(indices, group, answers, strict=True):
            results[i] = ImageGroundingPrediction(referral, mask, score, lifted=point_map is not None)
    return results
