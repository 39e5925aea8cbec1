"""The ``annscale`` command line.

Commands (``annscale <command> --help`` for each)::

    annscale info URL...                  what a store holds (--json)
    annscale convert IN -o OUT            h5ad <-> zarr v2/v3; 10x h5/mtx, loom, mtx -> h5ad/zarr
    annscale concat IN... -o OUT          concatenate stores on disk (--dry-run: the plan)
    annscale subset IN -o OUT             keep cells by --obs EXPR, --obs-names, --var-names
    annscale validate URL...              check every element against the format (exit 1)
    annscale demo                         the main job on a built-in example

Results go to stdout; progress and errors to stderr. Exit codes: 0 success, 1 failure or
problems found, 2 usage error. Each command is one module of this package; they import
the engine only when they run, so ``annscale --help`` starts quickly.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from .. import __version__
from . import concat, convert, demo, info, subset, validate
from .output import EXIT_USAGE, Console, run_guarded, show_warnings_briefly

__all__ = ["main", "build_parser"]

_COMMANDS = (info, convert, concat, subset, validate, demo)


class _Parser(argparse.ArgumentParser):
    """argparse, but usage errors print one line and exit 2 like every other usage error."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _common(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: an option given before the command is not reset by the command's defaults
    group = parser.add_argument_group("output")
    group.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="no progress bars or notes (results and errors are still printed)",
    )  # fmt: skip
    group.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS,
        help="print the traceback of an error",
    )  # fmt: skip
    group.add_argument(
        "--progress-interval", type=float, metavar="SECONDS", default=argparse.SUPPRESS,
        help="seconds between progress log lines when stderr is not a terminal (default 10)",
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``annscale`` command."""
    parser = _Parser(
        prog="annscale",
        description="annscale: anndata's files and API as an out-of-core engine on dask.",
        epilog="Exit codes: 0 success, 1 failure or problems found, 2 usage error.",
    )
    parser.add_argument("--version", action="version", version=f"annscale {__version__}")
    _common(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in _COMMANDS:
        module.add_parser(sub)
    for p in sub.choices.values():
        _common(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``annscale`` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    console = Console(
        quiet=getattr(args, "quiet", False),
        debug=getattr(args, "debug", False),
        interval=getattr(args, "progress_interval", None),
    )
    show_warnings_briefly(console)
    return run_guarded(args.command, lambda: args.run(args, console), console)
