"""Lazy (dask) concatenation of arrays, with the same result as the in-memory path.

The graph is built by hand: one task per output chunk, each reading only the input chunks
it needs and applying a precomputed reindex map (stored once per input as a graph literal,
not inside every task). Sparse chunks are reindexed as sparse matrices - an outer join never
creates a dense fill block for sparse data. Names are deterministic digests of the input
array names and the maps (hashed with :mod:`hashlib`; nothing large is tokenized), so
building the graph for hundreds of inputs is a plain Python loop over their chunks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.highlevelgraph import HighLevelGraph

from ..core.deferred import is_deferred, materialize
from ..lazy.graph import digest
from .arrays import Missing
from .reindex import (
    Reindex,
    default_fill_value,
    dense_reindexed_dtype,
    plan_gather,
    reindex_dense,
    reindex_sparse,
    sparse_reindexed_dtype,
    uniform_chunks,
)

__all__ = [
    "as_dask",
    "concat_lazy_arrays",
    "is_lazy",
    "lazy_block_diag",
    "reindex_lazy",
    "result_dtype",
]

try:  # chunk types of the lazy engine: scipy CSR/CSC that dask can reduce
    from ..lazy.sparse_chunks import as_chunk as _as_chunk
except ImportError:  # pragma: no cover - the engine ships them
    _as_chunk = None


def is_lazy(x: Any) -> bool:
    """Whether ``x`` is a dask array or a deferred container value."""
    return isinstance(x, da.Array) or is_deferred(x)


def _is_sparse_meta(x: Any) -> bool:
    meta = x._meta if isinstance(x, da.Array) else x
    return sp.issparse(meta)


def as_dask(x: Any) -> da.Array:
    """A dask array for a deferred value, a dask array, or an in-memory array (one chunk)."""
    x = materialize(x)
    if isinstance(x, da.Array):
        return x
    # in-memory inputs mixed into a lazy concat: one chunk, named at random (hashing the
    # data to name it would cost a full pass over it)
    return da.from_array(x, chunks=x.shape, name=False, asarray=False, meta=_empty_like(x))


def _empty_like(x: Any) -> Any:
    if sp.issparse(x):
        return type(x)((0, 0), dtype=x.dtype)
    return np.empty((0,) * x.ndim, dtype=x.dtype)


def _sparse_meta(dtype: np.dtype) -> Any:
    m = sp.csr_matrix((0, 0), dtype=dtype)
    return _as_chunk(m) if _as_chunk is not None else m


def _to_csr(block: Any) -> sp.csr_matrix:
    if isinstance(block, sp.csr_matrix):
        return block
    return sp.csr_matrix(block)


def _finish_sparse(m: Any, dtype: np.dtype) -> Any:
    m = _to_csr(m)
    if m.dtype != dtype:
        m = m.astype(dtype)
    return _as_chunk(m) if _as_chunk is not None else m


# ---------------------------------------------------------------------------- chunk tasks


def _reindex_chunk(
    blocks: list,
    take: np.ndarray | None,
    other: int,
    along: int,
    width: int,
    fill_value: Any,
    dtype: np.dtype,
    sparse_out: bool,
) -> Any:
    """One output chunk: concatenate ``blocks`` along axis ``other``, then gather ``take``.

    ``along`` is the chunk's length on the concatenated axis and ``width`` its length on
    ``other`` (used when no input block contributes).
    """
    if not blocks:
        shape = (along, width) if other == 1 else (width, along)
        if sparse_out:
            if np.isscalar(fill_value) and fill_value == 0:
                return _finish_sparse(sp.csr_matrix(shape, dtype=dtype), dtype)
            return _finish_sparse(sp.csr_matrix(np.full(shape, fill_value, dtype=dtype)), dtype)
        return np.full(shape, fill_value, dtype=dtype)
    if sparse_out:
        blocks = [_to_csr(b) for b in blocks]
        joined = (
            blocks[0]
            if len(blocks) == 1
            else (sp.hstack if other == 1 else sp.vstack)(blocks, format="csr")
        )
        if take is not None:
            plan = Reindex(take, joined.shape[other], False)
            # blocks are computed for this chunk: their buffers may be shared
            joined = reindex_sparse(joined, plan, axis=other, fill_value=fill_value, copy=False)
        return _finish_sparse(joined, dtype)
    blocks = [np.asarray(b) for b in blocks]
    joined = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=other)
    if take is not None:
        plan = Reindex(take, joined.shape[other], False)
        joined = reindex_dense(joined, plan, axis=other, fill_value=fill_value)
    return np.asarray(joined).astype(dtype, copy=False)


def _fill_chunk(shape: tuple[int, int], fill_value: Any, dtype: np.dtype, sparse_out: bool) -> Any:
    """A chunk holding only fill (an element missing from one input, outer join)."""
    if sparse_out:
        if np.isscalar(fill_value) and fill_value == 0:
            return _finish_sparse(sp.csr_matrix(shape, dtype=dtype), dtype)
        # anndata stores a non-zero fill explicitly; it is what was asked for
        return _finish_sparse(sp.csr_matrix(np.full(shape, fill_value, dtype=dtype)), dtype)
    return np.full(shape, fill_value, dtype=dtype)


# ---------------------------------------------------------------------------- planning


def result_dtype(
    arrays: Sequence[Any], plans: Sequence[Reindex], other: int, fill_value: Any, sparse_out: bool
) -> np.dtype:
    """The dtype the in-memory path gives (see :func:`annscale.combine.arrays.concat_arrays`)."""
    dtypes = []
    for x, plan in zip(arrays, plans):
        if isinstance(x, Missing) or x.shape[other] == 0:
            # reindexing a zero-width piece broadcasts the fill (sparse: an empty float matrix)
            if sparse_out and np.isscalar(fill_value) and fill_value == 0:
                dtypes.append(np.dtype(np.float64))
            else:
                dtypes.append(np.asarray(fill_value).dtype)
        elif plan.is_identity_for(x.shape[other]):
            dtypes.append(x.dtype)
        elif sparse_out:
            dtypes.append(sparse_reindexed_dtype(x.dtype, plan, fill_value))
        else:
            dtypes.append(dense_reindexed_dtype(x.dtype, plan, fill_value))
    # numpy's concatenation and scipy's stacking both upcast to the common type
    return np.result_type(*dtypes)


def concat_lazy_arrays(
    arrays: Sequence[Any],
    plans: Sequence[Reindex],
    *,
    axis: int,
    fill_value: Any = None,
    dtype: Any = None,
    sparse: bool | None = None,
) -> da.Array:
    """Lazily concatenate ``arrays`` along ``axis`` after aligning axis ``1 - axis`` by ``plans``.

    ``arrays`` may be dask arrays, deferred values, in-memory arrays or :class:`Missing`
    (filled). The result has CSR chunks when any input is sparse (dense chunks converted per
    chunk), else dense chunks. Reading happens only when the result is computed. ``dtype``
    and ``sparse`` override what the inputs imply (a subset of a concatenation keeps the
    dtype and sparsity of the whole).
    """
    other = 1 - axis
    arrays = [x if isinstance(x, Missing) else as_dask(x) for x in arrays]
    present = [x for x in arrays if not isinstance(x, Missing)]
    sparse_out = any(_is_sparse_meta(x) for x in present) if sparse is None else sparse
    if fill_value is None:
        fill_value = default_fill_value(sparse_out)
    if dtype is None:
        dtype = result_dtype(arrays, plans, other, fill_value, sparse_out)
    dtype = np.dtype(dtype)
    new_len = len(plans[0].take)

    # chunking of the result along the reindexed axis
    identity = all(
        not isinstance(x, Missing) and p.is_identity_for(x.shape[other])
        for x, p in zip(arrays, plans)
    )
    other_chunks_in = {x.chunks[other] for x in present}
    if identity and len(other_chunks_in) == 1:
        out_other = next(iter(other_chunks_in))
    elif sparse_out and other == 1:
        out_other = (new_len,)  # CSR rows stay whole
    else:
        size = max((max(x.chunks[other], default=0) for x in present), default=new_len)
        out_other = uniform_chunks(new_len, size)
    along_size = max((max(x.chunks[axis], default=0) for x in present), default=1)

    token = digest(
        "concat",
        axis,
        repr(fill_value),
        str(dtype),
        sparse_out,
        [x.length if isinstance(x, Missing) else x.name for x in arrays],
        [p.take for p in plans],
    )
    name = f"annscale-concat-{token}"
    map_name = f"annscale-concat-map-{token}"
    dsk: dict = {}
    out_along: list[int] = []
    for i, (x, plan) in enumerate(zip(arrays, plans)):
        if isinstance(x, Missing):
            for n in uniform_chunks(x.length, along_size):
                if n == 0 and x.length != 0:
                    continue
                pos = len(out_along)
                out_along.append(n)
                for k, w in enumerate(out_other):
                    shape = (n, w) if axis == 0 else (w, n)
                    key = (name, pos, k) if axis == 0 else (name, k, pos)
                    dsk[key] = (_fill_chunk, shape, fill_value, dtype, sparse_out)
            continue
        if x.shape[other] == 0:
            steps = [None] * len(out_other)
        else:
            steps = plan_gather(
                plan.take if not plan.is_identity_for(x.shape[other]) else np.arange(new_len),
                x.chunks[other],
                out_other,
            )
        for k, step in enumerate(steps):
            if step is not None and step.take is not None:
                dsk[(map_name, i, k)] = step.take
        for r, n in enumerate(x.chunks[axis]):
            pos = len(out_along)
            out_along.append(n)
            for k, w in enumerate(out_other):
                step = steps[k]
                key = (name, pos, k) if axis == 0 else (name, k, pos)
                if step is None:
                    dsk[key] = (
                        _fill_chunk,
                        (n, w) if axis == 0 else (w, n),
                        fill_value,
                        dtype,
                        sparse_out,
                    )
                    continue
                blocks = [(x.name, r, b) if axis == 0 else (x.name, b, r) for b in step.blocks]
                take = (map_name, i, k) if step.take is not None else None
                dsk[key] = (
                    _reindex_chunk,
                    blocks,
                    take,
                    other,
                    n,
                    w,
                    fill_value,
                    dtype,
                    sparse_out,
                )
    chunks = (tuple(out_along), out_other) if axis == 0 else (out_other, tuple(out_along))
    if not out_along:
        chunks = ((0,), out_other) if axis == 0 else (out_other, (0,))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=present)
    meta = _sparse_meta(dtype) if sparse_out else np.empty((0, 0), dtype=dtype)
    return da.Array(graph, name, chunks, meta=meta)


def reindex_lazy(x: Any, plan: Reindex, *, axis: int, fill_value: Any = None) -> da.Array:
    """Lazily reindex axis ``axis`` of ``x`` by ``plan`` (a one-input concatenation)."""
    return concat_lazy_arrays([x], [plan], axis=1 - axis, fill_value=fill_value)


def _shift_chunk(block: Any, offset: int, width: int, dtype: np.dtype) -> Any:
    """A row chunk of a block-diagonal matrix: ``block``'s columns moved right by ``offset``."""
    m = _to_csr(block)
    shifted = sp.csr_matrix(
        (m.data, m.indices.astype(np.int64) + offset, m.indptr), shape=(m.shape[0], width)
    )
    return _finish_sparse(shifted, dtype)


