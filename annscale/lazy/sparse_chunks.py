"""The chunk type of lazy sparse arrays: scipy CSR/CSC matrices that dask can reduce.

dask's reductions call ``np.sum(chunk, axis=(0,), dtype=..., keepdims=True)`` (and
``np.min``/``np.max`` likewise); numpy forwards those keywords to the chunk's own ``sum``
method, which in scipy does not accept ``keepdims``/``out``. :class:`CSRChunk` and
:class:`CSCChunk` are ``csr_matrix``/``csc_matrix`` subclasses that:

* behave exactly like scipy's matrices when called the scipy way (``m.sum(axis=0)`` still
  returns a ``numpy.matrix``);
* follow numpy's reduction protocol when called with ``keepdims`` or ``out`` or a tuple
  ``axis`` (what numpy and dask pass): they return dense ``numpy.ndarray`` results with the
  dtype and shape numpy gives for the dense equivalent;
* report ``size`` as numpy does (elements of the dense equivalent, not stored values);
* support the ``A - mean`` step of dask's ``var``/``std`` without densifying the chunk: the
  difference with a dense ``keepdims`` array is a :class:`Deviation` whose powers are summed
  exactly (stored entries plus a count of implicit zeros).

Conversions (``.T``, ``tocsc()``, arithmetic, indexing) keep the chunk types, so derived
dask arrays stay reducible. :func:`as_plain` turns a chunk back into an ordinary scipy matrix
(``to_memory`` does this).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["CSRChunk", "CSCChunk", "Deviation", "as_chunk", "as_plain", "is_sparse_chunk"]

_NOVALUE = object()


def _reduced_axis(axis: Any) -> int | tuple[()] | None:
    """Normalise a numpy ``axis`` argument for a 2-d array: None (all), 0, 1 or () (none)."""
    if axis is None:
        return None
    if isinstance(axis, tuple):
        axes = sorted({int(a) % 2 for a in axis})
        if len(axes) == 2:
            return None
        if not axes:
            return ()
        return axes[0]
    return int(axis) % 2


def _shape_out(shape: tuple[int, int], axis: int | None, keepdims: bool) -> tuple[int, ...]:
    if axis is None:
        return (1, 1) if keepdims else ()
    if keepdims:
        return (1, shape[1]) if axis == 0 else (shape[0], 1)
    return (shape[1],) if axis == 0 else (shape[0],)


def _finish(value: Any, shape: tuple[int, ...], dtype: np.dtype, out: Any) -> Any:
    arr = np.asarray(value).astype(dtype, copy=False).reshape(shape)
    if out is not None:
        out[...] = arr
        return out
    if shape == ():
        return arr[()]  # numpy scalar, as numpy returns for a full reduction
    return arr


def _sum_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype ``numpy.sum`` gives for ``dtype`` (small ints widen to the default int)."""
    return np.sum(np.zeros(1, dtype=dtype)).dtype


def _mean_dtype(dtype: np.dtype) -> np.dtype:
    return np.mean(np.zeros(1, dtype=dtype)).dtype


