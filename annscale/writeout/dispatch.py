"""The element registry's writer of dask arrays: every one goes to the write-out engine.

:func:`write_dask_element` is what ``spec/arrays.py`` (dense) and ``spec/sparse.py``
(CSR/CSC chunks) register for dask arrays. It picks the engine by target:

* inside :func:`annscale.write_zarr` (a :class:`~.session.ZarrSession` in the write
  context): the element is handed to the session, which writes all elements of the store
  as one task graph at the end;
* another zarr group whose store tasks can address (a local directory or an fsspec URL,
  e.g. ``annscale.io.write_elem(zarr_group, "X", x)``): :func:`.zarr.write_dask_zarr` now,
  as one graph;
* HDF5, and zarr stores tasks cannot reach (in-memory, zip): :func:`.h5.write_dask_h5`,
  blocks written in order by this process (or, for local uncompressed HDF5 files, by their
  own tasks at offsets known up front). :func:`annscale.write_h5ad` computes blocks in
  parallel with a bounded lookahead (:data:`LOOKAHEAD_OPTION`, see :func:`h5_lookahead`);
  a bare element write (``annscale.io.write_elem``) computes one block at a time, as
  anndata does.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any

import dask.array as da
import numpy as np
import zarr

from ..scheduler import active_client
from ..storage.elements import Element, Group
from ..storage.location import Location
from .h5 import write_dask_h5
from .session import INDEX_DTYPE, SESSION_OPTION
from .stored_nnz import stored_block_nnz
from .zarr import sparse_format, write_dask_zarr

__all__ = [
    "write_dask_element",
    "zarr_location",
    "h5_lookahead",
    "index_dtype_of",
    "writeout_options",
    "LOOKAHEAD_OPTION",
]

LOOKAHEAD_OPTION = "annscale.writeout.lookahead"
"""Key in ``WriteContext.options``: blocks computed ahead of the single HDF5 writer."""

_OPTIONS: ContextVar[Mapping[str, Any]] = ContextVar(
    "annscale_writeout_options", default=MappingProxyType({})
)


@contextmanager
def writeout_options(*, index_dtype: Any = None) -> Iterator[None]:
    """Options of the write-out engine for the writes made in this block (and thread).

    ``index_dtype``: ``indices``/``indptr`` dtype of sparse dask elements. ``None``
    (default): :data:`~.session.INDEX_DTYPE` (int64, what anndata's writer of dask arrays
    writes). ``"auto"``: the narrowest that holds the values (int32 unless the minor axis
    or the number of nonzeros needs int64), what anndata's ``concat_on_disk`` writes; HDF5
    writes, which append blocks without counting first, know the number of nonzeros only
    when the stored ``indptr`` of the inputs gives it (:func:`.stored_nnz.stored_block_nnz`),
    else bound it by the shape.
    """
    token = _OPTIONS.set({**_OPTIONS.get(), "index_dtype": index_dtype})
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def index_dtype_of() -> np.dtype | None:
    """The ``index_dtype`` for the engine's sparse writers (see :func:`writeout_options`):
    a dtype, or None for the narrowest that fits."""
    value = _OPTIONS.get().get("index_dtype")
    if value is None:
        return INDEX_DTYPE
    if isinstance(value, str) and value == "auto":
        return None
    return np.dtype(value)


def h5_lookahead() -> int:
    """Blocks to compute ahead of the HDF5 writer: the scheduler's threads, from 4 to 16.

    Peak memory is about this many blocks (each about ``settings.chunk_target_bytes`` for
    lazily read inputs).
    """
    client = active_client()
    if client is not None:
        try:
            threads = sum(client.nthreads().values())
        except Exception:  # a client that cannot answer right now
            threads = 4
    else:
        threads = os.cpu_count() or 4
    return int(min(16, max(4, threads)))


def zarr_location(group: Group) -> Location | None:
    """The :class:`Location` of ``group``'s zarr store if tasks can open it, else None."""
    handle = getattr(group, "handle", None)
    if not isinstance(handle, zarr.Group):
        return None
    store = handle.store
    if isinstance(store, zarr.storage.LocalStore):
        return Location(str(store.root))
    if isinstance(store, zarr.storage.FsspecStore):
        protocol = store.fs.protocol
        protocol = protocol[0] if isinstance(protocol, (tuple, list)) else protocol
        return Location(f"{protocol}://{store.path}", dict(store.fs.storage_options))
    return None


def write_dask_element(group: Group, key: str, x: da.Array, ctx: Any) -> Element:
    """Write dask array ``x`` (numeric, dense or sparse chunks) as ``group[key]``.

    ``ctx`` is the registry's write context: its ``dataset_options`` give ``chunks``,
    ``shards``, ``compressors`` (zarr) or ``compression``/``compression_opts`` (HDF5).
    Returns the element written (the registry stamps its encoding attributes).
    """
    options = dict(ctx.dataset_options)
    session = ctx.options.get(SESSION_OPTION)
    if session is not None and group.backend == "zarr":
        return session.add(group, key, x, options)
    location = zarr_location(group) if group.backend == "zarr" else None
    fmt = sparse_format(x)
    index_dtype = index_dtype_of() if fmt is not None else None
    if location is not None:
        write_dask_zarr(
            location,
            group.path,
            key,
            x,
            zarr_format=group.handle.metadata.zarr_format,
            chunks=options.get("chunks") if sparse_format(x) is None else None,
            shards=options.get("shards"),
            compressors=options.get("compressors", "auto"),
            index_dtype=index_dtype,
        )
        return group[key]
    # nonzeros per block from the inputs' stored indptr, when the index dtypes are left to
    # the writer: int32 indptr if they allow, and blocks that write themselves in place
    # (each knows its offsets)
    counts = stored_block_nnz(x, fmt) if fmt is not None and index_dtype is None else None
    write_dask_h5(
        group,
        key,
        x,
        compression=options.get("compression"),
        compression_opts=options.get("compression_opts"),
        chunks=options.get("chunks") if sparse_format(x) is None else None,
        index_dtype=index_dtype,
        block_nnz=counts,
        lookahead=int(ctx.options.get(LOOKAHEAD_OPTION, 1)),
    )
    return group[key]
