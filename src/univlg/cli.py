"""The ``univlg`` command line: ``univlg <command> [options]``.

Subcommands live in :mod:`univlg.commands`; a command module imports its heavy dependencies (torch, the model)
inside ``run`` only, so building the parser and ``univlg --help`` stay fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from importlib import import_module

from univlg import __version__
from univlg.errors import UnivlgError

COMMANDS = {
    "synth": "univlg.commands.synth",
    "train": "univlg.commands.train",
    "eval": "univlg.commands.evaluate",
    "ground": "univlg.commands.ground",
    "answer": "univlg.commands.answer",
    "prepare": "univlg.commands.prepare",
    "view": "univlg.commands.view",
    "demo": "univlg.commands.demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="univlg", description="UniVLG: ground language in 3D scans and images.")
    parser.add_argument("--version", action="version", version=f"univlg {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, path in COMMANDS.items():
        module = import_module(path)
        sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if args.command is None:
        parser.print_help()
        return 1
    try:
        text = args.run(args)
    except (UnivlgError, FileNotFoundError) as error:
        print(f"univlg {args.command}: error: {error}", file=sys.stderr)
        return 2
    if text:
        print(text)
    return 0
