"""What a loader reads: the matrix as row blocks, and the obs/obsm values that come along.

:func:`open_source` turns the loader's input — an :class:`annscale.AnnData` (lazy, a
collection, a view, or in memory), a URL, or a list of URLs — into a :class:`LoaderSource`:

* the matrix (X or a layer) and the block boundaries along rows. With ``block_size=None``
  a lazily stored matrix (a file or a collection) is planned — reading only sparse
  ``indptr`` — into dask chunks of about :data:`BLOCK_TARGET_BYTES` of stored data each,
  balanced by nonzeros (dense: whole storage chunks), and each chunk is one block. With a
  ``block_size`` a stored array is chunked into exactly ``block_size`` rows, and a
  collection pushes each block's row range down to its inputs, so every block is still one
  ranged read per array. Other dask arrays keep their chunks (split into ``block_size``
  blocks when asked; a block then reads its whole chunk); in-memory matrices are cut into
  blocks of ``block_size`` rows or about 1 MiB.
* ``obs``: the requested columns, in memory (lazy objects read obs when opened);
* ``obsm``: the requested values as stored (read per block, rows pushed down).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import dask.array as da
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .._settings import settings
from ..core.aligned import has_subset_pushdown
from ..core.deferred import is_deferred, materialize
from ..core.index import subset_array
from ..errors import ElementNotFoundError, FormatError
from ..lazy.sources import DenseSource, SparseSource
from ..storage.location import Location
from .plan import block_bounds

__all__ = ["BLOCK_TARGET_BYTES", "LoaderSource", "open_source"]

#: stored bytes (data + indices for sparse) of one block when ``block_size`` is not given
BLOCK_TARGET_BYTES = 1 << 20


@dataclass(frozen=True, eq=False)
class LoaderSource:
    """The arrays a loader reads (see the module docstring). Pickles: holds addresses.

    The matrix is read either from ``matrix`` (a dask array whose row chunks contain the
    blocks) or, when ``matrix`` is None, by pushing each block's rows down to ``stored``
    (a deferred value with a :func:`~annscale.core.index.subset_array` registration).
    """

    element: str  # "/X" or "/layers/<key>", for messages
    source: str | None  # file or URL the matrix comes from, when known
    obs: pd.DataFrame
    var: pd.DataFrame
    obsm: dict[str, Any]
    bounds: np.ndarray  # block offsets along rows (see plan.block_bounds)
    matrix: da.Array | None = None
    stored: Any = None
    chunk_of: dict[int, int] = field(default_factory=dict)  # chunk start row -> chunk index

    @property
    def n_obs(self) -> int:
        return int(self.bounds[-1])

    def piece(self, start: int, stop: int) -> Any:
        """Rows ``[start, stop)`` of the matrix as a dask array (builds a graph; reads at
        most sparse ``indptr`` of those rows)."""
        if self.matrix is None:
            return materialize(subset_array(self.stored, slice(start, stop), slice(None)))
        i = self.chunk_of.get(start)
        if i is not None and self.matrix.chunks[0][i] == stop - start:
            return self.matrix.blocks[i]
        return self.matrix[start:stop]

    def obsm_piece(self, key: str, start: int, stop: int) -> Any:
        """Rows ``[start, stop)`` of ``obsm[key]`` (lazy values stay lazy, pushed down)."""
        return materialize(subset_array(self.obsm[key], slice(start, stop), slice(None)))


def _is_url(x: Any) -> bool:
    return isinstance(x, str | os.PathLike | Location)


def _open(data: Any, storage_options: dict | None) -> Any:
    from ..core.anndata import AnnData

    if isinstance(data, AnnData):
        return data.copy() if data.is_view else data  # a view's lazy values stay lazy
    if isinstance(data, str) and any(c in data for c in "*?["):
        data = [data]  # a glob: a collection of the matching stores
    if _is_url(data):
        from ..lazy.open import read_lazy

        return read_lazy(data, storage_options=storage_options)
    if isinstance(data, Sequence) and data and all(_is_url(u) for u in data):
        from ..combine.collection import read_collection

        return read_collection(list(data), storage_options=storage_options)
    raise TypeError(
        "loader() takes an annscale.AnnData, a URL or path of a .h5ad/zarr store, or a list "
        f"of them; got {type(data).__name__}"
    )


def _source_name(adata: Any, stored: Any) -> str | None:
    loc = getattr(stored, "location", None)
    if isinstance(loc, Location):
        return loc.url
    name = adata.filename
    return None if name is None else str(name)


def _default_rows(x: Any) -> int:
    """Rows of an in-memory matrix holding about BLOCK_TARGET_BYTES."""
    n = max(1, x.shape[0])
    if sp.issparse(x):
        nbytes = x.nnz * (x.dtype.itemsize + x.indices.dtype.itemsize)
    else:
        nbytes = x.dtype.itemsize * int(np.prod(x.shape))
    per_row = max(1, nbytes // n)
    return max(1, BLOCK_TARGET_BYTES // per_row)


def _csc_error(name: str | None, element: str) -> FormatError:
    return FormatError(
        "the loader reads rows, but this matrix is compressed by column (csc): every block "
        "would read the whole matrix; store or convert it as csr",
        source=name,
        element=element,
    )


def _as_dask(x: Any, block_size: int | None) -> da.Array:
    """An in-memory matrix as a dask array of ``block_size`` (or ~1 MiB) row chunks."""
    if isinstance(x, pd.DataFrame) or len(getattr(x, "shape", ())) != 2:
        raise TypeError(f"the loader needs a 2-d matrix, found {type(x).__name__}")
    if sp.issparse(x):
        x = sp.csr_matrix(x)
    rows = block_size or _default_rows(x)
    return da.from_array(x, chunks=(rows, -1), asarray=False, name=False)


def _plan_matrix(stored: Any, block_size: int | None, element: str, name: str | None) -> dict:
    """How to read the matrix: ``matrix`` (dask, chunks contain the blocks) or ``stored``
    (pushdown per block), and the block ``bounds``. Reads at most sparse ``indptr``."""
    if getattr(stored, "format", None) == "csc":
        raise _csc_error(name, element)
    if isinstance(stored, SparseSource | DenseSource) and block_size is not None:
        # chunks of exactly block_size rows: each block is one chunk, one ranged read
        x = replace(stored, chunks=block_size).materialize()
    elif is_deferred(stored) and block_size is None:
        with settings.override(chunk_target_bytes=BLOCK_TARGET_BYTES):
            x = materialize(stored)
    elif is_deferred(stored) and has_subset_pushdown(stored):
        # e.g. a collection: every block pushed down to the inputs' stored rows
        n = int(stored.shape[0])
        return {"stored": stored, "bounds": block_bounds((n,), block_size)}
    else:
        x = materialize(stored)
    if not isinstance(x, da.Array):
        x = _as_dask(x, block_size)
    if sp.issparse(x._meta) and x._meta.format == "csc":
        raise _csc_error(name, element)
    if len(x.chunks[1]) > 1 and sp.issparse(x._meta):
        x = x.rechunk({1: -1})  # one sparse block per row range
    return {"matrix": x, "bounds": block_bounds(x.chunks[0], block_size)}


def _stored_matrix(adata: Any, layer: str | None) -> tuple[Any, str]:
    if layer is None:
        stored = adata._X  # the value as stored: a lazy source is re-planned, not computed
        if stored is None:
            raise ElementNotFoundError(
                "this object has no X; pass layer= to load a layer",
                source=_source_name(adata, None),
                element="/X",
            )
        return stored, "/X"
    if layer not in adata.layers:
        raise ElementNotFoundError(
            f"no layer {layer!r} (layers: {list(adata.layers.keys())})",
            source=_source_name(adata, None),
            element=f"/layers/{layer}",
        )
    return adata.layers.stored(layer), f"/layers/{layer}"


def _checked_keys(keys: Sequence[str] | str | None, present: Any, what: str, name: str | None):
    if keys is None:
        return []
    keys = [keys] if isinstance(keys, str) else list(keys)
    missing = [k for k in keys if k not in present]
    if missing:
        raise ElementNotFoundError(
            f"{what} keys {missing} not found (available: {list(present)})",
            source=name,
            element=f"/{what}/{missing[0]}",
        )
    return keys


def open_source(
    data: Any,
    *,
    layer: str | None = None,
    obs_keys: Sequence[str] | str | None = None,
    obsm_keys: Sequence[str] | str | None = None,
    block_size: int | None = None,
    storage_options: dict | None = None,
) -> LoaderSource:
    """Resolve the loader's input (see the module docstring). Reads obs (when opening a
    URL) and sparse ``indptr`` to plan blocks; no rows of X, layers or obsm."""
    if block_size is not None and (not isinstance(block_size, int | np.integer) or block_size < 1):
        raise ValueError(f"block_size must be a positive number of rows, got {block_size!r}")
    adata = _open(data, storage_options)
    stored, element = _stored_matrix(adata, layer)
    name = _source_name(adata, stored)
    planned = _plan_matrix(stored, None if block_size is None else int(block_size), element, name)
    obs_cols = _checked_keys(obs_keys, adata.obs.columns, "obs", name)
    obsm_names = _checked_keys(obsm_keys, adata.obsm.keys(), "obsm", name)
    chunk_of = {}
    if "matrix" in planned:
        starts = np.concatenate([[0], np.cumsum(planned["matrix"].chunks[0])[:-1]])
        chunk_of = {int(s): i for i, s in enumerate(starts.tolist())}
    return LoaderSource(
        element=element,
        source=name,
        obs=adata.obs.loc[:, obs_cols].copy(),
        var=adata.var,
        obsm={k: adata.obsm.stored(k) for k in obsm_names},
        chunk_of=chunk_of,
        **planned,
    )
