"""Model inputs: a scene or an image turned into a :class:`VisualSample`, samples collated with padding into a
:class:`VisualBatch`, utterances tokenised into a :class:`TextBatch`, both together a :class:`Batch`.

Shapes (B samples, V views, H x W pixels, P output points, T tokens):
- images (B, V, 3, H, W) float in [0, 1]; view_valid (B, V) bool (False = padding view);
- point_maps (B, V, H, W, 3) float world coordinates and point_valid (B, V, H, W) bool, or None on the plain-2D
  path (no lifting); pixel_valid (B, V, H, W) bool, False on padding pixels (None = all real);
- points (B, P, 3) float, points_valid (B, P) bool, segment_ids (B, P) long (-1 on padding) or None: the points
  on which masks are reported. None means "the valid patch-grid points" (the model builds them itself).
H and W are multiples of the model's patch size (the converters pad bottom/right).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from univlg.data.frames import uniform_frames
from univlg.data.scene import Scene
from univlg.data.spans import lower_preserving_offsets
from univlg.errors import SceneError
from univlg.geometry import resize_intrinsics, unproject_depth, voxelize


def _to(value, device):
    return value.to(device) if isinstance(value, torch.Tensor) else value


@dataclass
class VisualBatch:
    """Images and their 3D lifting for B samples; see the module docstring for shapes.

    kind: "scene" (posed RGB-D frames of a 3D scene) or "image" (2D images, lifted when point_maps is given).
    A batch is all scenes or all images.
    """

    images: torch.Tensor
    view_valid: torch.Tensor
    kind: str = "scene"
    point_maps: torch.Tensor | None = None
    point_valid: torch.Tensor | None = None
    pixel_valid: torch.Tensor | None = None
    points: torch.Tensor | None = None
    points_valid: torch.Tensor | None = None
    segment_ids: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        """B."""
        return int(self.images.shape[0])

    @property
    def lifted(self) -> bool:
        """True when the batch has point maps (3D scenes, lifted images)."""
        return self.point_maps is not None

    def to(self, device) -> VisualBatch:
        """A copy with every tensor on ``device``."""
        return replace(self, **{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


@dataclass
class TextBatch:
    """Tokenised utterances: input_ids (B, T) long; attention_mask (B, T) bool (True on real tokens);
    offsets (B, T, 2) long character range of each token in its text ((0, 0) for special/padding tokens);
    texts: the B strings as tokenised (lower-cased when the model lower-cases, same character positions)."""

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    offsets: torch.Tensor
    texts: list[str]

    def to(self, device) -> TextBatch:
        """A copy with every tensor on ``device``."""
        return replace(self, **{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


@dataclass
class Batch:
    """Model input. ``visual_index`` (B_text,) long gives the visual sample of each utterance, so one scene can
    serve several utterances without being encoded twice; None pairs utterance i with sample i.
    ``answer_labels`` (B_text, A) long: answer tokens for a generation head's teacher forcing
    (:func:`univlg.model.answer_head.AnswerHead.labels`), or None."""

    visual: VisualBatch
    text: TextBatch
    visual_index: torch.Tensor | None = None
    answer_labels: torch.Tensor | None = None

    def to(self, device) -> Batch:
        """A copy with every tensor on ``device``."""
        return Batch(
            self.visual.to(device),
            self.text.to(device),
            _to(self.visual_index, device),
            _to(self.answer_labels, device),
        )


def tokenize(tokenizer, texts: list[str], max_length: int, lowercase: bool = True) -> TextBatch:
    """Tokenise ``texts`` with a fast Hugging Face tokenizer (padding to the longest, truncation at max_length)."""
    texts = [lower_preserving_offsets(t) if lowercase else t for t in texts]
    encoded = tokenizer(
        texts,
        padding="longest",
        truncation=True,
        max_length=max_length,
        return_offsets_mapping=True,
        return_tensors="pt",
    )
    return TextBatch(
        input_ids=encoded["input_ids"],
        attention_mask=encoded["attention_mask"].bool(),
        offsets=encoded["offset_mapping"].long(),
        texts=texts,
    )


@dataclass
class VisualSample:
    """One sample before collation (torch tensors, no batch axis).

    images: (V, H, W, 3) uint8; point_maps: (V, H, W, 3) float32 or None; point_valid: (V, H, W) bool or None;
    pixel_valid: (V, H, W) bool; points: (P, 3) float32 or None; segment_ids: (P,) long or None;
    frame_indices: (V,) long, the scene frames used (in the scene's frame order), or None for images.
    """

    images: torch.Tensor
    kind: str
    point_maps: torch.Tensor | None = None
    point_valid: torch.Tensor | None = None
    pixel_valid: torch.Tensor | None = None
    points: torch.Tensor | None = None
    segment_ids: torch.Tensor | None = None
    frame_indices: torch.Tensor | None = None


def padded_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """(H, W) rounded up to multiples of ``multiple``."""
    return -(-height // multiple) * multiple, -(-width // multiple) * multiple


RESIZE_CHUNK = 32  # frames resized at a time (bounds the float copy of 450 frames)


def _resize_rgb(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(V, H, W, 3) uint8 -> (V, h, w, 3) uint8, bilinear with antialiasing, a chunk of frames at a time."""
    out = []
    for chunk in torch.split(images, RESIZE_CHUNK):
        x = F.interpolate(chunk.permute(0, 3, 1, 2).float(), size=size, mode="bilinear", antialias=True)
        out.append(x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1))
    return torch.cat(out)


