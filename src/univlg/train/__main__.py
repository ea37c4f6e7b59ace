"""``python -m univlg.train --config FILE [--set k=v] [--resume]``: the entry point for torchrun."""

from univlg.cli import main

if __name__ == "__main__":
    import sys

    raise SystemExit(main(["train", *sys.argv[1:]]))
