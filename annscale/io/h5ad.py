"""Eager ``.h5ad`` reading and writing, file-compatible with anndata 0.12.

:func:`read_h5ad` reads a whole file (local path or fsspec URL) into an in-memory
``AnnData``; ``backed="r"`` opens it lazily instead (``annscale.read_lazy``).
:func:`write_h5ad` writes exactly what ``anndata.write_h5ad`` writes (same elements, order,
attributes and dtypes), into a staging file that replaces the target only when complete.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from natsort import natsorted  # at import (as anndata): writes sort categories with it

from ..errors import StorageError
from ..spec import containers
from ..spec.arrays import ARRAY
from ..spec.registry import ReadContext, WriteContext, expect_array, stamp, write_elem
from ..storage.atomic import atomic_write, check_not_reading
from ..storage.elements import Array, Group
from ..storage.location import Location, as_location
from ..storage.open import detect_kind, open_root
from ..writeout.dispatch import LOOKAHEAD_OPTION, h5_lookahead

__all__ = ["read_h5ad", "write_h5ad"]

_DENSE_ROWS_PER_WRITE = 1000


def read_h5ad(
    filename: str | os.PathLike | Location,
    backed: Literal["r", "r+"] | bool | None = None,
    *,
    as_sparse: Sequence[str] = (),
    as_sparse_fmt: type = sp.csr_matrix,
    chunk_size: int = 6000,
    storage_options: dict[str, Any] | None = None,
):
    """Read an ``.h5ad`` file into memory.

    Parameters
    ----------
    filename
        Local path or fsspec URL (``s3://...``); remote files are read through a block cache.
    backed
        ``"r"``/``"r+"``/``True``: open lazily (see :func:`annscale.read_lazy`) instead of
        reading everything.
    as_sparse
        ``"X"`` and/or ``"raw/X"``: dense datasets to read as sparse matrices, ``chunk_size``
        rows (CSR) or columns (CSC) at a time.
    as_sparse_fmt
        ``scipy.sparse.csr_matrix`` or ``csc_matrix``.
    chunk_size
        Rows (or columns) of a dense dataset converted per step with ``as_sparse``.
    storage_options
        fsspec options for remote URLs.
    """
    if backed not in (None, False):
        from ..lazy.open import read_lazy

        return read_lazy(filename, storage_options=storage_options)
    if as_sparse_fmt not in (sp.csr_matrix, sp.csc_matrix):
        raise NotImplementedError("Dense formats can only be read to CSR or CSC matrices.")
    wanted = [as_sparse] if isinstance(as_sparse, str) else list(as_sparse)
    readers: dict[str, Any] = {}
    for name in wanted:
        key = "raw/X" if name in ("raw/X", "raw.X", ("raw", "X")) else name
        if key not in ("X", "raw/X"):
            raise NotImplementedError("Currently only `X` and `raw/X` can be read as sparse.")
        readers[key] = lambda elem, _k=key: _dense_as_sparse(elem, as_sparse_fmt, chunk_size)
    loc = as_location(filename, storage_options)
    if detect_kind(loc) != "h5ad":
        raise StorageError("not an HDF5 (.h5ad) file", source=loc.url)
    with open_root(loc, "r", kind="h5ad") as root:
        return containers.read_root(root, ReadContext(), readers=readers)


def _dense_as_sparse(elem: Any, fmt: type, chunk_size: int) -> Any:
    """Read a dense 2-d dataset as CSR (row chunks) or CSC (column chunks)."""
    if elem.is_group:  # already sparse on disk
        from ..spec.registry import read_elem

        return fmt(read_elem(elem))
    arr: Array = expect_array(elem, "a dense matrix")
    n_rows, n_cols = arr.shape
    if fmt is sp.csr_matrix:
        blocks = [
            sp.csr_matrix(arr.read(slice(i, i + chunk_size))) for i in range(0, n_rows, chunk_size)
        ]
        return (
            sp.vstack(blocks, format="csr") if blocks else sp.csr_matrix(arr.shape, dtype=arr.dtype)
        )
    blocks = [
        sp.csc_matrix(arr.read((slice(None), slice(j, j + chunk_size))))
        for j in range(0, n_cols, chunk_size)
    ]
    return sp.hstack(blocks, format="csc") if blocks else sp.csc_matrix(arr.shape, dtype=arr.dtype)


def write_h5ad(
    filepath: str | os.PathLike | Location,
    adata: Any,
    *,
    compression: Literal["gzip", "lzf"] | int | None = None,
    compression_opts: Any = None,
    as_dense: Sequence[str] = (),
    convert_strings_to_categoricals: bool = True,
    dataset_kwargs: Mapping[str, Any] = MappingProxyType({}),
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write ``adata`` as an ``.h5ad`` file (what ``anndata.write_h5ad`` writes).

    Parameters
    ----------
    filepath
        Local path, or an fsspec URL (written locally, then uploaded).
    compression, compression_opts
        HDF5 filter for every non-scalar dataset (``"gzip"`` with level 0-9, ``"lzf"``);
        ``None`` (default) stores datasets uncompressed and contiguous, as anndata does.
    as_dense
        ``"X"`` and/or ``"raw/X"``: sparse matrices to store as dense arrays (written 1000
        rows at a time).
    convert_strings_to_categoricals
        Turn string columns of ``obs``/``var``/``raw.var`` with repeated values into
        categoricals first (modifies ``adata``, as anndata does).
    dataset_kwargs
        Dataset options for every non-scalar dataset, as anndata's ``dataset_kwargs``:
        ``compression``, ``compression_opts``, ``chunks`` (the options annscale's storage
        layer passes to HDF5); the ``compression`` arguments above take precedence.

    Lazy objects stream: each dask array element is computed block by block in parallel
    on the active scheduler, with bounded lookahead, and written in place by its task (an
    uncompressed local file, a local scheduler, offsets known up front) or else appended in
    order by this process (:func:`annscale.writeout.write_dask_h5`), so memory holds a few
    blocks whatever the size.

    The file is written beside the target and renamed over it only when complete; a remote
    target is written to a local temporary file, then uploaded as one object. Writing over
    a file the object still reads lazily raises :class:`~annscale.errors.WriteConflictError`.
    """
    dense = _normalise_as_dense(as_dense, adata)
    loc = as_location(filepath, storage_options)
    check_not_reading(loc, adata)
    if convert_strings_to_categoricals:
        strings_to_categoricals(adata)
    options: dict[str, Any] = dict(dataset_kwargs)
    if compression is not None:
        options["compression"] = compression
        if compression_opts is not None:
            options["compression_opts"] = compression_opts
    ctx = WriteContext(dataset_options=options, options={LOOKAHEAD_OPTION: h5_lookahead()})
    with atomic_write(loc) as staging:
        with open_root(staging, "w", kind="h5ad") as root:
            write_h5ad_root(root, adata, ctx, as_dense=dense)


def write_h5ad_root(root: Group, adata: Any, ctx: WriteContext, *, as_dense=()) -> None:
    """Write ``adata`` into an open HDF5 root group in anndata's ``write_h5ad`` order."""
    containers.stamp_root(root)
    for name in containers.H5AD_ORDER:
        value = containers.anndata_part(adata, name)
        if value is None and name in ("X", "raw"):
            continue
        if name == "X" and "X" in as_dense and _is_sparse(value):
            _write_sparse_as_dense(root, "X", value, ctx)
        elif name == "raw" and "raw/X" in as_dense and _is_sparse(value.X):
            g = root.create_group("raw")
            _write_sparse_as_dense(g, "X", value.X, ctx)
            write_elem(g, "var", value.var, ctx)
            write_elem(g, "varm", dict(value.varm), ctx)
            stamp(g, containers.RAW)
        else:
            write_elem(root, name, value, ctx)


def _is_sparse(value: Any) -> bool:
    return sp.issparse(value) or sp.issparse(getattr(value, "_meta", None))


def _densify(block: Any) -> np.ndarray:
    return block.toarray() if sp.issparse(block) else np.asarray(block)


def _normalise_as_dense(as_dense: Sequence[str] | str, adata: Any) -> tuple[str, ...]:
    names = [as_dense] if isinstance(as_dense, str) else list(as_dense)
    names = ["raw/X" if n == "raw.X" else n for n in names]
    if any(n not in ("X", "raw/X") for n in names):
        raise NotImplementedError(
            "Currently, only `X` and `raw/X` are supported values in `as_dense`"
        )
    if "raw/X" in names and adata.raw is None:
        raise ValueError("Cannot specify writing `raw/X` to dense if it doesn't exist.")
    return tuple(names)


def _write_sparse_as_dense(group: Group, key: str, value: Any, ctx: WriteContext) -> None:
    if hasattr(value, "__dask_graph__"):  # lazy: densify block by block, written in order
        dense = value.map_blocks(
            _densify, dtype=value.dtype, meta=np.empty((0, 0), dtype=value.dtype)
        )
        write_elem(group, key, dense, ctx)
        return
    target = group.create_array(key, shape=value.shape, dtype=value.dtype, **ctx.dataset_options)
    csr = sp.csr_matrix(value)
    for start in range(0, value.shape[0], _DENSE_ROWS_PER_WRITE):
        stop = min(start + _DENSE_ROWS_PER_WRITE, value.shape[0])
        target.write(slice(start, stop), csr[start:stop].toarray())
    stamp(target, ARRAY)


def strings_to_categoricals(adata: Any) -> None:
    """What anndata does before writing: string columns with repeats become categoricals.

    Applies to ``obs``/``var`` (through the container's ``strings_to_categoricals``) and to
    ``raw.var``.
    """
    adata.strings_to_categoricals()
    raw = getattr(adata, "raw", None)
    if raw is not None:
        try:
            adata.strings_to_categoricals(raw.var)
        except TypeError:  # a container method without the ``df`` argument
            _frame_strings_to_categoricals(raw.var)


def _frame_strings_to_categoricals(df: Any) -> None:
    import pandas as pd

    for key in list(df.columns):
        col = df[key]
        if isinstance(col.dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.infer_dtype(col, skipna=True) != "string":
            continue
        values = np.asarray(col.to_numpy(dtype=object))
        uniques = pd.unique(col.dropna())
        if len(uniques) < len(values):
            df[key] = pd.Categorical(values, categories=natsorted(uniques))