def _resize_and_pad(images, depth, size, multiple):
    """images: (V, H, W, 3) uint8; depth: (V, H, W) float or None -> resized to ``size``, padded to ``multiple``."""
    v, h, w, _ = images.shape
    th, tw = size
    if (th, tw) != (h, w):
        images = _resize_rgb(images, (th, tw))
        if depth is not None:
            depth = F.interpolate(depth[:, None], size=(th, tw), mode="nearest-exact")[:, 0]
    ph, pw = padded_size(th, tw, multiple)
    images = F.pad(images, (0, 0, 0, pw - tw, 0, ph - th))
    pixel_valid = torch.zeros(v, ph, pw, dtype=torch.bool)
    pixel_valid[:, :th, :tw] = True
    if depth is not None:
        depth = F.pad(depth, (0, pw - tw, 0, ph - th))
    return images.contiguous(), depth, pixel_valid


def _target_size(height: int, width: int, image_size, max_size) -> tuple[int, int]:
    if image_size is not None:
        return int(image_size[0]), int(image_size[1])
    if max_size is not None and max(height, width) > max_size:
        scale = max_size / max(height, width)
        return max(1, round(height * scale)), max(1, round(width * scale))
    return height, width


def scene_to_sample(
    scene: Scene,
    patch_size: int,
    image_size: tuple[int, int] | None = None,
    max_size: int | None = None,
    max_frames: int | None = None,
    max_depth: float | None = 15.0,
    lifted_voxel_size: float = 0.02,
) -> VisualSample:
    """Posed RGB-D frames (and the scene's point set) as a model sample, in the scene's own coordinates.

    Frames whose pose is not finite are dropped (they cannot be lifted); with more than ``max_frames`` left, a
    uniform subset is kept. Frames are resized to ``image_size`` (H, W) or so that the longer side is at most
    ``max_size`` (RGB bilinear, depth nearest, intrinsics rescaled), then padded to multiples of ``patch_size``.
    Output points are the scene's points (with segment ids) when it has them, otherwise the lifted sensor cloud:
    every valid depth pixel (after resizing), averaged in ``lifted_voxel_size`` voxels.

    Raises:
        SceneError: no frame has a finite pose.
    """
    frames = scene.frames
    keep = np.flatnonzero(frames.valid_pose)
    if keep.size == 0:
        raise SceneError(f"scene {scene.scene_id}: no frame has a finite camera pose")
    if max_frames is not None:
        keep = keep[uniform_frames(keep.size, max_frames)]
    height, width = frames.image_size
    size = _target_size(height, width, image_size, max_size)
    images, depth, pixel_valid = _resize_and_pad(
        torch.from_numpy(frames.rgb[keep]), torch.from_numpy(frames.depth[keep].astype(np.float32)), size, patch_size
    )
    intrinsics = resize_intrinsics(torch.from_numpy(frames.intrinsics[keep].astype(np.float32)), (height, width), size)
    poses = torch.from_numpy(frames.cam_to_world[keep].astype(np.float32))
    point_maps, point_valid = unproject_depth(depth, intrinsics, poses, max_depth=max_depth)
    point_valid &= pixel_valid
    points = segments = None
    if scene.points is not None:
        points = torch.from_numpy(scene.points.xyz.astype(np.float32))
        if scene.points.segment_ids is not None:
            segments = torch.from_numpy(scene.points.segment_ids.astype(np.int64))
    else:
        points = lifted_cloud(point_maps, point_valid, lifted_voxel_size)
    return VisualSample(
        images=images,
        kind="scene",
        point_maps=point_maps,
        point_valid=point_valid,
        pixel_valid=pixel_valid,
        points=points,
        segment_ids=segments,
        frame_indices=torch.from_numpy(keep),
    )


