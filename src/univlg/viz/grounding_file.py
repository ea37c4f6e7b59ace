"""Grounding results on disk: one JSON file plus ``.npy`` masks beside it (read by ``univlg view``).

Layout (paths relative to the JSON file's folder; see docs/viewer.md)::

    {"format": "univlg-grounding/1", "scene": "scene0000_00", "sentences": ["the chair by the door", ...],
     "points_file": "result_points.npy",        # optional: (P, 3) float32 axis-aligned points the masks index
     "results": [{"sentence": "the chair by the door", "phrase": "chair", "score": 0.91,
                  "span": [4, 9],                                 # optional: the phrase's characters
                  "box": [xmin, ymin, zmin, xmax, ymax, zmax],   # or null
                  "mask_file": "result_mask_000.npy"}, ...]}      # optional: (P,) bool

Only ``results`` is required; a result needs a ``sentence`` (or the same entry of ``sentences``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from univlg.data.formats.fields import read_json
from univlg.errors import FormatError

GROUNDING_FORMAT = "univlg-grounding/1"


def grounding_field(grounding, name: str):
    """Field ``name`` of a grounding given as an object (``UniVLG.ground``'s
    :class:`~univlg.model.grounding.Grounding`) or as a dict (:func:`read_groundings`); None when absent."""
    return grounding.get(name) if isinstance(grounding, dict) else getattr(grounding, name, None)


def write_groundings(path: str | Path, groundings: Sequence, scene_id: str | None = None) -> Path:
    """Write groundings as the JSON file ``path`` and ``<stem>_mask_<i>.npy`` / ``<stem>_points.npy`` beside it.

    Args:
        groundings: objects or dicts with ``sentence``, ``box`` (6,), ``score``, ``mask`` (P,) bool and optionally
            ``phrase``, ``span`` (start, end) and ``points`` (P, 3), the points the masks index (written once, from
            the first grounding that has them; every grounding of one ``UniVLG.ground`` call shares them).
        scene_id: recorded as ``scene``.

    Returns:
        the JSON path.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    document: dict = {"format": GROUNDING_FORMAT, "scene": scene_id, "sentences": [], "results": []}
    points = next((grounding_field(g, "points") for g in groundings if grounding_field(g, "points") is not None), None)
    if points is not None:
        document["points_file"] = f"{out.stem}_points.npy"
        np.save(out.parent / document["points_file"], np.asarray(points, dtype=np.float32))
    for i, grounding in enumerate(groundings):
        sentence = str(grounding_field(grounding, "sentence"))
        box, score, mask = (
            grounding_field(grounding, "box"),
            grounding_field(grounding, "score"),
            grounding_field(grounding, "mask"),
        )
        result = {
            "sentence": sentence,
            "phrase": grounding_field(grounding, "phrase"),
            "score": float(score) if score is not None and math.isfinite(float(score)) else None,
            "box": None if box is None or not np.isfinite(box).all() else [float(v) for v in box],
        }
        span = grounding_field(grounding, "span")
        if span is not None:
            result["span"] = [int(v) for v in span]
        if mask is not None:
            result["mask_file"] = f"{out.stem}_mask_{i:03d}.npy"
            np.save(out.parent / result["mask_file"], np.asarray(mask, dtype=bool))
        document["sentences"].append(sentence)
        document["results"].append(result)
    out.write_text(json.dumps(document, indent=2, allow_nan=False))
    return out


def _load_npy(folder: Path, name, where: str) -> np.ndarray:
    if not isinstance(name, str):
        raise FormatError(f"{where}: expected a file name, got {name!r}")
    file = folder / name
    try:
        return np.load(file, allow_pickle=False)
    except FileNotFoundError as error:
        raise FormatError(f"{where}: {file} not found") from error
    except (OSError, ValueError) as error:
        raise FormatError(f"{where}: {file} is not a readable .npy array ({error})") from error


def _read_result(entry, index: int, sentences: list, folder: Path, where: str) -> dict:
    at = f"{where}: results[{index}]"
    if not isinstance(entry, dict):
        raise FormatError(f"{at}: expected an object, got {type(entry).__name__}")
    sentence = entry.get("sentence", sentences[index] if index < len(sentences) else None)
    if not isinstance(sentence, str):
        raise FormatError(f"{at}.sentence: expected a string (or an entry in 'sentences'), got {sentence!r}")
    box = entry.get("box")
    if box is not None:
        try:
            box = np.asarray(box, dtype=np.float64)
        except (TypeError, ValueError) as error:
            raise FormatError(f"{at}.box: expected 6 numbers or null, got {entry['box']!r}") from error
        if box.shape != (6,):
            raise FormatError(f"{at}.box: expected 6 numbers (xmin, ymin, zmin, xmax, ymax, zmax), got {box.shape}")
    score = entry.get("score")
    if score is not None and (isinstance(score, bool) or not isinstance(score, int | float)):
        raise FormatError(f"{at}.score: expected a number or null, got {score!r}")
    mask = None
    if entry.get("mask_file") is not None:
        mask = _load_npy(folder, entry["mask_file"], f"{at}.mask_file")
        if mask.ndim != 1 or (mask.dtype != bool and not np.isin(mask, (0, 1)).all()):
            raise FormatError(f"{at}.mask_file: expected a (P,) bool array, got {mask.dtype} {mask.shape}")
        mask = mask.astype(bool)
    span = entry.get("span")
    if span is not None and not (
        isinstance(span, list) and len(span) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in span)
    ):
        raise FormatError(f"{at}.span: expected [start, end] character offsets or null, got {span!r}")
    span = None if span is None else tuple(span)
    return {"sentence": sentence, "phrase": entry.get("phrase"), "span": span, "box": box, "score": score, "mask": mask}


def read_groundings(path: str | Path) -> list[dict]:
    """Read a grounding JSON (see the module docstring).

    Returns:
        one dict per result: ``sentence`` str, ``phrase`` str or None, ``span`` (start, end) or None, ``box`` (6,)
        float64 or None, ``score``
        float or None, ``mask`` (P,) bool or None, ``points`` (P, 3) float32 or None (shared by all results).

    Raises:
        FormatError: naming the file, the result index and the field.
    """
    file = Path(path)
    try:
        document = read_json(file)
    except FileNotFoundError as error:
        raise FormatError(f"{file}: grounding file not found") from error
    except OSError as error:
        raise FormatError(f"{file}: not a readable JSON file ({error})") from error
    if not isinstance(document, dict) or not isinstance(document.get("results"), list):
        raise FormatError(f"{file}: expected an object with a 'results' list")
    sentences = document.get("sentences") or []
    if not isinstance(sentences, list):
        raise FormatError(f"{file}: 'sentences' must be a list")
    points = None
    if document.get("points_file") is not None:
        points = _load_npy(file.parent, document["points_file"], f"{file}: points_file")
        if points.ndim != 2 or points.shape[1] != 3 or points.dtype.kind != "f":
            raise FormatError(f"{file}: points_file must hold a (P, 3) float array, got {points.dtype} {points.shape}")
        points = points.astype(np.float32)
    results = [_read_result(entry, i, sentences, file.parent, str(file)) for i, entry in enumerate(document["results"])]
    for i, result in enumerate(results):
        if points is not None and result["mask"] is not None and len(result["mask"]) != len(points):
            raise FormatError(
                f"{file}: results[{i}].mask_file: {len(result['mask'])} entries for the {len(points)} points of "
                f"points_file"
            )
        result["points"] = points
    return results
