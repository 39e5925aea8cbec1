"""Reductions over lazy arrays whose chunks are scipy sparse matrices.

``sum``/``mean``/``min``/``max``/``var``/``std`` work through dask's own API
(``X.sum(axis=0)``) because the chunks are :mod:`annscale.lazy.sparse_chunks` types. This
module adds what dask has no efficient form for: counting nonzeros per row/column without
turning every chunk into a boolean matrix first.
"""

from __future__ import annotations

from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp

__all__ = ["count_nonzero"]


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
