"""Element-level I/O, as ``anndata.io.read_elem`` / ``write_elem``.

Both accept raw ``h5py``/``zarr`` groups and arrays (or annscale's storage elements), so code
written against anndata's element API keeps working.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import h5py
import zarr

from ..spec import containers
from ..spec.registry import ReadContext, WriteContext
from ..spec.registry import read_elem as _read_elem
from ..spec.registry import write_elem as _write_elem
from ..storage.elements import Element, Group, wrap

__all__ = ["read_elem", "write_elem", "write_root", "as_element"]


def as_element(node: Any) -> Element:
    """Wrap an ``h5py``/``zarr`` group or array (annscale elements pass through)."""
    if isinstance(node, Element):
        return node
    if isinstance(node, (h5py.Group, h5py.Dataset)):
        return wrap(node, node.file.filename, node.name or "/")
    if isinstance(node, (zarr.Group, zarr.Array)):
        return wrap(node, str(node.store), "/" + (node.path or ""))
    raise TypeError(f"not an h5py or zarr group/array: {type(node).__name__}")


def read_elem(elem: Any) -> Any:
    """Read one element (and everything below it) into memory, dispatching on its encoding."""
    return _read_elem(as_element(elem), ReadContext())


def write_elem(
    store: Any, k: str, elem: Any, *, dataset_kwargs: Mapping[str, Any] | None = None
) -> None:
    """Write ``elem`` as ``store[k]`` with anndata's encoding (``store``: a group).

    ``k`` may be a path (``"uns/a/b"``): missing intermediate groups are created.
    ``"/"`` writes an ``AnnData`` into ``store`` itself. ``dataset_kwargs`` go to every
    non-scalar array (``compression``, ``compression_opts``, ``chunks``, ``compressors``, ...).
    """
    key, value = k, elem
    g = as_element(store)
    if not isinstance(g, Group):
        raise TypeError(f"write_elem needs a group to write into, got an array ({g.path})")
    ctx = WriteContext(dataset_options=dict(dataset_kwargs or {}))
    if key.strip("/") == "":
        write_root(g, value, ctx)
        return
    *parents, name = key.strip("/").split("/")
    for p in parents:
        g = g[p] if p in g else g.create_group(p)  # type: ignore[assignment]
    _write_elem(g, name, value, ctx)


def write_root(group: Group, adata: Any, ctx: WriteContext) -> None:
    """Write ``adata`` into ``group`` itself (``write_elem(group, "/", adata)``), replacing
    everything ``group`` held."""
    for child in group.keys():
        group.delete(child)
    containers.write_anndata_parts(group, adata, ctx, containers.ZARR_ORDER)
    containers.stamp_root(group)