class _ChunkMixin:
    """numpy-protocol reductions shared by :class:`CSRChunk` and :class:`CSCChunk`."""

    def _numpy_protocol(self, axis: Any, keepdims: Any, out: Any) -> bool:
        return keepdims is not _NOVALUE or out is not None or isinstance(axis, tuple)

    @property
    def size(self) -> int:
        """Number of elements of the dense equivalent (numpy's meaning; ``nnz`` counts stored
        values). dask skips chunks whose ``size`` is 0 in ``min``/``max``, so an all-zero
        chunk must not look empty."""
        return int(self.shape[0]) * int(self.shape[1])

    # -- containers: keep our types through scipy's conversions
    @property
    def _csr_container(self):
        return CSRChunk

    @property
    def _csc_container(self):
        return CSCChunk

    def _scipy_reduce(self, name: str, axis: int | None, **kw: Any) -> Any:
        base = sp.csr_matrix if self.format == "csr" else sp.csc_matrix
        res = getattr(base, name)(self, axis=axis, **kw)
        if sp.issparse(res):
            res = res.toarray()
        return res

    def sum(self, axis=None, dtype=None, out=None, keepdims=_NOVALUE):
        if not self._numpy_protocol(axis, keepdims, out):
            return super().sum(axis=axis, dtype=dtype)
        ax = _reduced_axis(axis)
        if ax == ():
            return _finish(self.toarray(), self.shape, np.dtype(dtype or self.dtype), out)
        res_dtype = np.dtype(dtype) if dtype is not None else _sum_dtype(self.dtype)
        value = self._scipy_reduce("sum", ax, dtype=res_dtype)
        return _finish(value, _shape_out(self.shape, ax, keepdims is True), res_dtype, out)

    def mean(self, axis=None, dtype=None, out=None, keepdims=_NOVALUE):
        if not self._numpy_protocol(axis, keepdims, out):
            return super().mean(axis=axis, dtype=dtype)
        ax = _reduced_axis(axis)
        res_dtype = np.dtype(dtype) if dtype is not None else _mean_dtype(self.dtype)
        if ax == ():
            return _finish(self.toarray(), self.shape, res_dtype, out)
        n = self.shape[0] * self.shape[1] if ax is None else self.shape[ax]
        acc = np.result_type(res_dtype, np.float32) if res_dtype.kind == "f" else res_dtype
        total = np.asarray(self._scipy_reduce("sum", ax, dtype=acc))
        with np.errstate(divide="ignore", invalid="ignore"):
            value = total / n if n else np.full(total.shape, np.nan)
        return _finish(value, _shape_out(self.shape, ax, keepdims is True), res_dtype, out)

    def _minmax(self, name, axis, out, keepdims):
        if not self._numpy_protocol(axis, keepdims, out):
            return getattr(super(), name)(axis=axis)
        ax = _reduced_axis(axis)
        if ax == ():
            return _finish(self.toarray(), self.shape, self.dtype, out)
        size = self.shape[0] * self.shape[1] if ax is None else self.shape[ax]
        if size == 0:
            raise ValueError(
                f"zero-size array to reduction operation {name}imum which has no identity"
            )
        ufunc = np.minimum if name == "min" else np.maximum
        value = _compressed_minmax(self, ufunc, ax)
        return _finish(value, _shape_out(self.shape, ax, keepdims is True), self.dtype, out)

    def min(self, axis=None, out=None, keepdims=_NOVALUE, **kwargs):
        if kwargs:  # scipy's own keyword (explicit)
            return super().min(axis=axis, out=out, **kwargs)
        return self._minmax("min", axis, out, keepdims)

    def max(self, axis=None, out=None, keepdims=_NOVALUE, **kwargs):
        if kwargs:
            return super().max(axis=axis, out=out, **kwargs)
        return self._minmax("max", axis, out, keepdims)

    def __sub__(self, other):
        # dask's var/std compute ``A - mean`` with ``mean`` a dense keepdims ndarray; keep it
        # sparse (see Deviation). Everything else is scipy's subtraction.
        if type(other) is np.ndarray and other.ndim == 2 and _keepdims_like(other.shape, self):
            return Deviation(self, other, 1)
        return super().__sub__(other)


def _keepdims_like(shape: tuple[int, ...], m: sp.spmatrix) -> bool:
    return shape in ((1, 1), (1, m.shape[1]), (m.shape[0], 1))


def _compressed_minmax(m: sp.spmatrix, ufunc: np.ufunc, axis: int | None) -> np.ndarray:
    """min/max of the dense equivalent of ``m`` (implicit zeros included, NaN propagates)."""
    zero = np.zeros((), dtype=m.dtype)
    if axis is None:
        if m.nnz == 0:
            return zero
        value = ufunc.reduce(m.data)
        return ufunc(value, zero) if m.nnz < m.shape[0] * m.shape[1] else value
    # reduce along the compressed (minor) axis of a matrix whose major axis is kept
    keep_rows = axis == 1
    mat = m.tocsr() if keep_rows else m.tocsc()
    n_minor = m.shape[1] if keep_rows else m.shape[0]
    counts = np.diff(mat.indptr)
    out = np.zeros(len(counts), dtype=m.dtype)
    nonempty = counts > 0
    if mat.nnz:
        red = ufunc.reduceat(mat.data[: mat.indptr[-1]], mat.indptr[:-1][nonempty])
        out[nonempty] = np.where(counts[nonempty] < n_minor, ufunc(red, zero), red)
    return out


class CSRChunk(_ChunkMixin, sp.csr_matrix):
    """A ``scipy.sparse.csr_matrix`` whose reductions also follow numpy's protocol."""


class CSCChunk(_ChunkMixin, sp.csc_matrix):
    """A ``scipy.sparse.csc_matrix`` whose reductions also follow numpy's protocol."""


