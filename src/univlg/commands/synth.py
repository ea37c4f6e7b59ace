"""``univlg synth``: generate synthetic rooms with referring expressions, questions and 2D referrals."""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

from univlg.errors import ConfigError

HELP = "generate synthetic rooms (posed RGB-D, meshes, SR3D/ScanRefer/ScanQA/RefCOCO-style language)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``univlg synth``."""
    parser.add_argument("--out", required=True, help="output folder (created; may already hold other splits)")
    parser.add_argument("--scenes", type=int, default=10, help="scenes per split (default 10)")
    parser.add_argument("--seed", type=int, default=0, help="base seed; splits use disjoint streams of it")
    parser.add_argument(
        "--split",
        nargs="+",
        default=["train", "val", "test"],
        metavar="NAME[=N]",
        help="splits to make, each optionally with its own scene count, e.g. 'train=200 val=50' (default: "
        "train val test)",
    )
    parser.add_argument("--frames", type=int, default=30, help="RGB-D frames per scene (default 30)")
    parser.add_argument("--resolution", default="160x120", help="frame size WxH (default 160x120, up to 640x480)")
    parser.add_argument("--spacing", type=float, default=0.02, help="surface point spacing in metres (default 0.02)")
    parser.add_argument("--sensor-noise", action="store_true", help="depth noise, holes and a few invalid poses")
    parser.add_argument("--workers", type=int, default=1, help="processes generating scenes in parallel")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="re-read the written files and check every expression's uniqueness and the depth/mesh agreement",
    )


def parse_splits(items: list[str], default_count: int) -> dict[str, int]:
    """``["train=200", "val"]`` -> ``{"train": 200, "val": default_count}``."""
    splits = {}
    for item in items:
        name, sep, count = item.partition("=")
        try:
            splits[name] = int(count) if sep else default_count
        except ValueError as error:
            raise ConfigError(f"--split {item!r}: the count after '=' must be an integer") from error
    return splits


def parse_resolution(text: str) -> tuple[int, int]:
    """``"160x120"`` -> (160, 120) as (width, height), each 16..640 / 16..480."""
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError as error:
        raise ConfigError(f"--resolution {text!r}: expected WxH, e.g. 160x120") from error
    if not (16 <= width <= 640 and 16 <= height <= 480):
        raise ConfigError(f"--resolution {text!r}: width must be 16-640 and height 16-480")
    return width, height


def run(args: argparse.Namespace) -> str:
    """Generate the requested splits; return a summary (speed, counts, class-only baseline, checks)."""
    from univlg.data.synthetic.generate import generate
    from univlg.data.synthetic.generate_scene import SynthSettings

    width, height = parse_resolution(args.resolution)
    if args.frames < 1 or args.spacing <= 0 or args.workers < 1:
        raise ConfigError("--frames and --workers must be at least 1 and --spacing positive")
    settings = replace(
        SynthSettings(), frames=args.frames, width=width, height=height, spacing=args.spacing,
        sensor_noise=args.sensor_noise,
    )  # fmt: skip
    splits = parse_splits(args.split, args.scenes)
    start = time.perf_counter()
    manifest = generate(args.out, splits, args.seed, settings, progress=not args.quiet, workers=args.workers)
    seconds = time.perf_counter() - start
    total = sum(splits.values())
    lines = [f"wrote {total} scenes to {args.out} in {seconds:.1f} s ({seconds / total:.2f} s/scene)"]
    for name in splits:
        stats = manifest["splits"][name]
        lines.append(
            f"  {name}: {stats['scenes']} scenes, {stats['referrals']} SR3D-style referrals, "
            f"{stats['descriptions']} descriptions, {stats['questions']} questions, "
            f"{stats['image_referrals']} 2D referrals; class-only baseline "
            f"{stats['class_only_baseline_sr3d'].get('overall', float('nan')):.3f}"
        )
    if args.verify:
        from univlg.data.synthetic.verify import verify_split

        for name in splits:
            report = verify_split(args.out, name)
            lines.append(
                f"  {name} verified: {report['expressions'] - report['failures']}/{report['expressions']} expressions "
                f"pick out exactly their target; depth->mesh median {100 * report['median_distance_m']:.2f} cm, "
                f"instance agreement {100 * report['instance_agreement']:.2f}% ({report['geometry_scenes']} scans)"
            )
            lines.extend(f"    {failure}" for failure in report["failure_examples"])
    return "\n".join(lines)
