"""COCO instances JSON (``instances_train2014.json`` ...): images, annotations and categories, validated.

Only the fields the project uses are kept: images ``{id, file_name, width, height}``, annotations ``{id,
image_id, category_id, bbox [x, y, w, h], segmentation (polygons or RLE), area, iscrowd}`` and categories
``{id, name}``. Boxes are pixels with (x, y) the top-left corner, as COCO stores them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from univlg.data.formats.fields import Where, as_float, as_int, as_str, json_list, read_json, require, write_json
from univlg.errors import FormatError


@dataclass(frozen=True)
class CocoImage:
    """One image entry: its id, file name (relative to the image folder) and size in pixels."""

    id: int
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class CocoAnnotation:
    """One object instance: box ``bbox_xywh`` in pixels, polygon list / RLE dict ``segmentation`` (or None)."""

    id: int
    image_id: int
    category_id: int
    bbox_xywh: tuple[float, float, float, float]
    segmentation: list | dict | None = None
    area: float = 0.0
    iscrowd: int = 0

    @property
    def bbox_xyxy(self) -> tuple[float, float, float, float]:
        """The box as (x0, y0, x1, y1) = (x, y, x + w, y + h)."""
        x, y, w, h = self.bbox_xywh
        return (x, y, x + w, y + h)


@dataclass
class CocoInstances:
    """A COCO instances file: images, annotations and category names, each by id."""

    images: dict[int, CocoImage]
    annotations: dict[int, CocoAnnotation]
    categories: dict[int, str]


def _segmentation(value: Any, where: Where) -> list | dict | None:
    if value is None or value == []:
        return None
    if isinstance(value, dict):
        if "counts" not in value or "size" not in value:
            raise where.error("segmentation", "an RLE needs 'counts' and 'size'")
        return value
    if isinstance(value, list) and all(isinstance(p, list) and len(p) >= 6 and len(p) % 2 == 0 for p in value):
        return value
    raise where.error("segmentation", "expected polygons [[x, y, x, y, ...] (>= 3 points)] or an RLE dict")


def _bbox(value: Any, where: Where) -> tuple[float, float, float, float]:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise where.error("bbox", f"expected [x, y, w, h], got {value!r:.80}")
    x, y, w, h = (as_float(v, where, f"bbox[{k}]") for k, v in enumerate(value))
    if w < 0 or h < 0:
        raise where.error("bbox", f"negative width or height in {value!r}")
    return (x, y, w, h)


def parse_coco_instances(data: Any, path: str | Path) -> CocoInstances:
    """Validate an already-parsed instances document (see :func:`read_coco_instances`)."""
    images, categories, annotations = {}, {}, {}
    for i, entry in enumerate(json_list(data, path, key="images")):
        where = Where(path, "image", i)
        image = CocoImage(
            id=as_int(require(entry, "id", where), where, "id"),
            file_name=as_str(require(entry, "file_name", where), where, "file_name"),
            width=as_int(require(entry, "width", where), where, "width", minimum=1),
            height=as_int(require(entry, "height", where), where, "height", minimum=1),
        )
        if image.id in images:
            raise where.error("id", f"duplicate image id {image.id}")
        images[image.id] = image
    for i, entry in enumerate(json_list(data, path, key="categories")):
        where = Where(path, "category", i)
        categories[as_int(require(entry, "id", where), where, "id")] = as_str(
            require(entry, "name", where), where, "name"
        )
    for i, entry in enumerate(json_list(data, path, key="annotations")):
        where = Where(path, "annotation", i)
        annotation = CocoAnnotation(
            id=as_int(require(entry, "id", where), where, "id"),
            image_id=as_int(require(entry, "image_id", where), where, "image_id"),
            category_id=as_int(require(entry, "category_id", where), where, "category_id"),
            bbox_xywh=_bbox(require(entry, "bbox", where), where),
            segmentation=_segmentation(entry.get("segmentation"), where),
            area=as_float(entry.get("area", 0.0), where, "area"),
            iscrowd=as_int(entry.get("iscrowd", 0), where, "iscrowd", minimum=0),
        )
        if annotation.id in annotations:
            raise where.error("id", f"duplicate annotation id {annotation.id}")
        if annotation.image_id not in images:
            raise where.error("image_id", f"{annotation.image_id} is not an image of this file")
        if annotation.category_id not in categories:
            raise where.error("category_id", f"{annotation.category_id} is not a category of this file")
        annotations[annotation.id] = annotation
    return CocoInstances(images=images, annotations=annotations, categories=categories)


def read_coco_instances(path: str | Path) -> CocoInstances:
    """Read and validate a COCO instances JSON; FormatError names the file, the entry index and the field."""
    return parse_coco_instances(read_json(path), path)


def write_coco_instances(
    path: str | Path,
    images: list[CocoImage],
    annotations: list[CocoAnnotation],
    categories: dict[int, str],
) -> None:
    """Write a COCO instances JSON (``images``, ``annotations``, ``categories`` with supercategory "object")."""
    data = {
        "info": {"description": "COCO-format instances written by univlg"},
        "images": [{"id": i.id, "file_name": i.file_name, "width": i.width, "height": i.height} for i in images],
        "annotations": [
            {
                "id": a.id,
                "image_id": a.image_id,
                "category_id": a.category_id,
                "bbox": list(a.bbox_xywh),
                "segmentation": a.segmentation if a.segmentation is not None else [],
                "area": a.area,
                "iscrowd": a.iscrowd,
            }
            for a in annotations
        ],
        "categories": [{"id": k, "name": v, "supercategory": "object"} for k, v in sorted(categories.items())],
    }
    write_json(path, data)


def segmentation_mask(segmentation: list | dict, height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons or an RLE (compressed or not) to a mask: (height, width) bool."""
    if isinstance(segmentation, list):
        rle = mask_utils.merge(mask_utils.frPyObjects(segmentation, height, width))
    elif isinstance(segmentation.get("counts"), list):
        rle = mask_utils.frPyObjects(segmentation, height, width)
    else:
        rle = segmentation
    with warnings.catch_warnings():  # pycocotools' numpy-2 "copy keyword" deprecation, harmless here
        warnings.simplefilter("ignore", DeprecationWarning)
        mask = mask_utils.decode(rle)
    if mask.shape[:2] != (height, width):
        raise FormatError(f"segmentation is {mask.shape[:2]}, expected ({height}, {width})")
    return mask.astype(bool)
