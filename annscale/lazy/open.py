"""``read_lazy``: open a ``.h5ad`` file or zarr store with its arrays as lazy dask arrays.

Opening reads metadata, ``obs``, ``var`` and ``uns`` (and non-array elements such as data
frames in ``obsm``); X, layers, obsm/varm arrays, obsp/varp and raw.X become deferred
sources (:mod:`annscale.lazy.sources`) — no chunk of them is read until their dask array is
built on first access. (Of a sparse group in a local HDF5 file, the first and last entries
of ``indptr`` are read: two small reads that tell its number of nonzeros.)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..spec import containers
from ..spec.registry import ReadContext, get_spec, read_elem
from ..storage.cache import get_root
from ..storage.elements import Array, Element, Group, H5Array
from ..storage.location import Location, as_location
from . import h5raw
from .sources import DenseSource, SparseSource

__all__ = ["read_lazy", "lazy_element"]

_LAZY_MAPPINGS = ("layers", "obsm", "varm", "obsp", "varp")


def read_lazy(
    store: str | os.PathLike | Location | Any,
    *,
    load_annotation_index: bool = True,
    storage_options: dict[str, Any] | None = None,
    chunks: int | tuple[int, ...] | None = None,
):
    """Open an AnnData store lazily.

    Parameters
    ----------
    store
        Local path or fsspec URL (``s3://``, ``gs://``, ``https://``, ``file://``) of a
        ``.h5ad`` file or a zarr store (directory or ``.zip``; v2 or v3; consolidated or not),
        or an open ``h5py.File`` / root ``zarr.Group``, which stands for the file or store it
        was opened from (tasks reopen it by address).
    load_annotation_index
        Accepted for anndata compatibility. anndata uses it to leave the index out of its
        xarray-backed obs/var; annscale's obs and var are pandas DataFrames indexed by the
        real names either way.
    storage_options
        fsspec options for remote URLs (credentials, endpoint, ...).
    chunks
        ``None`` (default): chunks hold about ``annscale.settings.chunk_target_bytes`` of
        stored data each (sparse chunks are balanced by nonzeros; dense chunks are whole
        storage chunks/shards merged). An int, or a tuple like ``(1000, -1)``: that many rows
        (CSR, dense) or columns (CSC) per chunk.

    Returns
    -------
    An :class:`annscale.AnnData` whose X, layers, obsm/varm arrays, obsp/varp and raw.X are
    dask arrays computed from the store on demand (CSR chunks are ``scipy.sparse`` CSR
    matrices along rows, CSC chunks CSC matrices along columns). ``.to_memory()`` loads it.
    """
    loc = as_location(store, storage_options)
    root = get_root(loc)
    opener = _Opener(loc, chunks)
    readers = {"X": opener.element, "raw/X": opener.element}
    readers.update({k: opener.mapping for k in _LAZY_MAPPINGS})
    return containers.read_root(root, ReadContext(), readers=readers)


class _Opener:
    def __init__(self, location: Location, chunks: Any):
        self.location = location
        self.chunks = chunks

    def element(self, elem: Element) -> Any:
        return lazy_element(elem, self.location, chunks=self.chunks)

    def mapping(self, elem: Element) -> Any:
        if not elem.is_group or get_spec(elem).encoding_type != "dict":
            return read_elem(elem)  # legacy layouts: read (and upgrade) eagerly
        return {k: self.element(elem[k]) for k in elem.keys()}  # type: ignore[union-attr]


def lazy_element(elem: Element, location: Location, *, chunks: Any = None) -> Any:
    """A deferred source for a stored sparse or numeric array; other elements are read.

    Reads only attributes and array metadata (shape, dtype, chunking) — no chunk.
    """
    spec = get_spec(elem)
    attrs = elem.attrs
    if isinstance(elem, Group):
        fmt = None
        if spec.encoding_type in ("csr_matrix", "csc_matrix"):
            fmt = spec.encoding_type[:3]
            shape = attrs.get("shape")
        elif spec.encoding_type == "" and attrs.get("h5sparse_format") in ("csr", "csc"):
            fmt = attrs["h5sparse_format"]
            shape = attrs.get("h5sparse_shape")
        if (
            fmt is not None
            and shape is not None
            and {"data", "indices", "indptr"} <= set(elem.keys())
        ):
            data, indices, indptr = elem["data"], elem["indices"], elem["indptr"]
            if location.is_local and isinstance(data, H5Array):
                # looked up now, while the file is open: tasks then read without HDF5
                for part in (data, indices, indptr):
                    h5raw.raw_layout(part.handle)
            return SparseSource(
                location, elem.path, tuple(int(s) for s in shape), np.dtype(data.dtype),
                chunks=chunks, format=fmt,
                bytes_per_nnz=np.dtype(data.dtype).itemsize + np.dtype(indices.dtype).itemsize,
                stored_nnz=int(data.shape[0]),
                indptr_ends=_indptr_ends(indptr, location),
            )  # fmt: skip
        return read_elem(elem)
    assert isinstance(elem, Array)
    if (
        spec.encoding_type == "array"
        and elem.ndim >= 1
        and np.dtype(elem.dtype).kind in "biufc"
        and not elem.is_string
    ):
        if location.is_local and isinstance(elem, H5Array):
            # looked up now, while the file is open: tasks then read it without HDF5
            h5raw.raw_layout(elem.handle)
        storage_chunks = elem.chunks
        shards = getattr(elem.handle, "shards", None)
        if shards is not None:
            storage_chunks = shards
        return DenseSource(
            location, elem.path, tuple(int(s) for s in elem.shape), np.dtype(elem.dtype),
            chunks=chunks,
            storage_chunks=tuple(storage_chunks) if storage_chunks is not None else None,
        )  # fmt: skip
    return read_elem(elem)


def _indptr_ends(indptr: Element, location: Location) -> tuple[int, int] | None:
    """``(indptr[0], indptr[-1])`` of a sparse group in a local HDF5 file (cheap reads of
    an open file), else None (a zarr chunk or a remote request is not worth it at open)."""
    if not (location.is_local and isinstance(indptr, H5Array)) or indptr.ndim != 1:
        return None
    n = indptr.shape[0]
    if n == 0 or np.dtype(indptr.dtype).kind not in "iu":
        return None
    try:
        return int(indptr.read(slice(0, 1))[0]), int(indptr.read(slice(n - 1, n))[0])
    except Exception:  # unreadable: reading the chunks will report it
        return None
