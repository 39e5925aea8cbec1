"""A deferred concatenation: what a lazy ``concat`` stores in ``X``, ``layers`` and ``obsm``.

A :class:`ConcatSource` is a small value - the inputs (deferred stored arrays, dask or
in-memory arrays, or :class:`~annscale.combine.arrays.Missing` for an element an input lacks),
one :class:`~annscale.combine.reindex.Reindex` per input for the other axis, the result's
dtype, sparsity and fill value - that the container treats as a deferred array
(:mod:`annscale.core.deferred`). Nothing is read to create or subset it.

Subsetting pushes the selection down to the inputs: along the concatenated axis it keeps
only the inputs that contribute positions (each subset to its own positions, so a stored
input reads only those rows), along the other axis it narrows the reindex maps and the
inputs' columns. ``collection[collection.obs["cell_type"] == "NK"].X`` therefore never
touches a file without NK cells. The dtype and sparsity are fixed when the concatenation is
made, so a subset has the dtype of the full result (as ``anndata.concat(...)[idx]`` does).

:meth:`ConcatSource.materialize` materialises the inputs (stored sparse inputs read their
``indptr`` span here; in parallel threads) and builds the dask graph with
:func:`annscale.combine.lazy.concat_lazy_arrays`.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any

import dask.array as da
import numpy as np
import scipy.sparse as sp

from ..core.arrays import to_memory
from ..core.deferred import is_deferred, materialize
from ..core.index import Indexer, as_positions, is_full, subset_array
from .arrays import Missing
from .lazy import concat_lazy_arrays, result_dtype
from .reindex import Reindex, default_fill_value

__all__ = ["ConcatSource", "concat_deferred"]

#: threads materialising remote inputs at once (stored sparse inputs read ``indptr``: I/O bound)
MATERIALIZE_THREADS = 8


def is_sparse_like(x: Any) -> bool:
    """Whether ``x`` (array, dask array or deferred value) holds sparse data, without I/O."""
    if isinstance(x, ConcatSource):
        return x.sparse
    if isinstance(x, da.Array):
        return sp.issparse(x._meta)
    if is_deferred(x):
        fmt = getattr(x, "format", None)
        if isinstance(fmt, str):
            return fmt in ("csr", "csc")
        return is_sparse_like(materialize(x))
    return sp.issparse(x)


def _length(x: Any, axis: int) -> int:
    return x.length if isinstance(x, Missing) else int(x.shape[axis])


def _select(x: Any, axis: int, positions: np.ndarray) -> Any:
    """``x`` restricted to ``positions`` along ``axis`` (pushdown for deferred inputs)."""
    if isinstance(x, Missing):
        return Missing(len(positions))
    n = _length(x, axis)
    if len(positions) == n and bool((positions == np.arange(n)).all()):
        return x
    if len(positions) and bool((np.diff(positions) == 1).all()):
        idx: Indexer = slice(int(positions[0]), int(positions[-1]) + 1)
    else:
        idx = positions
    whole = slice(0, int(x.shape[1 - axis]))
    return subset_array(x, idx, whole) if axis == 0 else subset_array(x, whole, idx)


@dataclass(frozen=True, eq=False)
class ConcatSource:
    """``parts`` concatenated along ``axis`` after aligning axis ``1 - axis`` by ``plans``.

    ``order`` (optional) reorders the concatenated axis: position ``j`` of the result is
    position ``order[j]`` of the parts' concatenation (set by subsetting with an index that
    interleaves inputs).
    """

    parts: tuple[Any, ...]
    plans: tuple[Reindex, ...]
    axis: int
    fill_value: Any
    dtype: np.dtype
    sparse: bool
    order: np.ndarray | None = None

    __annscale_deferred__ = True

    @property
    def shape(self) -> tuple[int, int]:
        along = (
            len(self.order)
            if self.order is not None
            else sum(_length(p, self.axis) for p in self.parts)
        )
        other = self.plans[0].new_len
        return (along, other) if self.axis == 0 else (other, along)

    @property
    def ndim(self) -> int:
        return 2

    def materialize(self) -> da.Array:
        """The dask array; materialises the inputs (in threads) but reads no data chunk."""
        parts = _materialize_all(self.parts)
        x = concat_lazy_arrays(
            parts,
            self.plans,
            axis=self.axis,
            fill_value=self.fill_value,
            dtype=self.dtype,
            sparse=self.sparse,
        )
        if self.order is not None:
            x = x[self.order] if self.axis == 0 else x[:, self.order]
        return x

    # ------------------------------------------------------------------ subsetting

    def subset(self, rows: Indexer, cols: Indexer) -> ConcatSource:
        """``self[rows, cols]`` (normalised indexers) as a new source. No I/O."""
        along, other = (rows, cols) if self.axis == 0 else (cols, rows)
        out = self
        n_along, n_other = self.shape if self.axis == 0 else (self.shape[1], self.shape[0])
        if not is_full(other, n_other):
            out = out._subset_other(as_positions(other, n_other))
        if not is_full(along, n_along):
            out = out._subset_along(as_positions(along, n_along))
        return out

    def _subset_along(self, pos: np.ndarray) -> ConcatSource:
        if self.order is not None:
            pos = self.order[pos]
        lengths = [_length(p, self.axis) for p in self.parts]
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        which = np.searchsorted(offsets, pos, side="right") - 1
        order = None
        if len(which) > 1 and bool((np.diff(which) < 0).any()):
            perm = np.argsort(which, kind="stable")
            pos, which = pos[perm], which[perm]
            order = np.empty_like(perm)
            order[perm] = np.arange(len(perm))
        if len(pos) == 0:  # keep one (emptied) input for the dtype and the other axis
            keep, bounds = np.array([0]), np.array([0, 0])
        else:
            keep = np.unique(which)
            bounds = np.searchsorted(which, np.append(keep, keep[-1] + 1), side="left")
        parts, plans = [], []
        for j, i in enumerate(keep.tolist()):
            local = pos[bounds[j] : bounds[j + 1]] - offsets[i]
            parts.append(_select(self.parts[i], self.axis, local))
            plans.append(self.plans[i])
        return replace(self, parts=tuple(parts), plans=tuple(plans), order=order)

    def _subset_other(self, pos: np.ndarray) -> ConcatSource:
        other = 1 - self.axis
        parts, plans = [], []
        for part, plan in zip(self.parts, self.plans):
            take = plan.take[pos]
            old_len = plan.old_len
            if not isinstance(part, Missing):
                used = np.unique(take[take >= 0])
                if len(used) < old_len:
                    part = _select(part, other, used)
                    take = np.where(take >= 0, np.searchsorted(used, take), -1)
                    old_len = len(used)
            same = len(take) == old_len and bool((take == np.arange(old_len)).all())
            parts.append(part)
            plans.append(Reindex(np.asarray(take, dtype=np.intp), old_len, same))
        return replace(self, parts=tuple(parts), plans=tuple(plans))

    def __repr__(self) -> str:
        kind = "sparse" if self.sparse else "dense"
        return (
            f"<ConcatSource of {len(self.parts)} inputs along axis {self.axis}: "
            f"shape {self.shape}, {self.dtype}, {kind}>"
        )


def _materialize_all(parts: Sequence[Any]) -> list[Any]:
    """``parts`` with deferred values materialised, several at a time."""
    out = list(parts)
    deferred = [i for i, p in enumerate(parts) if is_deferred(p)]
    if len(deferred) <= 1:
        return [materialize(p) for p in parts]
    whole = len(deferred) >= WHOLE_INPUTS_FROM

    def one(i: int) -> Any:
        return materialize(_whole_if_small(parts[i]) if whole else parts[i])

    if all(_is_local(parts[i]) for i in deferred):
        # local files: h5py serialises the indptr reads anyway (and whole inputs read
        # none), so threads would only add their start-up
        for i in deferred:
            out[i] = one(i)
        return out
    with ThreadPoolExecutor(min(MATERIALIZE_THREADS, len(deferred))) as pool:
        for i, value in zip(deferred, pool.map(one, deferred)):
            out[i] = value
    return out


def _is_local(part: Any) -> bool:
    location = getattr(part, "location", None)
    return location is not None and location.is_local


WHOLE_INPUTS_FROM = 8
"""From this many inputs, a stored sparse input of at most ``settings.chunk_target_bytes`` is
one chunk: the inputs give the parallelism, and splitting each of them (what a lone input
gets, so that its chunks keep every thread busy) only multiplies tasks."""


def _whole_if_small(part: Any) -> Any:
    """A whole stored sparse input (no selection, default chunking) that holds at most
    ``settings.chunk_target_bytes`` of stored data, as one chunk; anything else unchanged.
    Reads metadata only (the length of ``data``)."""
    from .._settings import settings
    from ..lazy.sources import SparseSource
    from ..storage.cache import get_root

    if not isinstance(part, SparseSource) or part.chunks is not None:
        return part
    if part.rows is not None or part.cols is not None:
        return part
    nnz = part.stored_nnz
    if nnz is None:
        try:
            nnz = int(get_root(part.location)[part.element.lstrip("/")]["data"].shape[0])
        except Exception:  # unreadable metadata: materialising will report it
            return part
    if nnz * part.bytes_per_nnz > settings.chunk_target_bytes:
        return part
    n_major = part.stored_shape[0 if part.format == "csr" else 1]
    chunks = (max(1, n_major), -1) if part.format == "csr" else (-1, max(1, n_major))
    return replace(part, chunks=chunks)


def concat_deferred(
    arrays: Sequence[Any],
    plans: Sequence[Reindex],
    *,
    axis: int,
    fill_value: Any = None,
) -> ConcatSource:
    """A :class:`ConcatSource` with the dtype, sparsity and fill the in-memory path gives.

    Same arguments as :func:`annscale.combine.lazy.concat_lazy_arrays`; reads nothing.
    """
    present = [x for x in arrays if not isinstance(x, Missing)]
    sparse = any(is_sparse_like(x) for x in present)
    if fill_value is None:
        fill_value = default_fill_value(sparse)
    dtype = result_dtype(arrays, plans, 1 - axis, fill_value, sparse)
    return ConcatSource(tuple(arrays), tuple(plans), axis, fill_value, np.dtype(dtype), sparse)


# ---------------------------------------------------------------------------- container hooks


@subset_array.register(ConcatSource)
def _subset_concat(x: ConcatSource, rows: Indexer, cols: Indexer) -> ConcatSource:
    return x.subset(rows, cols)


@to_memory.register(ConcatSource)
def _concat_to_memory(x: ConcatSource) -> Any:
    return to_memory(x.materialize())
