"""Model size and speed: parameter counts of ``tiny`` and ``paper``, and ``tiny`` CPU latency on synthetic rooms.

    .venv/bin/python benchmarks/bench_model.py [--threads 2] [--repeats 3] [--frames 30 8] [--device cpu]

Latency is the median of ``--repeats`` runs after one warm-up, for one room (batch of 1 scene, 1 utterance):
forward under ``torch.no_grad`` and forward + backward of a loss touching every output (what a training step
costs before the optimizer). The room is generated in memory by the synthetic world (160 x 120 frames). Stage
timings split the forward. Timings on a shared machine are inflated by other processes: quote them with the load.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import time

import numpy as np
import torch

from univlg.config import paper_model_config, tiny_model_config
from univlg.data.batch import Batch, collate_visual, scene_to_sample
from univlg.data.datasets import SampleOptions, visible_subset
from univlg.data.datasets import subset_points as scene_points_subset
from univlg.data.scene import Frames, PointCloud, Scene
from univlg.data.synthetic.generate_scene import SynthSettings, generate_scene
from univlg.model import build_model
from univlg.model.lifting import build_units, make_patch_cloud, patch_point_map


def synthetic_room(frames: int, seed: int = 0) -> Scene:
    """One synthetic room (160 x 120 frames) as a Scene with its surface points and segments."""
    g = generate_scene("train", seed, 0, SynthSettings(frames=frames))
    names = tuple(str(i) for i in range(frames))
    f = Frames(
        g.rendering.rgb, g.sensor_depth, g.intrinsics.astype(np.float32), g.cam_to_room.astype(np.float32), names
    )
    s = g.surface
    return Scene(g.scene_id, f, PointCloud(s.xyz, s.colors, s.instance, s.semantic, s.segment))


def count(model) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters()) - trainable


def timed(fn, repeats: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of ``fn`` after one warm-up; CPU time counts every thread of this process and
    is what to compare on a machine shared with other jobs."""
    fn()
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def stage_times(model, batch: Batch, repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of the forward's stages (no grad)."""
    visual = batch.visual
    out = {}
    with torch.no_grad():
        images = visual.images[visual.view_valid]
        out["image encoder"] = timed(lambda: model.image_encoder(images), repeats)
        levels = model.image_encoder(images)
        out["deformable encoder"] = timed(lambda: model.pixel_decoder.encode_2d(levels[1:]), repeats)
        decoded = model.pixel_decoder.encode_2d(levels[1:])
        xyz, valid = patch_point_map(visual.point_maps[visual.view_valid], visual.point_valid[visual.view_valid], 8)
        view_batch = visual.view_valid.nonzero()[:, 0]
        segments = visual.segment_ids if model.cfg.output.use_segments else None
        voxel = model.cfg.output.voxel_size
        out["units"] = timed(lambda: build_units(visual.points, visual.points_valid, voxel, segments), repeats)
        units, grid = build_units(visual.points, visual.points_valid, voxel, segments)

        def lift():
            cloud = make_patch_cloud(xyz, valid, view_batch)
            pooled = units.unit_of_voxel if segments is not None else None
            return model.pixel_decoder.forward_3d(levels[0], decoded, cloud, grid, 1, pooled, units.num_flat)

        out["3D + lift"] = timed(lift, repeats)
        features = model.encode_visual(visual)
        out["decoder"] = timed(lambda: model.decode(features, batch.text), repeats)
    return out


def forward(model, batch: Batch) -> None:
    with torch.no_grad():
        model(batch)


def forward_backward(model, batch: Batch) -> None:
    model.zero_grad(set_to_none=True)
    p = model(batch)
    (p.mask_logits.sum() + p.span_logits.sum() + p.soft_boxes.sum()).backward()


def ms(times: tuple[float, float]) -> str:
    return f"{times[0] * 1000:.0f} / {times[1] * 1000:.0f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--frames", type=int, nargs="+", default=[30, 8])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--visible-points", type=int, help="keep at most this many room points that the frames see (as training does)"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    tiny = build_model(tiny_model_config()).to(args.device)
    paper_cfg = paper_model_config()
    paper_cfg.text_encoder = dataclasses.replace(paper_cfg.text_encoder, pretrained=False)  # MiniLM's sizes
    with torch.device("meta"):
        paper = build_model(paper_cfg)
    for name, model in (("tiny", tiny), ("paper", paper)):
        trainable, frozen = count(model)
        print(f"{name:5s}: {trainable:,} trainable, {frozen:,} frozen parameters")
    no_3d = sum(p.numel() for p in paper.backbone_3d.parameters())
    print(f"paper without the backbone 3D blocks: {count(paper)[0] - no_3d:,} trainable")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\nthreads {args.threads}, device {args.device}, load average {load:.1f}")
    for frames in args.frames:
        scene = synthetic_room(frames)
        if args.visible_points:
            keep = visible_subset(scene, SampleOptions(max_points=args.visible_points), np.random.default_rng(0))
            scene = dataclasses.replace(scene, points=scene_points_subset(scene.points, keep))
        sample = scene_to_sample(scene, tiny.patch_size)
        batch = Batch(collate_visual([sample]), tiny.tokenize(["the chair closest to the table"])).to(args.device)
        with torch.no_grad():
            preds = tiny(batch)
        units = int(preds.unit_valid.sum())

        tiny.train()
        fb = timed(lambda b=batch: forward_backward(tiny, b), args.repeats)
        tiny.eval()
        f = timed(lambda b=batch: forward(tiny, b), args.repeats)
        print(f"{frames} frames 160x120, {len(sample.points):,} points -> {units:,} units (wall / CPU): "
              f"forward {ms(f)}, forward+backward {ms(fb)}")  # fmt: skip
        stages = stage_times(tiny, batch, args.repeats)
        print("  forward stages: " + ", ".join(f"{k} {ms(v)}" for k, v in stages.items()))


if __name__ == "__main__":
    main()