def lazy_block_diag(mats: Sequence[Any], sizes: Sequence[int]) -> da.Array:
    """Block-diagonal CSR-chunked dask array of square ``mats`` (None: an all-zero block).

    Row chunks follow the inputs' row chunks; each spans the full width (one column chunk),
    so the graph grows with the number of chunks, not its square.
    """
    arrays = [None if m is None else as_dask(m) for m in mats]
    present = [x for x in arrays if x is not None]
    dtype = np.result_type(
        *[x.dtype for x in present], *([np.bool_] if any(x is None for x in arrays) else [])
    )
    width = int(sum(sizes))
    token = digest("block_diag", [x.name if x is not None else n for x, n in zip(arrays, sizes)])
    name = f"annscale-concat-pairwise-{token}"
    dsk: dict = {}
    rows: list[int] = []
    offset = 0
    for x, n in zip(arrays, sizes):
        if x is None:
            dsk[(name, len(rows), 0)] = (_fill_chunk, (n, width), 0, dtype, True)
            rows.append(n)
        else:
            if len(x.chunks[1]) > 1:
                x = x.rechunk({1: -1})
                present.append(x)
            for r, h in enumerate(x.chunks[0]):
                dsk[(name, len(rows), 0)] = (_shift_chunk, (x.name, r, 0), offset, width, dtype)
                rows.append(h)
        offset += n
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=present)
    return da.Array(graph, name, (tuple(rows), (width,)), meta=_sparse_meta(dtype))
