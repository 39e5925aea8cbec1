"""A plain description of what is stored in an ``.h5ad`` file or zarr store.

:func:`describe` lists every node (group or array) with its attributes — values *and* the
stored attribute types (HDF5 dtype and shape; JSON type for zarr) — and, for arrays, the
stored dtype and shape. Comparing two descriptions shows whether two writers produced the
same layout; tests use it to check annscale against anndata attribute by attribute.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import h5py
import numpy as np
import zarr

from ..storage.location import as_location
from ..storage.open import detect_kind

__all__ = ["NodeInfo", "describe"]


@dataclass
class NodeInfo:
    """One stored node: ``kind`` is ``"group"`` or ``"array"``."""

    kind: str
    attrs: dict[str, tuple[Any, str]] = field(default_factory=dict)
    dtype: str | None = None
    shape: tuple[int, ...] | None = None


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _h5_attrs(obj: Any) -> dict[str, tuple[Any, str]]:
    out = {}
    for name in obj.attrs:
        aid = obj.attrs.get_id(name)
        stored = aid.dtype
        string = h5py.check_string_dtype(stored)
        if string is not None:
            kind = f"str({'vlen' if string.length is None else string.length},{string.encoding})"
        else:
            kind = stored.str
        shape = aid.shape
        value = obj.attrs[name]
        if isinstance(value, h5py.Reference):
            value = "<reference>"
        out[name] = (_plain(value), f"{kind}{list(shape) if shape else ''}")
    return out


def _json_attrs(obj: Any) -> dict[str, tuple[Any, str]]:
    return {k: (_plain(v), type(v).__name__) for k, v in obj.attrs.asdict().items()}


def describe(path: str | os.PathLike) -> dict[str, NodeInfo]:
    """Every node of the store at ``path`` (``"/"`` is the root), keyed by absolute path."""
    loc = as_location(path)
    kind = detect_kind(loc)
    if kind == "h5ad":
        return _describe_h5(loc.path)
    store = zarr.storage.ZipStore(loc.path, mode="r") if kind == "zip" else loc.path
    return _describe_zarr(zarr.open_group(store, mode="r"))


def _describe_h5(path: str) -> dict[str, NodeInfo]:
    out: dict[str, NodeInfo] = {}
    with h5py.File(path, "r") as f:
        out["/"] = NodeInfo("group", _h5_attrs(f))

        def visit(name: str, obj: Any) -> None:
            if isinstance(obj, h5py.Group):
                out["/" + name] = NodeInfo("group", _h5_attrs(obj))
            else:
                dtype = obj.dtype
                string = h5py.check_string_dtype(dtype)
                out["/" + name] = NodeInfo(
                    "array",
                    _h5_attrs(obj),
                    "str(vlen,utf-8)"
                    if string is not None and string.length is None
                    else dtype.str,
                    obj.shape,
                )

        f.visititems(visit)
    return out


def _describe_zarr(root: zarr.Group) -> dict[str, NodeInfo]:
    out: dict[str, NodeInfo] = {"/": NodeInfo("group", _json_attrs(root))}

    def walk(group: zarr.Group, prefix: str) -> None:
        for name, node in group.members():
            p = f"{prefix}/{name}"
            if isinstance(node, zarr.Group):
                out[p] = NodeInfo("group", _json_attrs(node))
                walk(node, p)
            else:
                out[p] = NodeInfo("array", _json_attrs(node), str(node.metadata.dtype), node.shape)

    walk(root, "")
    return out
