"""2D training samples: single images, through the plain 2D path or lifted to 3D with their point map.

- :class:`ImageReferralDataset`: RefCOCO-style referrals (one target mask per sentence).
- :class:`FrameDetectionDataset`: instance segmentation as grounding on single frames of scans that ship
  ScanNet-style ``instance-filt/<frame>.png`` images (the 2D counterpart of the 3D detection samples and of the
  paper's COCO co-training): the prompt lists the class names and every instance in the frame is a target.
Masks are sampled at the patch centres of the resized, padded image (the plain-2D units and lifted patch points).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from univlg.data.batch import VisualSample, image_to_sample
from univlg.data.datasets import DETECTION_EXCLUDED, SampleOptions, TrainingSample, detection_prompt
from univlg.data.formats.coco import segmentation_mask
from univlg.data.formats.scannet import read_color, read_instance_image
from univlg.data.noun_phrase import find_target_span
from univlg.data.records import ImageReferral
from univlg.data.scene_store import SceneStore
from univlg.data.spans import image_referral_spans


def _image_sample(
    rgb: np.ndarray, point_map: tuple[np.ndarray, np.ndarray] | None, patch_size: int, options: SampleOptions
) -> VisualSample:
    return image_to_sample(
        rgb,
        patch_size,
        point_map=None if point_map is None else point_map[0],
        point_valid=None if point_map is None else point_map[1],
        max_size=options.max_size,
    )


class ImageReferralDataset(torch.utils.data.Dataset):
    """RefCOCO-style referrals; images under ``image_root``. An image stored as ``<scene>/color/<frame>.<ext>``
    of a scene in ``store`` has a point map (its depth, in the camera frame) and can be lifted; the caller
    decides per batch (a batch is all lifted or all plain 2D)."""

    def __init__(
        self,
        image_root: str | Path,
        referrals: list[ImageReferral],
        patch_size: int,
        options: SampleOptions,
        store: SceneStore | None = None,
    ):
        self.image_root = Path(image_root)
        self.referrals = referrals
        self.patch_size = patch_size
        self.options = options
        self.store = store

    def __len__(self) -> int:
        return len(self.referrals)

    def sample(self, index: int, seed: int, lift: bool = False) -> TrainingSample | None:
        """The sample of referral ``index``; with ``lift``, through the 3D path (None when it has no point map).

        A 2D sample involves no random choice: ``seed`` only keeps the ``sample(index, seed)`` signature that every
        training dataset shares (the batch stream calls them alike).
        """
        referral = self.referrals[index]
        point_map = None
        if lift:
            if self.store is not None:  # for the image's size as annotated
                size = (referral.height, referral.width)
                point_map = self.store.image_point_map(referral.file_name, size, self.options.max_depth)
            if point_map is None:
                return None
        visual = _image_sample(
            read_color(self.image_root / referral.file_name), point_map, self.patch_size, self.options
        )
        mask = segmentation_mask(referral.segmentation, referral.height, referral.width)
        spans = image_referral_spans(referral) or (find_target_span(referral.utterance),)
        return TrainingSample(
            visual=visual,
            text=referral.utterance,
            spans=[tuple(spans)],
            point_masks=patch_mask(torch.from_numpy(mask), visual.pixel_valid[0], self.patch_size)[None],
            boxes=None,
            info={"image_id": referral.image_id, "ann_id": referral.ann_id, "lifted": point_map is not None},
        )

    def __getitem__(self, index: int) -> TrainingSample | None:
        return self.sample(index, 0)


def patch_mask(mask: torch.Tensor, pixel_valid: torch.Tensor, patch: int) -> torch.Tensor:
    """A full-resolution (H0, W0) mask sampled at the patch centres of the resized, padded image.

    pixel_valid: (H, W) bool of the padded image (True on the resized image area) -> (H/p * W/p,) bool.
    """
    height, width = int(pixel_valid.any(1).sum()), int(pixel_valid.any(0).sum())
    resized = F.interpolate(mask[None, None].float(), size=(height, width), mode="nearest-exact")[0, 0]
    padded = torch.zeros(pixel_valid.shape, dtype=torch.bool)
    padded[:height, :width] = resized > 0.5
    c = patch // 2
    return padded[c::patch, c::patch].reshape(-1)


class FrameDetectionDataset(torch.utils.data.Dataset):
    """Every frame with an ``instance-filt/<frame>.png`` (value = object id + 1, 0 = none) of the listed scans.

    A sample's objects are the frame's instances of ``class_names`` (wall, floor and ceiling excluded) covering
    at least ``min_pixels`` pixels and one patch centre; None when a frame has none.
    """

    def __init__(
        self,
        store: SceneStore,
        scene_ids: list[str],
        class_names: list[str],
        patch_size: int,
        options: SampleOptions,
        min_pixels: int = 20,
    ):
        self.store = store
        self.patch_size = patch_size
        self.options = options
        self.min_pixels = min_pixels
        self.class_names = [c for c in class_names if c not in DETECTION_EXCLUDED]
        self.prompt, self.class_spans = detection_prompt(self.class_names)
        self.frames = [
            (scene_id, image.stem)
            for scene_id in scene_ids
            for image in sorted((store.root / scene_id / "instance-filt").glob("*.png"))
        ]

    def __len__(self) -> int:
        return len(self.frames)

    def sample(self, index: int, seed: int, lift: bool = False) -> TrainingSample | None:
        """The sample of frame ``index`` (``seed`` unused: no random choice), lifted with its depth when ``lift``."""
        scene_id, frame = self.frames[index]
        folder = self.store.root / scene_id
        color = next(folder.glob(f"color/{frame}.*"))
        rgb = read_color(color)
        point_map = None
        if lift:
            point_map = self.store.image_point_map(
                f"{scene_id}/color/{color.name}", rgb.shape[:2], self.options.max_depth
            )
            if point_map is None:
                return None
        visual = _image_sample(rgb, point_map, self.patch_size, self.options)
        instances = read_instance_image(folder / "instance-filt" / f"{frame}.png")
        labels = self.store.get(scene_id).objects
        objects, masks = [], []
        for object_id in np.unique(instances[instances >= 0]).tolist():
            pixels = torch.from_numpy(instances == object_id)
            if labels.get(object_id) not in self.class_spans or int(pixels.sum()) < self.min_pixels:
                continue
            mask = patch_mask(pixels, visual.pixel_valid[0], self.patch_size)
            if mask.any():
                objects.append(object_id)
                masks.append(mask)
        if not objects:
            return None
        return TrainingSample(
            visual=visual,
            text=self.prompt,
            spans=[(self.class_spans[labels[o]],) for o in objects],
            point_masks=torch.stack(masks),
            boxes=None,
            info={
                "scene_id": scene_id,
                "frame": frame,
                "task": "detection",
                "object_ids": objects,
                "lifted": point_map is not None,
            },
        )

    def __getitem__(self, index: int) -> TrainingSample | None:
        return self.sample(index, 0)
