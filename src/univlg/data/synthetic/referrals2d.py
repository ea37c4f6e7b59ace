"""RefCOCO-style referrals on rendered frames: "the red chair", "the cup on the left", with the 2D mask and box.

As in RefCOCO, a frame's target always has another visible object of its class in the same image, and the
expression resolves in the image alone: by colour, by horizontal position (left / right, with a clear gap
between box centres) or by apparent size (much bigger / smaller than the others), or colour plus position.
"""

from __future__ import annotations

import warnings

import numpy as np
from pycocotools import mask as mask_utils

from univlg.data.records import ImageReferral
from univlg.data.synthetic.world import World

TEMPLATES_2D = {
    "color": ("the {C} {T}", "{C} {T}"),
    "left": ("the {T} on the left", "left {T}", "the leftmost {T}"),
    "right": ("the {T} on the right", "right {T}", "the rightmost {T}"),
    "bigger": ("the big {T}", "the bigger {T}", "the largest {T} in the picture"),
    "smaller": ("the small {T}", "the smaller {T}", "the smallest {T} in the picture"),
    "color_left": ("the {C} {T} on the left",),
    "color_right": ("the {C} {T} on the right",),
}


def encode_mask(mask: np.ndarray) -> dict:
    """COCO compressed RLE of a (H, W) bool mask, with ``counts`` as text (JSON-ready)."""
    with warnings.catch_warnings():  # pycocotools' numpy-2 copy-keyword deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def _visible(world: World, instance: np.ndarray, min_pixels: int) -> dict[int, np.ndarray]:
    """Object id -> (H, W) mask for objects (structure excluded) covering at least ``min_pixels`` pixels."""
    counts = np.bincount(instance.reshape(-1), minlength=world.num_objects + 6)[: world.num_objects]
    return {int(i): instance == i for i in np.flatnonzero(counts >= min_pixels)}


def _choices(world: World, masks: dict[int, np.ndarray], width: int) -> list[tuple[int, str]]:
    """(target, form) pairs that single out a target among the visible objects of its class."""
    by_label: dict[str, list[int]] = {}
    for i in masks:
        by_label.setdefault(world.objects[i].label, []).append(i)
    found = []
    for ids in by_label.values():
        if len(ids) < 2:
            continue
        colours = {i: world.objects[i].colour for i in ids}
        centre = {i: float(np.flatnonzero(masks[i].any(axis=0)).mean()) for i in ids}
        area = {i: int(masks[i].sum()) for i in ids}
        for i in ids:
            if sum(c == colours[i] for c in colours.values()) == 1:
                found.append((i, "color"))
        by_x = sorted(ids, key=lambda i: centre[i])
        if centre[by_x[1]] - centre[by_x[0]] >= 0.12 * width:
            found.append((by_x[0], "left"))
        if centre[by_x[-1]] - centre[by_x[-2]] >= 0.12 * width:
            found.append((by_x[-1], "right"))
        by_area = sorted(ids, key=lambda i: area[i])
        if area[by_area[-1]] >= 2.5 * area[by_area[-2]]:
            found.append((by_area[-1], "bigger"))
        if area[by_area[1]] >= 2.5 * area[by_area[0]]:
            found.append((by_area[0], "smaller"))
        for colour in set(colours.values()):
            same = sorted((i for i in ids if colours[i] == colour), key=lambda i: centre[i])
            if len(same) == 2 and centre[same[1]] - centre[same[0]] >= 0.12 * width:
                found.extend([(same[0], "color_left"), (same[1], "color_right")])
    return found


def frame_referrals(
    world: World,
    instance: np.ndarray,
    image_id: int,
    file_name: str,
    split: str,
    rng: np.random.Generator,
    count: int,
    min_pixels: int,
) -> list[ImageReferral]:
    """Up to ``count`` referrals (distinct targets) in one frame; ``instance``: (H, W) object id per pixel."""
    height, width = instance.shape
    masks = _visible(world, instance, min_pixels)
    choices = _choices(world, masks, width)
    order = rng.permutation(len(choices))
    used: set[int] = set()
    referrals = []
    for k in order:
        target, form = choices[k]
        if target in used or len(referrals) >= count:
            continue
        used.add(target)
        obj = world.objects[target]
        options = TEMPLATES_2D[form]
        template = options[int(rng.integers(len(options)))]
        text = template.replace("{C}", obj.colour)
        start = text.index("{T}")
        text = text.replace("{T}", obj.label)
        rows, cols = np.flatnonzero(masks[target].any(axis=1)), np.flatnonzero(masks[target].any(axis=0))
        ann_id = image_id * 100 + target
        referrals.append(
            ImageReferral(
                image_id=image_id,
                file_name=file_name,
                width=width,
                height=height,
                utterance=text,
                box_xyxy=(float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)),
                segmentation=encode_mask(masks[target]),
                category=obj.label,
                ann_id=ann_id,
                ref_id=ann_id,
                split=split,
                spans=((start, start + len(obj.label)),),
                dataset="synthetic",
                meta={"form": form},
            )
        )
    return referrals
