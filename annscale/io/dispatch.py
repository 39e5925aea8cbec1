"""Element I/O with user callbacks, and lazy element reads (``annscale.experimental``).

* :func:`read_dispatched` reads an element tree calling ``callback(read_func, elem_name,
  elem, iospec=...)`` for **every** element instead of reading it; ``read_func(elem)`` reads
  that element the default way, its children again going through the callback.
* :func:`write_dispatched` does the same for writing: ``callback(write_func, store,
  elem_name, elem, iospec=..., dataset_kwargs=...)`` for every element, where
  ``write_func(store, elem_name, elem, dataset_kwargs=...)`` writes it the default way.
* :func:`read_elem_lazy` turns one stored array (dense numeric, or a csr/csc group) into a
  dask array without reading any chunk; other elements are read into memory.

``elem_name`` is, as anndata passes it, the element's absolute path when reading and when
writing HDF5 (``"/obs/cell_type"``) and its key within ``store`` when writing zarr
(``"cell_type"``); ``elem`` / ``store`` are the raw ``h5py``/``zarr`` objects and ``iospec`` an
:class:`~annscale.spec.registry.IOSpec`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from ..core.deferred import materialize
from ..spec.registry import (
    IOSpec,
    ReadContext,
    WriteContext,
    _find_writer,
    get_spec,
    read_elem_direct,
    write_elem_direct,
)
from ..storage.elements import Element, Group
from ..storage.location import as_location
from ..typing import ReadCallback, RWAble, StorageType, WriteCallback
from .elem import as_element, write_root

__all__ = ["read_dispatched", "write_dispatched", "read_elem_lazy"]


def read_dispatched(elem: StorageType, callback: ReadCallback) -> RWAble:
    """Read ``elem`` (and everything below it), handing every element to ``callback``."""

    def read_func(node: Any) -> Any:
        return read_elem_direct(as_element(node), ctx)

    def dispatch(node: Element, ctx: ReadContext) -> Any:
        return callback(read_func, node.path, node.handle, iospec=get_spec(node))

    ctx = ReadContext(dispatch=dispatch)
    return dispatch(as_element(elem), ctx)


def _spec_of(value: Any) -> IOSpec:
    try:
        return _find_writer(value)[0]
    except TypeError:
        return IOSpec("", "")


def write_dispatched(
    store: StorageType,
    key: str,
    elem: RWAble,
    callback: WriteCallback,
    *,
    dataset_kwargs: Mapping[str, Any] = MappingProxyType({}),
) -> None:
    """Write ``elem`` as ``store[key]``, handing every element to ``callback``."""

    def write_func(
        parent: Any,
        elem_name: str,
        value: Any,
        *,
        dataset_kwargs: Mapping[str, Any] = MappingProxyType({}),
    ) -> None:
        g = as_element(parent)
        if not isinstance(g, Group):
            raise TypeError(f"write_func needs a group to write into, got an array ({g.path})")
        sub = dataclasses.replace(ctx, dataset_options=dict(dataset_kwargs))
        name = elem_name.rstrip("/").rsplit("/", 1)[-1]
        if name == "":  # the root: an AnnData written into ``parent`` itself
            write_root(g, value, sub)
        else:
            write_elem_direct(g, name, value, sub)

    def dispatch(group: Group, name: str, value: Any, ctx: WriteContext) -> Element | None:
        key = name.strip("/")
        if key == "":
            path = "/"
        elif group.backend == "hdf5":  # as anndata: absolute in HDF5, the bare key in zarr
            path = f"{group.path.rstrip('/')}/{key}"
        else:
            path = key
        callback(
            write_func,
            group.handle,
            path,
            value,
            iospec=_spec_of(value),
            dataset_kwargs=MappingProxyType(dict(ctx.dataset_options)),
        )
        # the element written (writers that convert a value and write it again need it)
        return group[key] if key and key in group else None

    ctx = WriteContext(dataset_options=dict(dataset_kwargs), dispatch=dispatch)
    g = as_element(store)
    if not isinstance(g, Group):
        raise TypeError(f"write_dispatched needs a group to write into, got an array ({g.path})")
    *parents, name = key.strip("/").split("/") if key.strip("/") else [""]
    for p in parents:
        g = g[p] if p in g else g.create_group(p)  # type: ignore[assignment]
    dispatch(g, name, elem, ctx)


def read_elem_lazy(elem: StorageType, chunks: tuple[int, ...] | None = None, **kwargs: Any) -> Any:
    """A dask array over a stored dense numeric array or csr/csc group (no chunk read).

    ``chunks`` as in :func:`annscale.read_lazy` (rows per chunk for CSR and dense, columns
    for CSC; ``None``: about ``settings.chunk_target_bytes`` per chunk). Other elements
    (data frames, scalars, strings, ...) are read into memory.
    """
    from ..lazy.open import lazy_element

    if kwargs:
        raise TypeError(f"read_elem_lazy got unexpected keyword arguments {sorted(kwargs)}")
    node = as_element(elem)
    return materialize(lazy_element(node, as_location(node.source), chunks=chunks))
