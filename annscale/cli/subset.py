"""``annscale subset IN -o OUT``: keep some cells and genes, streaming the matrix.

Cells are kept when they satisfy ``--obs EXPR`` (see :mod:`annscale.cli.obsexpr`: obs
columns compared with literal values, ``and``/``or``/``not``/``in``; never evaluated as
Python) and, with ``--obs-names FILE``, when their name is listed in FILE (one name per
line). ``--var-names FILE`` keeps the listed genes. The stored order is kept. Names in a
file that the input lacks are an error naming them. The input is opened lazily: only
``obs``/``var`` are read to select, and the selected rows of ``X`` and layers are written
chunk by chunk.
"""

from __future__ import annotations

import argparse
from typing import Any

from .arguments import add_output_options, add_storage_option, new_command
from .output import Console, UsageError
from .stores import (
    prepare_output,
    single_input,
    storage_options,
    write_output,
)

__all__ = ["add_parser", "run", "read_names", "names_mask"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "subset",
        "keep cells by an obs expression or a list of names, genes by a list",
        __doc__,
        run,
    )
    p.add_argument("input", metavar="IN", help=".h5ad file or zarr store (a glob naming one)")
    add_output_options(p)
    p.add_argument(
        "--obs",
        metavar="EXPR",
        help="keep cells where EXPR holds, e.g. 'cell_type == \"NK\" and n_counts >= 500'",
    )
    p.add_argument("--obs-names", metavar="FILE", help="keep the cells named in FILE")
    p.add_argument("--var-names", metavar="FILE", help="keep the genes named in FILE")
    add_storage_option(p)


def read_names(path: str, what: str) -> list[str]:
    """Names listed in a text file, one per line (blank lines ignored)."""
    try:
        with open(path, encoding="utf-8") as f:
            names = [line.strip() for line in f]
    except OSError as e:
        raise UsageError(f"cannot read {what} file {path!r}: {e.strerror or e}") from None
    names = [n for n in names if n]
    if not names:
        raise UsageError(f"{what} file {path!r} lists no names")
    return names


def names_mask(index: Any, names: list[str], what: str, path: str) -> Any:
    """A bool mask of ``index`` entries listed in ``names``; all names must be present."""
    import pandas as pd

    wanted = pd.Index(names).unique()
    missing = wanted[~wanted.isin(index)]
    if len(missing):
        shown = ", ".join(repr(n) for n in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise UsageError(f"{len(missing)} {what} in {path!r} are not in the input: {shown}{more}")
    return index.isin(wanted)


def run(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    import annscale

    from ..storage.location import as_location
    from .obsexpr import evaluate, parse

    if args.obs is None and args.obs_names is None and args.var_names is None:
        raise UsageError("nothing to select: give --obs, --obs-names and/or --var-names")
    expr = parse(args.obs) if args.obs is not None else None  # refuse bad syntax before I/O
    options = storage_options(args)
    url = single_input(args.input, options)
    loc, kind = prepare_output(args, options, inputs=[url])
    adata = annscale.read_lazy(as_location(url, options))
    rows = np.ones(adata.n_obs, dtype=bool)
    if expr is not None:
        rows &= evaluate(expr, adata.obs, text=args.obs)
    if args.obs_names is not None:
        names = read_names(args.obs_names, "--obs-names")
        rows &= names_mask(adata.obs_names, names, "cell names", args.obs_names)
    cols = np.ones(adata.n_vars, dtype=bool)
    if args.var_names is not None:
        names = read_names(args.var_names, "--var-names")
        cols &= names_mask(adata.var_names, names, "gene names", args.var_names)
    console.note(
        f"keeping {int(rows.sum())} of {adata.n_obs} cells and {int(cols.sum())} of "
        f"{adata.n_vars} genes"
    )
    view = adata[np.flatnonzero(rows), np.flatnonzero(cols)]
    write_output(view, loc, kind, args, console)
    console.note(f"wrote {loc.url}")
    return 0
