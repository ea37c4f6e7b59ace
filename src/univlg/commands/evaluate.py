"""``univlg eval``: score a checkpoint on a benchmark; JSON results (``--out``) and a printed table.

Single process by default; under ``torchrun --nproc_per_node N -m univlg eval ...`` each process takes every N-th
scene (or image) and the first one gathers the results and writes them. The data layout under ``--data-root`` is
described in :mod:`univlg.benchmark_data` and docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from univlg.benchmark_names import BENCHMARKS, GROUNDING_BENCHMARKS
from univlg.errors import ConfigError

HELP = "evaluate a checkpoint on a benchmark (sr3d, nr3d, scanrefer, scanqa, sqa3d, refcoco, scannet200, synthetic)"
logger = logging.getLogger(__name__)
MASK_BENCHMARKS = (*GROUNDING_BENCHMARKS, "scanqa")  # scored on 3D grounding masks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--benchmark", required=True, choices=BENCHMARKS, help="what to evaluate")
    parser.add_argument("--data-root", required=True, type=Path, help="folder in the benchmark layout (see docs)")
    parser.add_argument("--split", default="val", help="split name in the file names (default val)")
    parser.add_argument("--annotations", type=Path, help="annotation file instead of the layout's default")
    parser.add_argument("--out", type=Path, help="write the results JSON here")
    parser.add_argument("--batch-size", type=int, default=8, help="sentences decoded per scene encoding (default 8)")
    parser.add_argument("--max-frames", type=int, default=450, help="frames per scene, uniform subset (default 450)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N referrals / sentences / scenes")
    spans = parser.add_mutually_exclusive_group()
    spans.add_argument("--gt-spans", dest="gt_spans", action="store_true", default=True,
                       help="decode with the annotated target span (default)")  # fmt: skip
    spans.add_argument("--predicted-spans", dest="gt_spans", action="store_false",
                       help="decode with the head noun found by rules, as without annotations")  # fmt: skip
    parser.add_argument("--raw-masks", action="store_true",
                        help="3D grounding: score whole masks, ignoring the checkpoint's "
                        "output.grounding_component_cell (the paper's protocol)")  # fmt: skip
    parser.add_argument("--images", type=Path, help="refcoco: folder the image file names are relative to")
    parser.add_argument("--labels", type=Path, help="scannetv2-labels.combined.tsv (default: in --data-root)")
    parser.add_argument("--upsample", choices=("bilinear", "nearest"), default="bilinear",
                        help="refcoco: patch logits to pixels (default bilinear)")  # fmt: skip
    parser.add_argument("--plain-2d", action="store_true", help="refcoco: never lift images, even scan frames")
    parser.add_argument("--top-k", type=int, default=100, help="scannet200: (query, class) pairs per scene")
    parser.add_argument("--device", default="auto", help="auto (a GPU when available, else the CPU), cpu, cuda[:N]")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def options_from_args(args: argparse.Namespace):
    """The :class:`~univlg.evaluation.EvalOptions` of parsed arguments (ConfigError on impossible values)."""
    from univlg.evaluation import EvalOptions

    for name in ("batch_size", "max_frames", "top_k"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1")
    if args.limit is not None and args.limit < 0:
        raise ConfigError("--limit must not be negative")
    if not args.data_root.is_dir():
        raise ConfigError(f"{args.data_root}: --data-root folder not found")
    return EvalOptions(
        benchmark=args.benchmark,
        data_root=args.data_root,
        split=args.split,
        annotations=args.annotations,
        images=args.images,
        labels=args.labels,
        batch_size=args.batch_size,
        max_frames=args.max_frames,
        limit=args.limit,
        use_gt_spans=args.gt_spans,
        upsample=args.upsample,
        lift_images=not args.plain_2d,
        top_k=args.top_k,
        progress=not args.quiet,
    )


def mask_parts(output) -> dict | None:
    """What 3D grounding masks keep (``output.grounding_component_*`` of the model): None for whole masks."""
    if output.grounding_component_cell is None:
        return None
    return {"cell": output.grounding_component_cell, "min_fraction": output.grounding_component_fraction}


def run(args: argparse.Namespace) -> str:
    from univlg.eval.report import format_report
    from univlg.evaluation import evaluate, plan_evaluation, spans_used
    from univlg.model import UniVLG
    from univlg.train.distributed import setup, teardown

    options = options_from_args(args)
    plan = plan_evaluation(options)  # bad annotation files fail before the model loads
    info = setup(args.device)
    try:
        model = UniVLG.from_pretrained(args.checkpoint, map_location=info.device)
        if args.raw_masks:
            model.cfg.output.grounding_component_cell = None
        result = evaluate(model, options, info.rank, info.world_size, plan)
    finally:
        teardown()
    if result is None:
        return ""
    result["checkpoint"] = str(args.checkpoint)
    result["data_root"] = str(args.data_root)
    result["settings"] = {
        "batch_size": options.batch_size,
        "max_frames": options.max_frames,
        "limit": options.limit,
        "spans": spans_used(options),
        "processes": info.world_size,
        **({"upsample": options.upsample, "lift": options.lift_images} if args.benchmark == "refcoco" else {}),
        **({"top_k": options.top_k} if args.benchmark == "scannet200" else {}),
        **({"mask_parts": mask_parts(model.cfg.output)} if args.benchmark in MASK_BENCHMARKS else {}),
    }
    text = format_report(result)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        text += f"\nwrote {args.out}"
    return text
