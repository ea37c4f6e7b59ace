"""``univlg view``: write a self-contained HTML 3D view of a scene and, optionally, grounding results."""

from __future__ import annotations

import argparse

from univlg.errors import ConfigError

HELP = "write one HTML file showing a scene in 3D (with grounded masks and boxes) that opens offline in a browser"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scene", required=True, help="scene folder (ScanNet export or generic posed RGB-D folder)")
    parser.add_argument(
        "--grounding", help="grounding result JSON (univlg-grounding/1: results with sentence, box, score, mask_file)"
    )
    parser.add_argument("--out", default="view.html", help="HTML file to write (default: view.html)")
    parser.add_argument("--title", help="page title (default: the scene id)")
    parser.add_argument(
        "--max-points", type=int, default=200_000, help="points embedded, highlighted first (default 200000)"
    )
    parser.add_argument(
        "--max-frames",
        type=int,
        default=60,
        help="frames read and lifted when the scene has no mesh or its colours are needed (default 60)",
    )


def run(args: argparse.Namespace) -> str:
    from univlg.data.scene import load_scene
    from univlg.viz import read_groundings, scene_html

    if args.max_points < 1 or args.max_frames < 1:
        raise ConfigError("--max-points and --max-frames must be at least 1")
    scene = load_scene(args.scene, max_frames=args.max_frames)
    groundings = read_groundings(args.grounding) if args.grounding else None
    page = scene_html(
        args.out, scene, groundings, title=args.title, max_points=args.max_points, max_frames=args.max_frames
    )
    entries = f", {len(groundings)} grounding(s)" if groundings else ""
    return (
        f"wrote {page.path} ({page.shown_points:,} of {page.total_points:,} points{entries}, "
        f"{page.size_bytes / 1e6:.1f} MB): open it in a web browser"
    )
