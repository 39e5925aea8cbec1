"""Reductions over lazy arrays whose chunks are scipy sparse matrices.

``sum``/``mean``/``min``/``max``/``var``/``std`` work through dask's own API
(``X.sum(axis=0)``) because the chunks are :mod:`annscale.lazy.sparse_chunks` types. This
module adds what dask has no efficient form for: counting nonzeros per row/column without
turning every chunk into a boolean matrix first, and sums/means over the major axis of a
stored sparse matrix (per-gene sums of CSR cells) computed by the read tasks themselves
(:func:`stored_major_sum`), straight from the file where possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp
from dask.highlevelgraph import HighLevelGraph

from .readers import SparseRead

__all__ = ["count_nonzero", "stored_major_sum"]


def _count_chunk(x: Any, axis: Any = None, keepdims: bool = False, computing_meta=False, **_):
    if computing_meta:
        return np.zeros((1,) * x.ndim, dtype=np.intp)
    if not sp.issparse(x):
        return np.count_nonzero(x, axis=axis, keepdims=keepdims).astype(np.intp)
    ax = None if axis is None or len(axis) == 2 else axis[0] % 2
    coo = x.tocoo()
    nz = coo.data != 0  # stored zeros are not nonzeros
    if ax is None:
        out = np.array(np.count_nonzero(nz), dtype=np.intp)
        return out.reshape((1, 1)) if keepdims else out
    idx = coo.col if ax == 0 else coo.row
    out = np.bincount(idx[nz], minlength=x.shape[1 - ax]).astype(np.intp)
    if keepdims:
        out = out.reshape((1, -1) if ax == 0 else (-1, 1))
    return out


def _sum_agg(x, axis=None, keepdims=False, **_):
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.intp)


def count_nonzero(x: Any, axis: int | None = None) -> Any:
    """Number of nonzero values, in total or per row (``axis=1``) / column (``axis=0``).

    Like :func:`numpy.count_nonzero` on the dense equivalent: stored (explicit) zeros are not
    counted; the result is a lazy dask array of dtype ``intp`` (0-d for ``axis=None``) when
    ``x`` is a dask array, and is computed directly for in-memory numpy or scipy inputs.
    """
    if isinstance(x, da.Array):
        return da.reduction(
            x, _count_chunk, _sum_agg, axis=axis, dtype=np.intp, concatenate=True,
            meta=np.empty((0,) * (0 if axis is None else 1), dtype=np.intp),
        )  # fmt: skip
    if sp.issparse(x):
        axes = None if axis is None else (axis,)
        res = _count_chunk(x, axes, keepdims=False)
        return int(res) if axis is None else res
    return np.count_nonzero(x, axis=axis)


@dataclass(frozen=True)
class _MajorSumTask:
    """One block of partial sums: ``read``'s chunk summed over its major axis, shape
    ``(1, n_minor)`` in ``dtype`` (numpy's sum dtype of the values), as ``out_dtype``."""

    read: SparseRead
    dtype: np.dtype
    out_dtype: np.dtype

    def __call__(self) -> np.ndarray:
        return self.read.minor_sums(self.dtype).astype(self.out_dtype)[None, :]


def _sparse_reads(x: da.Array) -> list[SparseRead] | None:
    """The read tasks of a stored sparse array in block order, or None if ``x`` is anything
    else (a derived array, dense, ...)."""
    layer = x.dask.layers.get(x.name)
    if layer is None or len(x.dask.layers) != 1 or min(x.numblocks) != 1:
        return None
    try:
        items = sorted((key[1:], value) for key, value in layer.items())
    except TypeError:
        return None
    reads = []
    for _, value in items:
        task = value[0] if isinstance(value, tuple) and len(value) == 1 else None
        if not isinstance(task, SparseRead):
            return None
        reads.append(task)
    return reads if len(reads) == max(x.numblocks) else None


def stored_major_sum(
    x: da.Array, axis: Any, *, dtype: Any = None, keepdims: bool = False, mean: bool = False
) -> da.Array | None:
    """``x.sum(axis)`` (or ``x.mean(axis)``) of a stored CSR matrix over its rows (``axis=0``;
    CSC: over columns, ``axis=1``), or None when that is not the case (then dask's own
    reduction applies).

    Each read task sums its chunk (:meth:`SparseRead.minor_sums`: uncompressed local data is
    summed straight from the file, no chunk is built), so only ``n_minor`` values per chunk
    leave the task; partial sums are added in float64 (integers: numpy's sum dtype). The
    result has numpy's dtype for the same reduction of the dense equivalent.
    """
    reads = _sparse_reads(x)
    if reads is None or x.ndim != 2 or 0 in x.shape:
        return None
    if isinstance(axis, tuple) and len(axis) == 1:
        axis = axis[0]
    if not isinstance(axis, (int, np.integer)) or isinstance(axis, bool):
        return None
    axis = int(axis) % 2
    fmt = reads[0].format
    if axis != (0 if fmt == "csr" else 1) or any(r.format != fmt for r in reads):
        return None
    n_minor = x.shape[1 - axis]
    values = np.zeros(1, dtype=x.dtype)
    sum_dtype = np.sum(values).dtype
    result_dtype = np.dtype(dtype) if dtype is not None else (
        np.mean(values).dtype if mean else sum_dtype
    )  # fmt: skip
    acc = np.dtype(np.float64) if sum_dtype.kind in "fc" else sum_dtype
    if sum_dtype.kind == "c":
        acc = np.dtype(np.complex128)
    from .graph import digest

    name = f"annscale-majorsum-{digest(x.name, axis, str(acc))}"
    dsk = {(name, i, 0): (_MajorSumTask(r, sum_dtype, acc),) for i, r in enumerate(reads)}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    partial = da.Array(graph, name, ((1,) * len(reads), (n_minor,)), meta=np.empty((0, 0), acc))
    total = partial.sum(axis=0, dtype=acc)
    if mean:
        total = total / x.shape[axis]
    total = total.astype(result_dtype)
    if keepdims:
        total = total.reshape((1, n_minor) if axis == 0 else (n_minor, 1))
    return total
