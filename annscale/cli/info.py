"""``annscale info URL...``: what a store holds, from its metadata (no data is read).

For each store: its format (h5ad, zarr v2/v3, zip) and anndata encoding version, the
shape (obs x vars), the size on disk, and every element with its encoding, dtype, shape,
storage chunks (and shards), nonzeros of sparse matrices, compression and stored bytes.
``--json`` prints one JSON object per store (a list when several are given).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .arguments import add_store_arguments, new_command
from .output import Console
from .stores import expand_paths, storage_options

__all__ = ["add_parser", "run", "store_info"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = new_command(
        sub,
        "info",
        "shape, elements, encodings, dtypes, chunks, nnz and size of a store",
        __doc__,
        run,
    )
    add_store_arguments(p)


def store_info(url: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Everything ``info`` reports about one store, as a JSON-able dict."""
    from ..storage.location import as_location
    from ..storage.open import detect_kind, open_root
    from .tree import axis_length, describe, size_on_disk, walk

    loc = as_location(url, options)
    kind = detect_kind(loc)
    with open_root(loc, "r", kind=kind) as root:
        attrs = root.attrs
        out: dict[str, Any] = {
            "url": loc.url,
            "format": root.store_format,
            "container": {"h5ad": "hdf5", "zarr": "directory", "zip": "zip"}[kind],
            "encoding": (
                f"{attrs['encoding-type']} {attrs.get('encoding-version', '')}".strip()
                if "encoding-type" in attrs
                else "legacy (no encoding attributes)"
            ),
            "n_obs": axis_length(root, "obs"),
            "n_vars": axis_length(root, "var"),
            "size_bytes": size_on_disk(loc),
            "elements": [describe(e).as_dict() for e in walk(root)],
        }
    x = next((e for e in out["elements"] if e["path"] == "X"), None)
    if out["n_obs"] is None and x and x.get("shape"):
        out["n_obs"], out["n_vars"] = x["shape"][:2]
    return out


def _fmt_shape(shape: list[int] | None) -> str:
    return " x ".join(str(s) for s in shape) if shape else ""


def _summary(info: dict[str, Any]) -> list[str]:
    from .tree import format_bytes

    lines = [
        info["url"],
        f"  format: {info['format']} ({info['container']}), {info['encoding']}",
        f"  shape: {info['n_obs']} obs x {info['n_vars']} vars",
        f"  size on disk: {format_bytes(info['size_bytes'])}",
    ]
    x = next((e for e in info["elements"] if e["path"] == "X"), None)
    if x is not None and x.get("nnz") is not None and x.get("shape"):
        cells = max(x["shape"][0] * x["shape"][1], 1)
        lines.append(f"  X: {x['encoding']} {x['dtype']}, nnz {x['nnz']} ({x['nnz'] / cells:.2%})")
    elif x is not None:
        lines.append(f"  X: {x['encoding']} {x.get('dtype', '')}".rstrip())
    else:
        lines.append("  X: none")
    return lines


def _table(elements: list[dict[str, Any]]) -> list[str]:
    from .tree import format_bytes

    header = ("element", "encoding", "dtype", "shape", "chunks", "nnz", "stored")
    rows = [header]
    for e in elements:
        depth = e["path"].count("/")
        chunks = _fmt_shape(e.get("chunks"))
        if e.get("shards"):
            chunks += f" in shards {_fmt_shape(e['shards'])}"
        if e["kind"] == "group" and "columns" in e.get("extra", {}):
            shape = f"{e['extra']['columns']} columns"
        elif e["kind"] == "group" and e.get("shape") is None:
            n = e.get("children", 0)
            shape = f"{n} element{'' if n == 1 else 's'}"
        else:
            shape = _fmt_shape(e.get("shape")) or ("()" if e["kind"] == "array" else "")
        rows.append(
            (
                "  " * depth + e["path"].rsplit("/", 1)[-1] + ("/" if e["kind"] == "group" else ""),
                e["encoding"] or "-",
                e.get("dtype", ""),
                shape,
                chunks,
                str(e["nnz"]) if e.get("nnz") is not None else "",
                format_bytes(e["stored_bytes"]) if e.get("stored_bytes") is not None else "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def run(args: argparse.Namespace, console: Console) -> int:
    options = storage_options(args)
    infos = [store_info(url, options) for url in expand_paths(args.url, options)]
    if args.json:
        console.result(json.dumps(infos[0] if len(infos) == 1 else infos, indent=2))
        return 0
    for i, info in enumerate(infos):
        if i:
            console.result()
        for line in [*_summary(info), "  elements:", *_table(info["elements"])]:
            console.result(line)
    return 0
