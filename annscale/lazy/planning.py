"""Chunk planning: pure functions on small arrays, no I/O.

Units: *rows* are positions along the stored major axis (rows of CSR or dense arrays,
columns of CSC), *nonzeros* are positions in a sparse matrix's ``data``/``indices``, and
*bytes* are bytes of stored (uncompressed) values.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = [
    "balance_by_nnz",
    "dense_axis_chunks",
    "dense_chunks",
    "merge_rows",
    "plan_row_groups",
    "RowGroup",
]


def balance_by_nnz(
    indptr: np.ndarray, *, bytes_per_nnz: int, target_bytes: int, max_rows: int | None = None
) -> np.ndarray:
    """Chunk boundaries along the major axis holding about ``target_bytes`` of data each.

    ``indptr`` is the (possibly partial, but starting at the first row of interest) row
    pointer array of ``n`` rows (length ``n + 1``). Returns increasing row offsets
    ``[0, b1, ..., n]`` relative to ``indptr[0]``'s row such that each chunk stores at most
    ``target_bytes`` of ``data`` + ``indices`` — unless a single row is larger, which then
    makes its own chunk. ``max_rows`` optionally caps the rows per chunk (so long runs of
    empty rows do not give huge dense-in-shape chunks). An empty axis gives ``[0]``.
    """
    indptr = np.asarray(indptr, dtype=np.int64)
    n = len(indptr) - 1
    if n <= 0:
        return np.zeros(1, dtype=np.int64)
    per_chunk = max(1, target_bytes // max(1, bytes_per_nnz))
    nnz = indptr - indptr[0]
    if max_rows is not None and (max_rows == 1 or nnz[-1] <= per_chunk):
        # the row cap alone decides: no search per chunk
        return np.unique(np.append(np.arange(0, n, max_rows, dtype=np.int64), n))
    bounds = [0]
    pos = 0
    while pos < n:
        # last row end such that nnz[end] - nnz[pos] <= per_chunk
        end = int(np.searchsorted(nnz, nnz[pos] + per_chunk, side="right")) - 1
        end = max(end, pos + 1)  # a row larger than the target is its own chunk
        if max_rows is not None:
            end = min(end, pos + max_rows)
        end = min(end, n)
        bounds.append(end)
        pos = end
    return np.asarray(bounds, dtype=np.int64)


def dense_axis_chunks(length: int, unit: int, n_units: int) -> tuple[int, ...]:
    """Split ``length`` into chunks of ``n_units * unit`` (the last may be shorter)."""
    if length == 0:
        return (0,)
    size = max(1, unit) * max(1, n_units)
    full, rest = divmod(length, size)
    return (size,) * full + ((rest,) if rest else ())


def dense_chunks(
    shape: tuple[int, ...],
    storage_chunks: tuple[int, ...] | None,
    *,
    itemsize: int,
    target_bytes: int,
) -> tuple[tuple[int, ...], ...]:
    """dask chunks for a dense stored array: whole storage chunks (or shards), merged.

    ``storage_chunks`` is the storage's chunk shape — the *shard* shape for sharded zarr,
    so no dask chunk is finer than a shard — or ``None`` for contiguous storage (then
    ``target_bytes`` decides alone). Storage chunks are merged along the first axis first,
    then along the following ones, until a dask chunk would exceed ``target_bytes``.
    """
    ndim = len(shape)
    if ndim == 0:
        return ()
    unit = list(storage_chunks) if storage_chunks else [1] * ndim
    unit = [max(1, min(u, s)) if s else 1 for u, s in zip(unit, shape)]
    if not storage_chunks:
        # contiguous: rows of whole trailing extent
        unit = [1, *[max(1, s) for s in shape[1:]]]
    counts = [1] * ndim
    chunk_bytes = itemsize * math.prod(unit)
    # grow trailing axes to their full extent first when the target allows (whole rows
    # are cheaper to read), then the first axis
    for ax in [*range(ndim - 1, 0, -1), 0]:
        max_units = max(1, math.ceil(shape[ax] / unit[ax])) if shape[ax] else 1
        fit = max(1, target_bytes // max(1, chunk_bytes))
        counts[ax] = min(max_units, fit)
        chunk_bytes *= counts[ax]
    return tuple(dense_axis_chunks(s, u, c) for s, u, c in zip(shape, unit, counts))


def merge_rows(
    rows: np.ndarray, *, max_gap: int, gaps: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Merge sorted unique ``rows`` into ranges ``[starts[i], stops[i])``.

    Two consecutive selected rows share a range when the gap between them is at most
    ``max_gap``. By default the gap is measured in rows (unselected rows between them);
    pass ``gaps`` (length ``len(rows) - 1``) to measure it in other units, e.g. nonzeros
    that would be read and thrown away. Reading a merged range reads the unselected rows
    in between too: one larger read instead of several small ones.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if gaps is None:
        gaps = np.diff(rows) - 1
    split = np.flatnonzero(np.asarray(gaps) > max_gap) + 1
    starts = rows[np.concatenate([[0], split])]
    stops = rows[np.concatenate([split - 1, [rows.size - 1]])] + 1
    return starts, stops


class RowGroup:
    """The rows of one output chunk of a row selection.

    ``positions`` is the slice of the requested order this chunk produces; ``unique`` the
    sorted distinct stored rows it needs; ``inverse`` maps each requested row of the chunk to
    its index in ``unique`` (so duplicates and any order are reproduced); ``starts``/``stops``
    the merged row ranges to read.
    """

    __slots__ = ("inverse", "positions", "starts", "stops", "unique")

    def __init__(self, positions, unique, inverse, starts, stops):
        self.positions = positions
        self.unique = unique
        self.inverse = inverse
        self.starts = starts
        self.stops = stops

    @property
    def n_rows(self) -> int:
        return self.positions.stop - self.positions.start

    @property
    def reads_only_selected(self) -> bool:
        """True if the ranges hold exactly the requested rows, in the requested order (no
        unselected row read in between, no duplicate, no reordering)."""
        return (
            int(np.sum(self.stops - self.starts)) == self.n_rows
            and self.unique.size == self.n_rows
            and bool(np.all(self.inverse == np.arange(self.n_rows)))
        )


def _gap_cost(
    rows: np.ndarray, max_gap: int, gap_units: np.ndarray | None, unit_bytes: int
) -> np.ndarray | None:
    """Bytes of unselected rows read before each requested row when ranges are merged
    (0 where the gap is too large to merge), for requests in increasing order; else None."""
    if unit_bytes <= 0 or rows.size < 2 or np.any(rows[1:] < rows[:-1]):
        return None
    if gap_units is not None:
        gaps = gap_units[rows[1:]] - gap_units[np.minimum(rows[:-1] + 1, rows[1:])]
    else:
        gaps = np.maximum(rows[1:] - rows[:-1] - 1, 0)
    cost = np.zeros(rows.size, dtype=np.int64)
    cost[1:] = np.where(gaps <= max_gap, gaps, 0) * unit_bytes
    return cost


def plan_row_groups(
    rows: np.ndarray,
    row_bytes: np.ndarray,
    *,
    target_bytes: int,
    max_gap: int,
    gap_units: np.ndarray | None = None,
    max_rows: int | None = None,
    unit_bytes: int = 0,
) -> list[RowGroup]:
    """Split a row selection (requested order, duplicates allowed) into output chunks.

    ``row_bytes[i]`` is the stored size of requested row ``rows[i]``; consecutive requested
    rows are grouped until a group holds ``target_bytes`` (a row larger than that gets its own
    group). ``gap_units``, if given, is a function of stored rows: ``gap_units[r]`` is the
    cumulative cost (e.g. indptr) at row ``r`` (length ``n_rows + 1``), used to measure gaps
    between ranges in those units; otherwise gaps are measured in rows.

    ``unit_bytes`` (bytes per gap unit), if positive, makes the unselected rows read inside
    merged ranges count towards ``target_bytes`` too (for requests in increasing order), so
    the bytes a group *reads* stay bounded however far apart its rows are.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cost = np.asarray(row_bytes, dtype=np.int64)
    gap_cost = _gap_cost(rows, max_gap, gap_units, unit_bytes)
    if gap_cost is not None:
        cost = cost + gap_cost
    csum = np.concatenate([[0], np.cumsum(cost)])
    bounds = balance_by_nnz(csum, bytes_per_nnz=1, target_bytes=target_bytes, max_rows=max_rows)
    groups = []
    for a, b in itertools.pairwise(bounds):
        sel = rows[a:b]
        unique, inverse = np.unique(sel, return_inverse=True)
        gaps = None
        if gap_units is not None and unique.size > 1:
            gaps = gap_units[unique[1:]] - gap_units[unique[:-1] + 1]
        starts, stops = merge_rows(unique, max_gap=max_gap, gaps=gaps)
        groups.append(RowGroup(slice(int(a), int(b)), unique, inverse.ravel(), starts, stops))
    return groups
