"""``univlg train``: train a model from a YAML config (also ``torchrun --nproc_per_node N -m univlg.train``)."""

from __future__ import annotations

import argparse
import json

HELP = "train a model from a YAML config (multi-GPU: torchrun --nproc_per_node N -m univlg.train ...)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="training YAML file, e.g. configs/tiny_synth.yaml")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set steps=200 --set model.decoder.num_queries=50 (repeatable)",
    )
    parser.add_argument("--resume", action="store_true", help="continue from <output_dir>/checkpoint.pt")


def run(args: argparse.Namespace) -> str:
    from univlg.train.config import load_train_config
    from univlg.train.engine import train

    cfg = load_train_config(args.config, args.overrides)
    metrics = train(cfg, resume=args.resume)
    return f"trained {cfg.steps} steps into {cfg.output_dir}\n" + json.dumps(metrics, indent=2, sort_keys=True)
