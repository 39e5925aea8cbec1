"""The command line's shared arguments and how a command's parser is made."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from .._settings import settings

__all__ = [
    "new_command",
    "add_storage_option",
    "add_output_options",
    "add_store_arguments",
]


def new_command(
    sub: argparse._SubParsersAction, name: str, summary: str, doc: str, run: Callable
) -> argparse.ArgumentParser:
    """A command's parser: ``summary`` in ``annscale --help``, ``doc`` (its module's
    docstring) as the description of ``annscale <name> --help``; ``run(args, console)``."""
    text = re.sub(r":\w+:`~?([^`]*)`", r"\1", doc).replace("``", "")  # reST to plain text
    parser = sub.add_parser(
        name, help=summary, description=text, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.set_defaults(run=run)
    return parser


def add_store_arguments(parser: argparse.ArgumentParser) -> None:
    """``URL...`` (globs allowed), ``--json`` and ``--storage-option``: info and validate."""
    parser.add_argument("url", nargs="+", metavar="URL", help=".h5ad file or zarr store (globs ok)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    add_storage_option(parser)


def add_storage_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--storage-option",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        help="fsspec option for cloud URLs, repeatable (e.g. anon=true, "
        "endpoint_url=http://host:9000, client_kwargs.region_name=eu-west-1)",
    )


def add_output_options(parser: argparse.ArgumentParser, *, compression: bool = True) -> None:
    """``-o OUT``, ``--overwrite``, ``--zarr-format`` and (h5ad) ``--compression``."""
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="output store")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace OUT if it exists (atomically)"
    )
    parser.add_argument(
        "--zarr-format",
        type=int,
        choices=(2, 3),
        default=None,
        help=f"zarr format of a zarr output (default {settings.zarr_write_format})",
    )
    if not compression:
        return
    parser.add_argument(
        "--compression",
        choices=("gzip", "lzf"),
        default=None,
        help="HDF5 compression of an .h5ad output (default: none, as anndata)",
    )
