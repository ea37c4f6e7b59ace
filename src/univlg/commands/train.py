"""``univlg train``: train a model from a YAML config (also ``torchrun --nproc_per_node N -m univlg.train``)."""

from __future__ import annotations

import argparse
import json

HELP = "train a model from a YAML config (multi-GPU: torchrun --nproc_per_node N -m univlg.train ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Config file, overrides, resume and stop step."""
    parser.add_argument("--config", required=True, help="training YAML file, e.g. configs/tiny_synth.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config values, e.g. --set steps=200 model.decoder.num_queries=50 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from <output_dir>/checkpoint.pt")
    parser.add_argument(
        "--until",
        type=int,
        default=None,
        metavar="STEP",
        help="stop after this step with a checkpoint (continue later with --resume)",
    )


def run(args: argparse.Namespace) -> str:
    from univlg.train.config import load_train_config
    from univlg.train.engine import train

    cfg = load_train_config(args.config, args.overrides)
    result = train(cfg, resume=args.resume, until=args.until)
    steps = cfg.steps if args.until is None else min(args.until, cfg.steps)
    return f"trained up to step {steps} in {cfg.output_dir}\n" + json.dumps(result.metrics, indent=2, sort_keys=True)
