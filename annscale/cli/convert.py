"""``annscale convert IN -o OUT``: change a dataset's format, streaming where the input allows.

Inputs: ``.h5ad`` files and zarr stores (v2/v3, directory or zip), 10x Genomics ``.h5``
files and mtx directories, ``.loom`` files and Matrix Market ``.mtx`` files. Outputs:
``.h5ad`` or zarr (``.zarr`` / ``.zarr.zip``; ``--zarr-format 2|3``).

``.h5ad``/zarr inputs are opened with :func:`annscale.read_lazy` and 10x ``.h5`` inputs
lazily too, so ``X`` and layers are written chunk by chunk by the public writers without
loading the matrix. loom, mtx directories and ``.mtx`` files are read into memory first
(their readers have no lazy mode). The output is written beside its target and moved into
place only when complete.
"""

from __future__ import annotations

import argparse
import os
from typing import Any, Literal

from .arguments import add_output_options, add_storage_option, new_command
from .output import Console, UsageError
from .stores import (
    prepare_output,
    single_input,
    storage_options,
    write_output,
)

__all__ = ["add_parser", "run", "detect_input", "open_input"]

InputKind = Literal["anndata", "10x-h5", "10x-mtx", "loom", "mtx"]
INPUT_KINDS: tuple[str, ...] = ("anndata", "10x-h5", "10x-mtx", "loom", "mtx")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub, "convert", "h5ad <-> zarr v2/v3; 10x h5/mtx, loom, mtx -> h5ad/zarr", __doc__, run
    )
    p.add_argument("input", metavar="IN", help="input file, directory or URL (a glob naming one)")
    add_output_options(p)
    p.add_argument(
        "--from",
        dest="input_kind",
        choices=("auto", *INPUT_KINDS),
        default="auto",
        help="input format (default: detected from the name and content)",
    )
    p.add_argument("--genome", help="10x h5: the genome to read (files with several)")
    p.add_argument(
        "--all-features",
        action="store_true",
        help="10x: keep every feature type, not only 'Gene Expression'",
    )
    add_storage_option(p)


def _has_mtx(loc: Any) -> bool:
    names = (
        os.listdir(loc.path)
        if loc.is_local
        else [p.rstrip("/").rsplit("/", 1)[-1] for p in loc.filesystem().ls(loc.path, detail=False)]
    )
    return any(n.endswith(("matrix.mtx", "matrix.mtx.gz")) for n in names)


def detect_input(url: str, options: dict[str, Any] | None) -> InputKind:
    """The input's format from its name, and for HDF5 files from its top-level groups."""
    from ..storage.location import as_location
    from ..storage.open import detect_kind, open_root

    loc = as_location(url, options)
    name = loc.name.lower()
    if name.endswith(".loom"):
        return "loom"
    if name.endswith((".mtx", ".mtx.gz", ".mtx.bz2", ".mtx.xz")):
        return "mtx"
    kind = detect_kind(loc)
    if kind == "zarr":
        return "10x-mtx" if _has_mtx(loc) else "anndata"
    if kind == "zip":
        return "anndata"
    with open_root(loc, "r", kind="h5ad") as root:
        keys = set(root.keys())
        if "encoding-type" in root.attrs or {"obs", "var"} & keys:
            return "anndata"
        if {"matrix", "row_attrs", "col_attrs"} <= keys:
            return "loom"
    return "10x-h5"


def open_input(
    url: str, kind: InputKind, options: dict[str, Any] | None, args: argparse.Namespace
) -> Any:
    """An AnnData of the input; lazy for stored AnnData and 10x h5 inputs."""
    import annscale

    from ..storage.location import as_location

    loc = as_location(url, options)
    gex_only = not getattr(args, "all_features", False)
    if kind == "anndata":
        return annscale.read_lazy(loc)
    if kind == "10x-h5":
        return annscale.read_10x_h5(
            loc, genome=getattr(args, "genome", None), gex_only=gex_only, lazy=True
        )
    if getattr(args, "genome", None) is not None:
        raise UsageError("--genome applies to 10x .h5 inputs only")
    if kind == "10x-mtx":
        return annscale.read_10x_mtx(loc.url if not loc.is_local else loc.path, gex_only=gex_only)
    if kind == "loom":
        return annscale.read_loom(loc.url, storage_options=options)
    return annscale.read_mtx(loc.url if not loc.is_local else loc.path)


def run(args: argparse.Namespace, console: Console) -> int:
    options = storage_options(args)
    url = single_input(args.input, options)
    loc, out_kind = prepare_output(args, options, inputs=[url])
    kind: InputKind = detect_input(url, options) if args.input_kind == "auto" else args.input_kind
    console.note(f"reading {url} as {kind}")
    adata = open_input(url, kind, options, args)
    console.note(f"writing {adata.n_obs} x {adata.n_vars} to {loc.url} ({out_kind})")
    write_output(adata, loc, out_kind, args, console)
    console.note(f"wrote {loc.url}")
    return 0
