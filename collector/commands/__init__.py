"""The read-side subcommands of ``spanledger``, one module each.

Each module defines ``NAME``, ``add_parser(subparsers)`` and ``run(args) -> int``.
Every command works through a running collector's API, or directly on a data
dir when none runs (see ``collector.cli.run_sql`` for the pattern).
"""

COMMAND_MODULES: list[str] = ["activities", "trace", "report", "feed", "budget", "export", "config"]  # in --help order
