"""Synthetic data generation speed: seconds per scene by stage, and end to end for N scenes.

    .venv/bin/python benchmarks/bench_synth.py                  # stages on 5 scenes, then 100 scenes end to end
    .venv/bin/python benchmarks/bench_synth.py --scenes 20 --workers 2

Prints the 1-minute load average before and after, since other processes on the machine inflate timings.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from univlg.data.synthetic.cameras import walk
from univlg.data.synthetic.furnish import furnish
from univlg.data.synthetic.generate import generate
from univlg.data.synthetic.generate_scene import SynthSettings, generate_scene
from univlg.data.synthetic.render import Lighting, render
from univlg.data.synthetic.surface import sample_surface
from univlg.data.synthetic.world import World, build_primitives
from univlg.data.synthetic.writer import write_scene


def stages(count: int, settings: SynthSettings) -> dict[str, float]:
    """Mean seconds per scene of layout, rendering, surface sampling, language, and writing."""
    totals = dict.fromkeys(["layout", "render", "surface", "full scene (all of generate_scene)", "write"], 0.0)
    with tempfile.TemporaryDirectory() as folder:
        for index in range(count):
            rng = np.random.default_rng(index)
            start = time.perf_counter()
            room, objects = furnish(rng)
            world = World(room, objects, build_primitives(objects))
            totals["layout"] += time.perf_counter() - start
            light = Lighting.random(rng)
            intrinsics, poses = walk(world, rng, settings.frames, settings.height, settings.width)
            start = time.perf_counter()
            render(world, intrinsics, poses, settings.height, settings.width, light)
            totals["render"] += time.perf_counter() - start
            start = time.perf_counter()
            sample_surface(world, light, spacing=settings.spacing)
            totals["surface"] += time.perf_counter() - start
            start = time.perf_counter()
            scene = generate_scene("train", index, 0, settings)
            totals["full scene (all of generate_scene)"] += time.perf_counter() - start
            start = time.perf_counter()
            write_scene(scene, Path(folder))
            totals["write"] += time.perf_counter() - start
    return {k: v / count for k, v in totals.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=100, help="scenes for the end-to-end run")
    parser.add_argument("--stage-scenes", type=int, default=5, help="scenes for the per-stage timing")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    settings = SynthSettings()
    print(f"settings: {settings.frames} frames {settings.width}x{settings.height}, spacing {settings.spacing} m")
    print(f"load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    for name, seconds in stages(args.stage_scenes, settings).items():
        print(f"  {name:<36s} {seconds:6.3f} s/scene")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            generate(folder, {"train": args.scenes}, seed=0, settings=settings, progress=False, workers=workers)
            seconds = time.perf_counter() - start
        print(f"{args.scenes} scenes, {workers} worker(s): {seconds:.1f} s ({seconds / args.scenes:.2f} s/scene)")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
