"""``univlg prepare scannet``: export ScanNet's raw ``.sens`` streams to the frame layout ``load_scene`` reads."""

from __future__ import annotations

import argparse

from univlg.errors import ConfigError

HELP = "prepare a dataset's raw release for training/evaluation (scannet: .sens -> colour/depth/pose folders)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", choices=["scannet"], help="which raw release to prepare")
    parser.add_argument("--scans", required=True, help="ScanNet 'scans' folder: <scene>/<scene>.sens (+ scan files)")
    parser.add_argument("--out", required=True, help="output folder; one <scene>/ folder per scan")
    parser.add_argument("--frame-skip", type=int, default=20, help="keep every n-th frame (default 20, as UniVLG)")
    parser.add_argument("--scenes", nargs="+", metavar="SCENE", help="only these scenes (default: all found)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> str:
    from univlg.data.formats.scannet_export import prepare_scannet

    if args.frame_skip < 1:
        raise ConfigError("--frame-skip must be at least 1")
    summary = prepare_scannet(args.scans, args.out, args.frame_skip, args.scenes, progress=not args.quiet)
    return (
        f"exported {len(summary.prepared)} scene(s) to {args.out}; "
        f"{len(summary.skipped)} already finished and skipped (frame skip {args.frame_skip})"
    )
