"""``python -m univlg`` runs the command-line interface."""

from univlg.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
