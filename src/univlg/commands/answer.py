"""``univlg answer``: answer questions about a scan with a model that has the answer-generation head."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from univlg.errors import ConfigError

HELP = "answer questions about a posed RGB-D scan (needs a checkpoint with the answer-generation head)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Questions, checkpoint, scene, output and decoding options."""
    parser.add_argument("questions", nargs="+", help="questions, e.g. 'what color is the sofa?'")
    parser.add_argument("--checkpoint", required=True, help="model folder (config.json + model.safetensors)")
    parser.add_argument("--scene", required=True, help="scene folder (ScanNet export or generic posed RGB-D folder)")
    parser.add_argument(
        "--situation",
        action="append",
        metavar="TEXT",
        help="SQA3D-style situation the question is asked in, e.g. 'I sit on the bed facing the desk.' (once for "
        "every question, or repeated once per question)",
    )
    parser.add_argument("--out", default=None, help="also write the answers to this JSON file")
    parser.add_argument("--max-frames", type=int, default=450, help="frames used (uniform subset; default 450)")
    parser.add_argument("--max-new-tokens", type=int, default=None, help="answer length limit (default: the model's)")
    parser.add_argument("--device", default="auto", help="auto (a GPU when available, else the CPU), cpu, cuda[:N]")


def _situations(questions: list[str], given: list[str] | None) -> list[str] | None:
    """One situation per question (the single one given repeated), or None without ``--situation``."""
    if not given:
        return None
    if len(given) == 1:
        return given * len(questions)
    if len(given) != len(questions):
        raise ConfigError(f"--situation given {len(given)} times for {len(questions)} questions (give it once or "
                          "once per question)")  # fmt: skip
    return list(given)


def run(args: argparse.Namespace) -> str:
    """Answer the questions; returns the question/answer lines to print."""
    from univlg.data.scene import load_scene
    from univlg.device import resolve_device
    from univlg.model import UniVLG

    if args.max_frames < 1 or (args.max_new_tokens is not None and args.max_new_tokens < 1):
        raise ConfigError("--max-frames and --max-new-tokens must be at least 1")
    situations = _situations(args.questions, args.situation)
    model = UniVLG.from_pretrained(args.checkpoint, map_location=resolve_device(args.device))
    scene = load_scene(args.scene, max_frames=args.max_frames)
    answers = model.answer(
        scene, args.questions, max_frames=args.max_frames, max_new_tokens=args.max_new_tokens, situations=situations
    )
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        rows = [{"question": q, "answer": a} for q, a in zip(args.questions, answers, strict=True)]
        for row, situation in zip(rows, situations or [], strict=False):
            row["situation"] = situation
        out.write_text(json.dumps({"scene_id": scene.scene_id, "results": rows}, indent=2))
    return "\n".join(f"{q!r} -> {a!r}" for q, a in zip(args.questions, answers, strict=True))