def lifted_cloud(point_maps: torch.Tensor, point_valid: torch.Tensor, voxel_size: float) -> torch.Tensor:
    """The sensor point cloud: valid points of (V, H, W, 3) point maps averaged per voxel -> (P, 3) float32."""
    xyz = point_maps[point_valid]
    if xyz.shape[0] == 0:
        return xyz.reshape(0, 3)
    _, centres = voxelize(xyz, voxel_size)
    return centres


def image_to_sample(
    rgb: np.ndarray,
    patch_size: int,
    point_map: np.ndarray | None = None,
    point_valid: np.ndarray | None = None,
    image_size: tuple[int, int] | None = None,
    max_size: int | None = None,
) -> VisualSample:
    """A 2D image as a one-view sample; lifted when ``point_map`` ((H, W, 3) camera or world frame) is given.

    Args:
        rgb: (H, W, 3) uint8. point_valid: (H, W) bool (default: finite points). Resizing as in
        :func:`scene_to_sample` (the point map nearest), then padding to multiples of ``patch_size``.
    """
    if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
        raise SceneError(f"image: rgb must be uint8 (H,W,3), got {rgb.dtype} {rgb.shape}")
    height, width = rgb.shape[:2]
    size = _target_size(height, width, image_size, max_size)
    images, _, pixel_valid = _resize_and_pad(torch.from_numpy(rgb)[None], None, size, patch_size)
    sample = VisualSample(images=images, kind="image", pixel_valid=pixel_valid)
    if point_map is None:
        return sample
    if point_map.shape != (height, width, 3):
        raise SceneError(f"image: point map {point_map.shape} does not match rgb {rgb.shape[:2]}")
    pm = torch.from_numpy(point_map.astype(np.float32))
    ok = torch.isfinite(pm).all(-1)
    if point_valid is not None:
        ok &= torch.from_numpy(np.asarray(point_valid, dtype=bool))
    pm = torch.where(ok[..., None], pm, torch.zeros_like(pm)).permute(2, 0, 1)[None]
    channels = torch.cat([pm, ok[None, None].float()], dim=1)
    if size != (height, width):
        channels = F.interpolate(channels, size=size, mode="nearest-exact")
    ph, pw = images.shape[1:3]
    channels = F.pad(channels, (0, pw - size[1], 0, ph - size[0]))
    sample.point_maps = channels[:, :3].permute(0, 2, 3, 1).contiguous()
    sample.point_valid = channels[:, 3] > 0.5
    return sample


def _pad_stack(tensors: list[torch.Tensor], fill=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack tensors of shape (n_i, *rest_i) padding dim 0 and every other dim to the max; returns (stack, valid
    over dim 0)."""
    shape = [max(t.shape[d] for t in tensors) for d in range(tensors[0].dim())]
    out = tensors[0].new_full((len(tensors), *shape), fill)
    valid = torch.zeros(len(tensors), shape[0], dtype=torch.bool)
    for i, t in enumerate(tensors):
        out[(i, *(slice(0, s) for s in t.shape))] = t
        valid[i, : t.shape[0]] = True
    return out, valid


def collate_visual(samples: list[VisualSample]) -> VisualBatch:
    """Pad and stack samples (views, image size, points) into a :class:`VisualBatch`.

    Raises:
        ValueError: samples mix kinds, or mix lifted and non-lifted images.
    """
    kinds = {s.kind for s in samples}
    lifted = {s.point_maps is not None for s in samples}
    if len(kinds) != 1 or len(lifted) != 1:
        raise ValueError(f"a batch is all scenes or all images, all lifted or none; got kinds {kinds}")
    images, view_valid = _pad_stack([s.images for s in samples])
    pixel_valid, _ = _pad_stack([s.pixel_valid for s in samples], fill=False)
    batch = VisualBatch(
        images=images.permute(0, 1, 4, 2, 3).float() / 255.0,
        view_valid=view_valid,
        kind=kinds.pop(),
        pixel_valid=pixel_valid,
    )
    if lifted.pop():
        batch.point_maps, _ = _pad_stack([s.point_maps for s in samples])
        batch.point_valid, _ = _pad_stack([s.point_valid for s in samples], fill=False)
    if all(s.points is not None for s in samples):
        batch.points, batch.points_valid = _pad_stack([s.points for s in samples])
        if all(s.segment_ids is not None for s in samples):
            batch.segment_ids, _ = _pad_stack([s.segment_ids for s in samples], fill=-1)
    return batch
