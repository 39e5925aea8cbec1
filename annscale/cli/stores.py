"""Inputs and outputs of commands: ``--storage-option``, globs, output formats, writing.

Inputs are local paths or fsspec URLs (``s3://``, ``gs://``, ``https://``); patterns with
``*``, ``?`` or ``[`` are expanded (sorted) on the filesystem they name. An output's format
follows its name: ``.h5ad`` is HDF5, ``.zarr`` or ``.zarr.zip`` is zarr (v2 or v3,
``--zarr-format``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from typing import Any, Literal

from .._settings import settings
from ..combine.collection import expand_glob
from ..storage.location import Location, as_location
from .output import Console, UsageError

__all__ = [
    "storage_options",
    "expand_paths",
    "single_input",
    "output_kind",
    "prepare_output",
    "write_output",
]

GLOB_CHARS = ("*", "?", "[")
OutputKind = Literal["h5ad", "zarr"]


def _parse_value(text: str) -> Any:
    low = text.strip().lower()
    if low in ("true", "yes", "on"):
        return True
    if low in ("false", "no", "off"):
        return False
    if low in ("none", "null"):
        return None
    if text.strip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"--storage-option value {text!r} is not valid JSON: {e}") from None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def storage_options(args: argparse.Namespace) -> dict[str, Any] | None:
    """``--storage-option KEY=VALUE`` options as a dict (dotted keys nest), or None."""
    out: dict[str, Any] = {}
    for item in getattr(args, "storage_option", None) or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--storage-option expects KEY=VALUE, got {item!r}")
        *parents, leaf = key.strip().split(".")
        node = out
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise UsageError(f"--storage-option {key!r} conflicts with an earlier option")
        node[leaf] = _parse_value(value)
    return out or None


def expand_paths(patterns: Sequence[str], options: dict[str, Any] | None) -> list[str]:
    """The inputs named by ``patterns``, globs expanded and sorted (in pattern order)."""
    out: list[str] = []
    for pattern in patterns:
        if any(c in pattern for c in GLOB_CHARS):
            found = expand_glob(pattern, options)
            if not found:
                raise UsageError(f"no file matches {pattern!r}")
            out.extend(found)
        else:
            out.append(pattern)
    return out


def single_input(pattern: str, options: dict[str, Any] | None) -> str:
    """The one input a glob (or plain path) names; a usage error if it names several."""
    paths = expand_paths([pattern], options)
    if len(paths) != 1:
        raise UsageError(f"{pattern!r} matches {len(paths)} inputs; this command takes one")
    return paths[0]


def output_kind(url: str) -> OutputKind:
    """``"h5ad"`` or ``"zarr"`` from the output's name."""
    name = url.rstrip("/").lower()
    if name.endswith((".h5ad", ".h5", ".hdf5")):
        return "h5ad"
    if name.endswith((".zarr", ".zip")):
        return "zarr"
    raise UsageError(
        f"cannot tell the output format of {url!r}: its name must end with .h5ad (HDF5) "
        "or .zarr / .zarr.zip (zarr)"
    )


def _exists(loc: Location) -> bool:
    if loc.is_local:
        return os.path.lexists(loc.path)
    return bool(loc.filesystem().exists(loc.path))


def prepare_output(
    args: argparse.Namespace, options: dict[str, Any] | None, *, inputs: Sequence[str] = ()
) -> tuple[Location, OutputKind]:
    """Check ``-o OUT``: its format, that it is not an input, and ``--overwrite``."""
    loc = as_location(args.output, options)
    kind = output_kind(args.output)
    if any(as_location(i, options) == loc for i in inputs):
        raise UsageError(f"the output {args.output!r} is also an input; write somewhere else")
    if kind == "h5ad" and getattr(args, "zarr_format", None) is not None:
        raise UsageError("--zarr-format applies to zarr outputs (.zarr, .zarr.zip) only")
    if kind == "zarr" and getattr(args, "compression", None) is not None:
        raise UsageError("--compression applies to .h5ad outputs only")
    if not getattr(args, "overwrite", False) and _exists(loc):
        raise UsageError(f"{args.output!r} exists; pass --overwrite to replace it")
    return loc, kind


def write_output(
    adata: Any, loc: Location, kind: OutputKind, args: argparse.Namespace, console: Console
) -> None:
    """Write ``adata`` (lazy parts streamed chunk by chunk) with the public writers."""
    with console.tasks(f"writing {loc.url}"), settings.override(progress=False):
        if kind == "h5ad":
            adata.write_h5ad(loc, compression=getattr(args, "compression", None))
        else:
            adata.write_zarr(loc, zarr_format=getattr(args, "zarr_format", None))