class Deviation:
    """``(A - u) ** power`` for a sparse chunk ``A`` and a dense keepdims array ``u``.

    Only what dask's moment reductions need: ``**``, ``abs``-free real arithmetic, and
    ``sum(axis, dtype, keepdims)`` computed exactly from the stored entries plus the number
    of implicit zeros (each contributing ``(-u) ** power``). ``numpy.asarray`` gives the dense
    result.
    """

    def __init__(self, a: sp.spmatrix, u: np.ndarray, power: int):
        self.a, self.u, self.power = a, u, power
        self.shape = a.shape
        self.ndim = 2
        self.dtype = np.result_type(a.dtype, u.dtype)

    def __pow__(self, k: int) -> Deviation:
        return Deviation(self.a, self.u, self.power * int(k))

    def __array__(self, dtype=None, copy=None):
        dense = (self.a.toarray() - self.u) ** self.power
        return dense if dtype is None else dense.astype(dtype)

    def _constant_along(self, ax: int | None) -> bool:
        u = self.u.shape
        if ax is None:
            return u == (1, 1)
        return u[ax] == 1

    def sum(self, axis=None, dtype=None, out=None, keepdims=False):
        ax = _reduced_axis(axis)
        if ax == () or not self._constant_along(ax):
            return _finish(np.asarray(self), self.shape, np.dtype(dtype or self.dtype), out)
        res_dtype = np.dtype(dtype) if dtype is not None else _sum_dtype(self.dtype)
        coo = self.a.tocoo()
        u = np.broadcast_to(self.u, self.shape)
        vals = (coo.data.astype(res_dtype) - u[coo.row, coo.col].astype(res_dtype)) ** self.power
        m, n = self.shape
        if ax is None:
            zeros = m * n - coo.nnz
            total = vals.sum(dtype=res_dtype)
            total = total + zeros * (-self.u.reshape(()).astype(res_dtype)) ** self.power
        else:
            groups, length, other = (coo.col, n, m) if ax == 0 else (coo.row, m, n)
            nnz = np.bincount(groups, minlength=length)
            total = np.zeros(length, dtype=res_dtype)
            np.add.at(total, groups, vals)
            ubar = self.u.reshape(-1).astype(res_dtype)
            ubar = np.broadcast_to(ubar, (length,))
            total = total + (other - nnz) * (-ubar) ** self.power
        return _finish(total, _shape_out(self.shape, ax, bool(keepdims)), res_dtype, out)


def is_sparse_chunk(x: Any) -> bool:
    return isinstance(x, (CSRChunk, CSCChunk))


def as_chunk(m: Any) -> CSRChunk | CSCChunk:
    """Wrap a scipy CSR/CSC matrix or array as a chunk without copying its buffers."""
    if isinstance(m, (CSRChunk, CSCChunk)):
        return m
    fmt = m.format
    cls = CSRChunk if fmt == "csr" else CSCChunk if fmt == "csc" else None
    if cls is None:
        m = sp.csr_matrix(m)
        cls = CSRChunk
    return cls((m.data, m.indices, m.indptr), shape=m.shape, copy=False)


def as_plain(m: Any) -> Any:
    """An ordinary ``csr_matrix``/``csc_matrix`` sharing the buffers of chunk ``m``."""
    if isinstance(m, CSRChunk):
        return sp.csr_matrix((m.data, m.indices, m.indptr), shape=m.shape, copy=False)
    if isinstance(m, CSCChunk):
        return sp.csc_matrix((m.data, m.indices, m.indptr), shape=m.shape, copy=False)
    return m


def _register_to_memory() -> None:
    from ..core.arrays import to_memory

    to_memory.register(CSRChunk)(as_plain)
    to_memory.register(CSCChunk)(as_plain)


def _register_dask() -> None:
    from dask.array.dispatch import concatenate_lookup, take_lookup, tensordot_lookup

    def concatenate(blocks, axis=0):
        if axis not in (0, 1):
            raise ValueError(f"sparse chunks concatenate along axis 0 or 1, not {axis}")
        if len(blocks) == 1:  # dask joins each row of blocks first, often of one block
            return as_chunk(blocks[0])
        stacked = sp.vstack(blocks) if axis == 0 else sp.hstack(blocks)
        fmt = blocks[0].format
        return as_chunk(stacked.asformat(fmt))

    for cls in (CSRChunk, CSCChunk):
        concatenate_lookup.register(cls, concatenate)
    # make sure dask's own scipy registrations (tensordot, take) are loaded for our subclasses
    tensordot_lookup.dispatch(sp.csr_matrix)
    take_lookup.dispatch(sp.csr_matrix)


_register_dask()
_register_to_memory()
