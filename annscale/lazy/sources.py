"""Deferred stored arrays: what ``read_lazy`` puts in X, layers, obsm, obsp, raw.X.

A source is a small value — location, element path, stored shape and dtype, and a row and a
column selection — that the container treats as a deferred array (``__annscale_deferred__``):
it validates ``.shape`` and calls :meth:`materialize` on first access. Creating or subsetting a
source reads nothing; views of views compose selections without I/O, so
``adata[rows][:, cols].X`` pushes the selection down to storage. :meth:`materialize` reads the
part of ``indptr`` it needs (sparse) or only metadata (dense) and returns a dask array whose
tasks read exactly the selected stored ranges (see :mod:`annscale.lazy.readers`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import dask.array as da
import numpy as np
from dask.system import CPU_COUNT

from .._settings import settings
from ..core.arrays import to_memory
from ..core.index import subset_array
from ..scheduler import compute_one
from ..storage.cache import get_root
from ..storage.location import Location
from .graph import array_from_block_tasks, array_from_tasks, digest
from .planning import RowGroup, balance_by_nnz, dense_chunks, plan_row_groups
from .readers import DenseRead, Selection, SparseRead, raw_readable, read_indptr
from .sparse_chunks import CSCChunk, CSRChunk, as_plain

__all__ = ["SparseSource", "DenseSource", "compose", "selection_length"]

#: merge two selected stored ranges into one range read (the unselected rows between them
#: are read and dropped) when at most this many bytes lie between them: for stores where a
#: request costs milliseconds (object stores, block-cached remote h5ad), zarr (a range read
#: decodes whole storage chunks) and compressed HDF5. Uncompressed sparse components of
#: local ``.h5ad`` files are read directly (:mod:`annscale.lazy.h5raw`) at microseconds per
#: range: there, copying the rows between two ranges costs more than a read, and dropping
#: them costs a copy of the chunk, so ranges are not merged at all
MERGE_GAP_BYTES = 1 << 20
#: selections larger than this are split into at least ``2 x threads`` chunks so every
#: thread has work. Smaller ones stay whole: reading scattered rows is mostly Python issuing
#: reads (one thread at a time), and joining the chunks afterwards copies the result, so
#: splitting e.g. 10,000 rows (30 MiB) measured slower on 2 cores
SPLIT_MIN_BYTES = 64 << 20
#: chunk size when a selection along the minor axis is applied to every chunk read (CSR
#: columns): the result is much smaller than what is read, so small chunks bound memory
STREAM_TARGET_BYTES = 16 << 20


def merge_gap_bytes(location: Location, element: str) -> int:
    """The largest gap in bytes between selected ranges of the sparse group ``element``
    merged into one range read: :data:`MERGE_GAP_BYTES`, or 0 when the group's ``data`` and
    ``indices`` are read directly from a local file. Reads metadata only."""
    if location.is_local:
        root = get_root(location)
        if root.store_format == "h5ad":
            group = root[element.lstrip("/") or "/"]
            if raw_readable(group["data"]) and raw_readable(group["indices"]):
                return 0
    return MERGE_GAP_BYTES


def parallel_target(total_bytes: int, target_bytes: int) -> int:
    """Chunk size in bytes for a selection of ``total_bytes``: ``target_bytes``, lowered so a
    selection over :data:`SPLIT_MIN_BYTES` gives at least two chunks per local thread."""
    if total_bytes <= SPLIT_MIN_BYTES:
        return target_bytes
    want = 2 * max(1, CPU_COUNT)
    return max(1, min(target_bytes, -(-total_bytes // want)))


def selection_length(sel: Selection, n: int) -> int:
    if sel is None:
        return n
    if isinstance(sel, slice):
        return len(range(*sel.indices(n)))
    return len(sel)


def _normalise(sel: Selection, n: int) -> Selection:
    """None (everything), a step-1 slice with int bounds, or an int64 array."""
    if sel is None:
        return None
    if isinstance(sel, slice):
        start, stop, step = sel.indices(n)
        if step == 1:
            stop = max(start, stop)
            return None if (start, stop) == (0, n) else slice(start, stop)
        return np.arange(start, stop, step, dtype=np.int64)
    arr = np.asarray(sel)
    if arr.dtype == bool:
        return np.flatnonzero(arr).astype(np.int64)
    arr = arr.astype(np.int64, copy=False).ravel()
    if arr.size and (arr.min() < -n or arr.max() >= n):
        raise IndexError(f"index out of range for axis of length {n}")
    return np.where(arr < 0, arr + n, arr)


def compose(outer: Selection, inner: Selection, n_stored: int) -> Selection:
    """The stored positions selected by ``inner`` applied after ``outer`` (no I/O)."""
    outer = _normalise(outer, n_stored)
    n_outer = selection_length(outer, n_stored)
    inner = _normalise(inner, n_outer)
    if inner is None:
        return outer
    if outer is None:
        return inner
    if isinstance(outer, slice):
        if isinstance(inner, slice):
            return _normalise(slice(outer.start + inner.start, outer.start + inner.stop), n_stored)
        return inner + outer.start
    return outer[inner]


def _to_array(sel: Selection, n: int) -> np.ndarray:
    if sel is None:
        return np.arange(n, dtype=np.int64)
    if isinstance(sel, slice):
        return np.arange(*sel.indices(n), dtype=np.int64)
    return sel


def _rows_per_chunk(chunks: Any, axis: int) -> int | None:
    """Rows per chunk along ``axis`` from a user ``chunks=`` (int or anndata-style tuple)."""
    if chunks is None:
        return None
    if isinstance(chunks, int):
        return chunks if chunks > 0 else None
    c = tuple(chunks)[axis] if len(tuple(chunks)) > axis else None
    return c if isinstance(c, int) and c > 0 else None


@dataclass(frozen=True, eq=False)
class _Source:
    location: Location
    element: str
    stored_shape: tuple[int, ...]
    dtype: np.dtype
    rows: Selection = None
    cols: Selection = None
    chunks: Any = None

    __annscale_deferred__ = True

    @property
    def shape(self) -> tuple[int, ...]:
        out = list(self.stored_shape)
        out[0] = selection_length(self.rows, self.stored_shape[0])
        if len(out) > 1:
            out[1] = selection_length(self.cols, self.stored_shape[1])
        return tuple(out)

    @property
    def ndim(self) -> int:
        return len(self.stored_shape)

    def subset(self, rows: Selection, cols: Selection = None) -> _Source:
        """A source for ``self[rows, cols]`` (positions relative to this source). No I/O."""
        new_rows = compose(self.rows, rows, self.stored_shape[0])
        new_cols = self.cols
        if self.ndim > 1:
            new_cols = compose(self.cols, cols, self.stored_shape[1])
        return replace(self, rows=new_rows, cols=new_cols)

    def _token(self) -> str:
        return digest(
            self.location.token, self.element, self.stored_shape, str(self.dtype),
            self.rows, self.cols, self.chunks, settings.chunk_target_bytes,
        )  # fmt: skip

    def materialize(self) -> da.Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.element!r} in {self.location.url!r}: "
            f"shape {self.shape}, {self.dtype}>"
        )


@dataclass(frozen=True, eq=False)
class SparseSource(_Source):
    """A stored ``csr_matrix``/``csc_matrix`` group, possibly subset.

    ``format`` is ``"csr"`` or ``"csc"``; ``bytes_per_nnz`` the stored bytes of one nonzero
    (data + indices itemsizes), used to balance chunks; ``stored_nnz`` the length of the
    stored ``data`` when known (read at open: deciding chunking then needs no file access);
    ``indptr_ends`` the first and last stored ``indptr`` entries when read at open (a read
    of the whole major axis then knows its nonzeros, see :class:`SparseRead`).
    """

    format: str = "csr"
    bytes_per_nnz: int = 12
    stored_nnz: int | None = None
    indptr_ends: tuple[int, int] | None = None

    def materialize(self) -> da.Array:
        """Build the dask array: reads only ``indptr`` over the selected major-axis span."""
        csr = self.format == "csr"
        major_axis = 0 if csr else 1
        n_major = self.stored_shape[major_axis]
        n_minor = self.stored_shape[1 - major_axis]
        major = _normalise(self.rows if csr else self.cols, n_major)
        minor = _normalise(self.cols if csr else self.rows, n_minor)
        n_sel_major = selection_length(major, n_major)
        n_sel_minor = selection_length(minor, n_minor)
        minor_first = (n_sel_minor / max(1, n_minor)) < (n_sel_major / max(1, n_major))
        per_chunk = _rows_per_chunk(self.chunks, major_axis)
        target = settings.chunk_target_bytes if per_chunk is None else 1 << 62
        if per_chunk is None and minor is not None and 2 * n_sel_minor <= n_minor:
            # every chunk is read whole and mostly thrown away: keep few bytes in flight
            target = min(target, STREAM_TARGET_BYTES)
        name = f"annscale-read-{self._token()}"

        def task(starts, stops, take=None) -> SparseRead:
            starts, stops = np.asarray(starts, np.int64), np.asarray(stops, np.int64)
            nnz = None
            whole = len(starts) == 1 and starts[0] == 0 and stops[0] == n_major
            if whole and take is None and minor is None and self.indptr_ends is not None:
                nnz = self.indptr_ends[1] - self.indptr_ends[0]
            return SparseRead(
                self.location, self.element, self.format, n_minor, starts, stops, take, minor,
                minor_first, nnz,
            )  # fmt: skip

        tasks: list[SparseRead] = []
        sizes: list[int] = []
        if major is None or isinstance(major, slice):
            a, b = (0, n_major) if major is None else (major.start, major.stop)
            if per_chunk is not None:  # fixed rows per chunk: indptr is not needed
                bounds = np.unique(np.append(np.arange(0, b - a, per_chunk), b - a))
            else:
                indptr = read_indptr(self.location, self.element, a, b + 1)
                total = int(indptr[-1] - indptr[0]) * self.bytes_per_nnz
                bounds = balance_by_nnz(
                    indptr,
                    bytes_per_nnz=self.bytes_per_nnz,
                    target_bytes=parallel_target(total, target),
                )
            starts, stops = a + bounds[:-1], a + bounds[1:]
            # one-element views of two arrays: no per-chunk array conversion
            tasks = [task(starts[i : i + 1], stops[i : i + 1]) for i in range(len(starts))]
            sizes = np.diff(bounds).tolist()
        elif major.size:
            span0, span1 = int(major.min()), int(major.max()) + 1
            indptr = read_indptr(self.location, self.element, span0, span1 + 1)
            local = major - span0
            row_bytes = (indptr[local + 1] - indptr[local]) * self.bytes_per_nnz
            if per_chunk is None:
                target = parallel_target(int(row_bytes.sum()), target)
            groups = plan_row_groups(
                local, row_bytes, target_bytes=target,
                max_gap=merge_gap_bytes(self.location, self.element) // max(1, self.bytes_per_nnz),
                gap_units=indptr, max_rows=per_chunk, unit_bytes=self.bytes_per_nnz,
            )  # fmt: skip
            for g in groups:
                take = None if g.reads_only_selected else _take_positions(g)
                tasks.append(task(g.starts + span0, g.stops + span0, take))
                sizes.append(g.n_rows)
        if not tasks:  # empty selection: one empty chunk
            tasks.append(task([], []))
            sizes.append(0)
        major_chunks = tuple(sizes)
        minor_chunks = (n_sel_minor,)
        chunks = (major_chunks, minor_chunks) if csr else (minor_chunks, major_chunks)
        cls = CSRChunk if csr else CSCChunk
        meta = cls((0, 0), dtype=self.dtype)
        return array_from_tasks(name, tasks, chunks, meta, axis=major_axis)


@dataclass(frozen=True, eq=False)
class DenseSource(_Source):
    """A stored dense array (numeric), possibly subset.

    ``storage_chunks`` is the storage chunk shape (the shard shape for sharded zarr) or None.
    """

    storage_chunks: tuple[int, ...] | None = None

    def materialize(self) -> da.Array:
        """Build the dask array (no I/O): whole storage chunks/shards, merged to the target."""
        shape = self.stored_shape
        itemsize = np.dtype(self.dtype).itemsize
        per_chunk = _rows_per_chunk(self.chunks, 0)
        target = settings.chunk_target_bytes
        rows = _normalise(self.rows, shape[0])
        name = f"annscale-read-{self._token()}"
        row_bytes = itemsize * int(np.prod(shape[1:], dtype=np.int64))
        meta = np.empty((0,) * len(shape), dtype=self.dtype)
        if rows is None or isinstance(rows, slice):
            chunks = dense_chunks(
                shape, self.storage_chunks, itemsize=itemsize, target_bytes=target
            )
            if per_chunk is not None:
                chunks = (_even(shape[0], per_chunk), *chunks[1:])
            tasks = {}
            offs = [np.concatenate([[0], np.cumsum(c)]).astype(int) for c in chunks]
            for idx in np.ndindex(*[len(c) for c in chunks]):
                r0, r1 = offs[0][idx[0]], offs[0][idx[0] + 1]
                rest = tuple(
                    slice(int(offs[ax][i]), int(offs[ax][i + 1])) for ax, i in enumerate(idx) if ax
                )
                tasks[idx] = DenseRead(
                    self.location, self.element, np.array([r0]), np.array([r1]), rest
                )
            x = array_from_block_tasks(name, tasks, chunks, meta)
            if rows is not None:
                x = x[rows]
        else:
            if per_chunk is None:
                target = parallel_target(rows.size * row_bytes, target)
            groups = plan_row_groups(
                rows, np.full(rows.shape, row_bytes), target_bytes=target,
                max_gap=MERGE_GAP_BYTES // max(1, row_bytes), max_rows=per_chunk,
                unit_bytes=row_bytes,
            )  # fmt: skip
            tasks_l = []
            for g in groups:
                take = None if g.reads_only_selected else _take_positions(g)
                rest = tuple(slice(0, s) for s in shape[1:])
                tasks_l.append(
                    DenseRead(self.location, self.element, g.starts, g.stops, rest, take)
                )
            sizes = tuple(g.n_rows for g in groups) or (0,)
            if not tasks_l:
                empty = np.zeros(0, np.int64)
                rest = tuple(slice(0, s) for s in shape[1:])
                tasks_l.append(DenseRead(self.location, self.element, empty, empty, rest, empty))
            chunks = (sizes, *((s,) for s in shape[1:]))
            x = array_from_tasks(name, tasks_l, chunks, meta)
        if self.ndim > 1:
            cols = _normalise(self.cols, shape[1])
            if cols is not None:
                x = x[:, cols]
        return x


def _take_positions(g: RowGroup) -> np.ndarray:
    """Positions, within the concatenated ranges of ``g``, of its requested rows in order."""
    lengths = g.stops - g.starts
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    which = np.searchsorted(g.starts, g.unique, side="right") - 1
    return (offsets[which] + (g.unique - g.starts[which]))[g.inverse]


def _even(n: int, k: int) -> tuple[int, ...]:
    if n == 0:
        return (0,)
    full, rest = divmod(n, k)
    return (k,) * full + ((rest,) if rest else ())


# ------------------------------------------------------------------------------ container hooks


@subset_array.register(_Source)
def _subset_source(x: _Source, rows: Any, cols: Any) -> _Source:
    # pushdown: compose the selection with the source's own, no I/O
    return x.subset(rows, cols if x.ndim > 1 else None)


@to_memory.register(_Source)
def _source_to_memory(x: _Source) -> Any:
    return as_plain(compute_one(x.materialize()))
