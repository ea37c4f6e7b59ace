"""Benchmark results as JSON-friendly dicts and as printed tables (pure: per-item numbers in, text out).

The metric definitions are those of :mod:`univlg.eval.grounding`, :mod:`univlg.eval.breakdowns`,
:mod:`univlg.eval.refcoco` and :mod:`univlg.eval.instance_ap`; this module only assembles their outputs from
per-item values (which is what the processes of a sharded evaluation send to the main one) and formats them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from univlg.data.records import Referral
from univlg.eval.breakdowns import grounding_breakdowns
from univlg.eval.grounding import THRESHOLDS, accuracy_at
from univlg.eval.instance_ap import InstanceAPResult, split_averages
from univlg.eval.refcoco import mask_metrics_from_counts


def grounding_metrics(ious, mask_ious, referrals: Sequence[Referral], benchmark: str) -> dict:
    """Acc@k overall and per breakdown (:func:`~univlg.eval.breakdowns.grounding_breakdowns`) plus the mask-IoU
    variant: ``{"overall": {acc@k..., count}, "mask_iou": {acc@k..., count}, "<breakdown>": {group: {...}}}``.

    ious / mask_ious: (N,) float per referral, in the order of ``referrals`` (NaN = miss).
    """
    out = grounding_breakdowns(ious, referrals, benchmark)
    out["mask_iou"] = {**accuracy_at(mask_ious), "count": len(referrals)}
    return {"overall": out.pop("overall"), "mask_iou": out.pop("mask_iou"), **out}


def refcoco_metrics(box_ious, intersections, unions) -> dict:
    """RefCOCO box accuracy and mask metrics from per-sentence values (N,): the IoU of the predicted mask's box
    with the GT box, and the pixel counts |P & G| and |P | G| of the masks (NaN where the GT has no mask).

    Returns ``{"count", "box": {acc@k...}, "mask": {"count", "mIoU", "cIoU", "precision@k"...}}``, the definitions of
    :func:`~univlg.eval.refcoco.refcoco_box_accuracy` and :func:`~univlg.eval.refcoco.refcoco_mask_metrics`.
    """
    inter, union = np.asarray(intersections, dtype=np.float64), np.asarray(unions, dtype=np.float64)
    known = np.isfinite(union)
    mask = {"count": int(known.sum()), **mask_metrics_from_counts(inter[known], union[known])}
    return {"count": int(np.asarray(box_ious).size), "box": accuracy_at(box_ious), "mask": mask}


def instance_metrics(result: InstanceAPResult, splits: dict[str, str]) -> dict:
    """``{"AP", "AP50", "AP25", "<split>": {...} (when ``splits`` is given), "per_class": {...}}``."""
    out: dict = dict(result.overall)
    if splits:
        out.update(split_averages(result, splits))
    out["per_class"] = result.per_class
    return out


def json_safe(value):
    """A copy of nested dicts/lists/tuples/numpy values with NaN/inf as None and numpy scalars as Python ones."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# -------------------------------------------------------------------------------------------------------- text


def _pct(value) -> str:
    return "   -  " if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:6.2f}"


def _accuracy_row(name: str, row: dict, keys: Sequence[str]) -> str:
    return f"{name:<36} {row.get('count', ''):>7} " + " ".join(f"{_pct(row.get(k)):>9}" for k in keys)


def _header(result: dict) -> list[str]:
    counts = ", ".join(f"{k} {v}" for k, v in result.get("counts", {}).items())
    return [f"{result['benchmark']} {result['split']} ({result['task']}): {counts}"]


def _grounding_lines(metrics: dict) -> list[str]:
    keys = [f"acc@{t:g}" for t in THRESHOLDS]
    lines = [f"{'subset':<36} {'count':>7} " + " ".join(f"{k.replace('acc', 'Acc'):>9}" for k in keys)]
    lines.append(_accuracy_row("overall (box IoU)", metrics["overall"], keys))
    lines.append(_accuracy_row("overall (mask IoU)", metrics["mask_iou"], keys))
    for name, groups in metrics.items():
        if name in ("overall", "mask_iou"):
            continue
        for group, row in groups.items():
            lines.append(_accuracy_row(f"{name}: {group}", row, keys))
    return lines


def _instance_lines(metrics: dict) -> list[str]:
    lines = [f"{'classes':<12} {'AP':>7} {'AP50':>7} {'AP25':>7}"]
    rows = [("all", metrics)] + [(s, metrics[s]) for s in ("head", "common", "tail") if s in metrics]
    for name, row in rows:
        lines.append(f"{name:<12} " + " ".join(f"{_pct(row.get(k)):>7}" for k in ("AP", "AP50", "AP25")))
    return lines


def _refcoco_lines(metrics: dict) -> list[str]:
    box, mask = metrics["box"], metrics["mask"]
    keys = [f"acc@{t:g}" for t in THRESHOLDS]
    lines = [f"{'':<12} " + " ".join(f"{k.replace('acc', 'Acc'):>9}" for k in keys)]
    lines.append(f"{'box':<12} " + " ".join(f"{_pct(box.get(k)):>9}" for k in keys))
    lines.append(f"mask ({mask['count']}): mIoU {_pct(mask['mIoU']).strip()}  cIoU {_pct(mask['cIoU']).strip()}")
    return lines


def format_report(result: dict) -> str:
    """The printed table of an ``univlg eval`` result dict (percentages; "-" where a value is undefined)."""
    lines = _header(result)
    metrics = result.get("metrics") or {}
    if "grounding" in metrics:
        lines += ["grounding:"] + _grounding_lines(metrics["grounding"])
    if "instances" in metrics:
        lines += _instance_lines(metrics["instances"])
    if "refcoco" in metrics:
        lines += _refcoco_lines(metrics["refcoco"])
    if metrics.get("answers"):
        answers = metrics["answers"]
        rows = [(f"answers ({answers['count']})", answers)]
        rows += [(f"  {kind} ({row['count']})", row) for kind, row in answers.get("EM_by_type", {}).items()]
        lines += [f"{name}: EM {_pct(row['EM']).strip()}  EM-R {_pct(row['EM-R']).strip()}" for name, row in rows]
    lines += [f"note: {note}" for note in result.get("notes", [])]
    return "\n".join(lines)
