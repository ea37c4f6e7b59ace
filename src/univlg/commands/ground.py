"""``univlg ground``: find the object each sentence refers to in a scan; write boxes, scores and masks."""

from __future__ import annotations

import argparse
from pathlib import Path

from univlg.errors import ConfigError

HELP = "ground sentences in a posed RGB-D scan: a JSON of box/score/span per sentence plus per-point mask .npy files"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Sentences, checkpoint, scene, output and decoding options."""
    parser.add_argument("sentences", nargs="+", help="referring expressions, e.g. 'the chair closest to the door'")
    parser.add_argument("--checkpoint", required=True, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--scene", required=True, help="scene folder (ScanNet export or generic posed RGB-D folder)")
    parser.add_argument("--out", default="grounding.json", help="result JSON; masks are written beside it")
    parser.add_argument(
        "--span",
        action="append",
        metavar="PHRASE",
        help="target phrase of the matching sentence (repeat once per sentence; default: the head noun found by rules)",
    )
    parser.add_argument("--max-frames", type=int, default=450, help="frames used (uniform subset; default 450)")
    parser.add_argument("--batch-size", type=int, default=8, help="sentences decoded together (default 8)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when available, else the CPU), cpu, cuda[:N]")


def _spans(sentences: list[str], phrases: list[str] | None) -> list[tuple[int, int] | None] | None:
    from univlg.data.spans import find_phrase

    if phrases is None:
        return None
    if len(phrases) != len(sentences):
        raise ConfigError(f"--span given {len(phrases)} times for {len(sentences)} sentences")
    spans = []
    for sentence, phrase in zip(sentences, phrases, strict=True):
        span = find_phrase(sentence, phrase)
        if span is None:
            raise ConfigError(f"--span {phrase!r} does not occur in {sentence!r}")
        spans.append(span)
    return spans


def run(args: argparse.Namespace) -> str:
    """Ground the sentences; returns the summary to print."""
    from univlg.data.scene import load_scene
    from univlg.device import resolve_device
    from univlg.model import UniVLG
    from univlg.viz.grounding_file import write_groundings

    if args.max_frames < 1 or args.batch_size < 1:
        raise ConfigError("--max-frames and --batch-size must be at least 1")
    spans = _spans(args.sentences, args.span)
    model = UniVLG.from_pretrained(args.checkpoint, map_location=resolve_device(args.device))
    scene = load_scene(args.scene, max_frames=args.max_frames)  # a uniform subset is read, not every frame
    results = model.ground(scene, args.sentences, spans, batch_size=args.batch_size, max_frames=args.max_frames)
    path = write_groundings(Path(args.out), results, scene_id=scene.scene_id)
    lines = [f"wrote {path} ({len(results)} sentence(s), masks over {len(results[0].points):,} points)"]
    for result in results:
        box = "no mask" if not result.mask.any() else "box " + " ".join(f"{v:.2f}" for v in result.box)
        lines.append(f"  {result.sentence!r} -> {result.phrase!r}: score {result.score:.3f}, {box}")
    return "\n".join(lines)
