"""One module per ``univlg`` subcommand.

Each module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> str | None``; the text
``run`` returns is printed by :mod:`univlg.cli`, so library code never prints.
"""
