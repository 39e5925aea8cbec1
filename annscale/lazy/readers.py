"""Chunk read tasks: small picklable callables that read one chunk of a stored array.

A task holds an address — the :class:`Location`, the element path and the ranges of stored
rows it needs — never a handle or data. When run (in any process) it opens the store through
the per-process cache (:mod:`annscale.storage.cache`), reads exactly its ranges, checks them
and returns a :class:`~annscale.lazy.sparse_chunks.CSRChunk`/``CSCChunk`` or a numpy array.

Bad stored data found while reading raises an :class:`~annscale.errors.AnnscaleError` naming
the file, the element and the chunk (its range of stored rows). A chunk of a zarr sparse
component (``data``/``indices``/``indptr``) that is absent from the store is an error, not
zeros (zarr would silently return its fill value).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..errors import AnnscaleError, CorruptElementError
from ..storage.cache import get_root
from ..storage.elements import Array, Group, H5Array, ZarrArray
from ..storage.location import Location
from . import h5raw
from .sparse_chunks import CSCChunk, CSRChunk

__all__ = [
    "SparseRead", "DenseRead", "Selection", "fill_chunks", "raw_readable", "read_indptr",
    "read_ranges", "stored_info",
]  # fmt: skip

#: a normalised selection along one axis: a slice with step 1 or sorted/unsorted int64 rows
Selection = slice | np.ndarray | None


def _describe(starts: np.ndarray, stops: np.ndarray, axis_name: str) -> str:
    if len(starts) == 0:
        return f"empty chunk ({axis_name})"
    if len(starts) == 1:
        return f"chunk {axis_name} [{int(starts[0])}, {int(stops[0])})"
    return f"chunk of {len(starts)} {axis_name} ranges within [{int(starts[0])}, {int(stops[-1])})"


def _chunk_len(arr: ZarrArray) -> int:
    z = arr.handle
    return int((z.shards or z.chunks)[0])


def _absent_chunks(arr: ZarrArray, candidates: list[int]) -> list[int]:
    """Which of the stored chunks (or shards) ``candidates`` of 1-d ``arr`` are absent."""
    if not candidates:
        return []
    from zarr.core.sync import sync

    z = arr.handle
    store_path = z.store_path
    prefix = f"{store_path.path}/" if store_path.path else ""
    keys = [prefix + z.metadata.encode_chunk_key((i,)) for i in candidates]

    async def exists_all():
        return await asyncio.gather(*(store_path.store.exists(k) for k in keys))

    return [i for i, ok in zip(candidates, sync(exists_all())) if not ok]


def fill_chunks(arr: Array, start: int, values: np.ndarray) -> list[int]:
    """Stored chunks of 1-d zarr ``arr`` overlapping ``values = arr[start:start+len]`` that
    read as all zeros (the fill value) *and* are absent from the store.

    zarr returns the fill value for a chunk that is not stored, which is legitimate when the
    writer skipped an all-fill chunk and corruption otherwise; callers decide which. Only
    all-zero overlaps are checked, so intact data costs no extra store requests.
    """
    if not isinstance(arr, ZarrArray) or values.size == 0:
        return []
    step = _chunk_len(arr)
    stop = start + values.size
    candidates = []
    for k in range(start // step, (stop - 1) // step + 1):
        lo, hi = max(start, k * step), min(stop, (k + 1) * step)
        if not np.any(values[lo - start : hi - start]):
            candidates.append(k)
    return _absent_chunks(arr, candidates)


def _missing_error(arr: Array, chunks: list[int], what: str) -> CorruptElementError:
    keys = [arr.handle.metadata.encode_chunk_key((k,)) for k in chunks[:5]]
    return CorruptElementError(
        f"stored chunk(s) {keys} are missing from the store ({what}); refusing to read them "
        "as zeros",
        source=arr.source,
        element=arr.path,
    )


def check_indptr_chunks(arr: Array, start: int, values: np.ndarray) -> None:
    """An absent ``indptr`` chunk reads as zeros: legitimate only before the first nonzero
    (zarr skips writing all-zero chunks of leading empty rows)."""
    missing = fill_chunks(arr, start, values)
    if not missing:
        return
    step = _chunk_len(arr)
    k = missing[-1]  # zeros are a prefix (indptr is checked non-decreasing): check the last
    for j in range(k - 1, -1, -1):
        if not _absent_chunks(arr, [j]):
            last = np.asarray(arr.read(slice((j + 1) * step - 1, (j + 1) * step)))
            if last.size and last[0] != 0:
                raise _missing_error(arr, missing, "indptr would drop to zero")
            return
    # every chunk before is absent too: all leading rows are empty, which is consistent


def check_indices_chunks(arr: Array, start: int, values: np.ndarray, row_of: np.ndarray) -> None:
    """An absent ``indices`` chunk reads as zeros: consistent only if no row then has column
    0 twice. ``row_of[i]`` is the row of stored position ``start + i``."""
    missing = fill_chunks(arr, start, values)
    if not missing:
        return
    step = _chunk_len(arr)
    for k in missing:
        lo, hi = max(start, k * step) - start, min(start + values.size, (k + 1) * step) - start
        rows = row_of[lo:hi]
        if rows.size != np.unique(rows).size:
            raise _missing_error(arr, [k], "a row would hold column 0 twice")


def check_data_chunks(arr: Array, start: int, values: np.ndarray) -> None:
    """An absent ``data`` chunk is an error (stored values would silently become zeros)."""
    missing = fill_chunks(arr, start, values)
    if missing:
        raise _missing_error(arr, missing, f"data positions from {start}")


def _apply_minor(m: sp.spmatrix, minor: Selection) -> sp.spmatrix:
    if minor is None:
        return m
    if m.format == "csr":
        return m[:, minor]
    return m[minor, :]


def _take_major(m: sp.spmatrix, take: np.ndarray | None) -> sp.spmatrix:
    if take is None:
        return m
    return m[take] if m.format == "csr" else m[:, take]


def read_ranges(arr: Array, starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """Elements ``[starts[i], stops[i])`` of 1-d ``arr``, concatenated in one buffer.

    Uncompressed datasets of local ``.h5ad`` files are read directly from the file
    (:mod:`annscale.lazy.h5raw`: a few microseconds per range); anything else with one
    read per range.
    """
    if isinstance(arr, H5Array):
        out = h5raw.read_ranges(arr.handle, starts, stops)
        if out is not None:
            return out
    pieces = [np.asarray(arr.read(slice(a, b))) for a, b in zip(starts.tolist(), stops.tolist())]
    if len(pieces) == 1:
        return pieces[0]
    return np.concatenate(pieces) if pieces else np.zeros(0, arr.dtype)


def raw_readable(arr: Array) -> bool:
    """True if 1-d ``arr`` is read straight from a local file (see :func:`read_ranges`)."""
    return isinstance(arr, H5Array) and h5raw.raw_layout(arr.handle) is not None


#: read one span of indptr for many ranges when it is at most this many times their rows
_INDPTR_SPAN_FACTOR = 8


def _read_indptr_span(arr: Array, starts: np.ndarray, stops: np.ndarray) -> np.ndarray | None:
    """``indptr[starts[0] : stops[-1] + 1]`` (int64) when the ranges are dense in that span
    (one read covers them all), else None."""
    if len(starts) == 0:
        return None
    lo, hi = int(starts[0]), int(stops[-1]) + 1
    wanted = int(np.sum(stops - starts)) + len(starts)
    if len(starts) == 1 or hi - lo <= _INDPTR_SPAN_FACTOR * wanted + 4096:
        return np.asarray(arr.read(slice(lo, hi)), dtype=np.int64)
    return None


def _concat_aranges(starts: np.ndarray, stops: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.arange(a, b) for a, b in zip(starts, stops)])``, vectorised."""
    lengths = stops - starts
    total = int(lengths.sum())
    before = np.cumsum(lengths) - lengths
    return np.arange(total, dtype=np.int64) + np.repeat(starts - before, lengths)


def _join_indptr(ip_of, starts: np.ndarray, stops: np.ndarray, los: np.ndarray) -> np.ndarray:
    """The indptr of the ranges' rows concatenated. ``ip_of(rows)`` gives the stored
    ``indptr`` at stored row positions ``rows``; ``los`` is ``indptr[starts]``."""
    if len(starts) == 0:
        return np.zeros(1, np.int64)
    lengths = stops - starts
    if len(starts) == 1:
        return ip_of(np.arange(int(starts[0]), int(stops[0]) + 1)) - los[0]
    ends = _concat_aranges(starts, stops) + 1  # each row's end in the stored indptr
    his = ip_of(stops)
    out_lo = np.cumsum(his - los) - (his - los)  # where each range starts in the output
    body = ip_of(ends) + np.repeat(out_lo - los, lengths)
    return np.concatenate([[0], body])


def _sums_by_index(data: np.ndarray, indices: np.ndarray, n: int, dtype: np.dtype) -> np.ndarray:
    """``out[j] = sum(data[indices == j])`` for ``j < n`` (checked indices), in ``dtype``:
    scipy's compiled sparse product with a one-row matrix, no copy of the inputs."""
    one_row = sp.csr_matrix((data, indices, np.array([0, data.size])), shape=(1, n), copy=False)
    return np.asarray(one_row.sum(axis=0, dtype=dtype)).ravel()


def _out_of_range(indices: np.ndarray, n: int) -> bool:
    """True if any of ``indices`` lies outside ``[0, n)`` (one pass over them)."""
    if indices.size == 0:
        return False
    if indices.dtype.kind == "i":  # negatives become huge unsigned values
        return int(indices.view(indices.dtype.str.replace("i", "u")).max()) >= n
    return int(indices.max()) >= n


@dataclass(frozen=True)
class SparseRead:
    """Read stored rows (CSR) or columns (CSC) ``[starts[i], stops[i])`` of a sparse group.

    ``take`` (optional) picks, in order and with repetitions, positions within the
    concatenated ranges; ``minor`` (optional) selects along the other axis. ``n_minor`` is the
    stored length of the other axis; ``minor_first`` applies the minor selection first (when
    it is the more selective one). ``nnz`` (optional) is the number of
    nonzeros the read returns when known from the stored ``indptr`` at open (a whole major
    axis): writers use it to place the chunk without opening the file first.
    """

    location: Location
    element: str
    format: str  # "csr" | "csc"
    n_minor: int
    starts: np.ndarray
    stops: np.ndarray
    take: np.ndarray | None = None
    minor: Selection = None
    minor_first: bool = False
    nnz: int | None = None

    def __call__(self) -> CSRChunk | CSCChunk:
        return self._checked(self._read)

    def minor_sums(self, dtype: np.dtype) -> np.ndarray:
        """Sums of this chunk over its major axis — per column of a CSR chunk, per row of a
        CSC chunk — shape ``(n_minor,)``, in ``dtype`` (numpy's sum dtype of the values).

        A whole range of uncompressed local data is summed straight from a memory map of the
        file (nothing copied); anything else is read as a chunk first.
        """
        return self._checked(lambda: self._minor_sums(np.dtype(dtype)))

    def _checked(self, fn):
        axis_name = "rows" if self.format == "csr" else "columns"
        where = _describe(self.starts, self.stops, axis_name)
        try:
            return fn()
        except AnnscaleError as e:
            raise type(e)(f"{e.message}; in {where}", source=e.source, element=e.element) from e
        except Exception as e:  # any other failure is bad or unreadable stored data
            raise CorruptElementError(
                f"cannot read {where}: {type(e).__name__}: {e}",
                source=self.location.url,
                element=self.element,
            ) from e

    def _read(self) -> CSRChunk | CSCChunk:
        m = self._read_raw()
        if m is None:
            m = self._read_stored()
        if self.minor_first:
            return _take_major(_apply_minor(m, self.minor), self.take)
        return _apply_minor(_take_major(m, self.take), self.minor)

    def _read_raw(self) -> CSRChunk | CSCChunk | None:
        """One range of rows read straight from a local HDF5 file whose layouts were looked
        up when it was opened (:func:`.h5raw.read_elements`: no HDF5 handle), else None."""
        if not self.location.is_local or len(self.starts) != 1:
            return None
        path, base = self.location.path, self.element.rstrip("/")
        layout = h5raw.known_layout(path, base + "/data")
        if layout is None:
            return None
        a, b = int(self.starts[0]), int(self.stops[0])
        ip = h5raw.read_elements(path, base + "/indptr", a, b + 1)
        if ip is None:
            return None
        ip = ip.astype(np.int64, copy=False)
        self._check_indptr(ip, a, b, int(layout.run_starts[-1]))
        lo, hi = int(ip[0]), int(ip[-1])
        data = h5raw.read_elements(path, base + "/data", lo, hi)
        indices = h5raw.read_elements(path, base + "/indices", lo, hi)
        if data is None or indices is None:
            return None
        self._check_indices(indices)
        cls = CSRChunk if self.format == "csr" else CSCChunk
        shape = (b - a, self.n_minor) if self.format == "csr" else (self.n_minor, b - a)
        return cls((data, indices, ip - lo), shape=shape, copy=False)

    def _read_stored(self) -> CSRChunk | CSCChunk:
        group = get_root(self.location)[self.element.lstrip("/") or "/"]
        assert isinstance(group, Group)
        indptr_arr = group.require("indptr", "the sparse indptr array")
        data_arr = group.require("data", "the sparse data array")
        indices_arr = group.require("indices", "the sparse indices array")
        starts, stops = self.starts, self.stops
        n_data = data_arr.shape[0]
        span = _read_indptr_span(indptr_arr, starts, stops)
        if span is not None:  # one read covers every range: check it once
            lo = int(starts[0])
            self._check_indptr(span, lo, lo + len(span) - 1, n_data)
            check_indptr_chunks(indptr_arr, lo, span)

            def ip_of(rows: np.ndarray) -> np.ndarray:
                return span[rows - lo]

        else:  # far apart: each range's own slice of indptr
            ips = []
            for a, b in zip(starts.tolist(), stops.tolist()):
                ip = np.asarray(indptr_arr.read(slice(a, b + 1)), dtype=np.int64)
                self._check_indptr(ip, a, b, n_data)
                check_indptr_chunks(indptr_arr, a, ip)
                ips.append(ip)
            flat = np.concatenate(ips) if ips else np.zeros(0, np.int64)
            base = np.cumsum(stops - starts + 1) - (stops - starts + 1)  # each range in flat

            def ip_of(rows: np.ndarray) -> np.ndarray:
                # the range holding each row (rows lie within a range or at its end)
                k = np.searchsorted(starts, rows, side="right") - 1
                return flat[base[k] + rows - starts[k]]

        los, his = ip_of(starts), ip_of(stops)
        data = read_ranges(data_arr, los, his)
        indices = read_ranges(indices_arr, los, his)
        if isinstance(data_arr, ZarrArray) or isinstance(indices_arr, ZarrArray):
            pos = 0
            for a, b, lo_, hi_ in zip(starts.tolist(), stops.tolist(), los.tolist(), his.tolist()):
                check_data_chunks(data_arr, lo_, data[pos : pos + hi_ - lo_])
                piece = indices[pos : pos + hi_ - lo_]
                if isinstance(indices_arr, ZarrArray) and not np.all(piece):
                    ip = ip_of(np.arange(a, b + 1))
                    row_of = np.repeat(np.arange(len(ip) - 1), np.diff(ip))
                    check_indices_chunks(indices_arr, lo_, piece, row_of)
                pos += hi_ - lo_
        indptr = _join_indptr(ip_of, starts, stops, los)
        n_major = int(np.sum(stops - starts))
        self._check_indices(indices)
        cls = CSRChunk if self.format == "csr" else CSCChunk
        shape = (n_major, self.n_minor) if self.format == "csr" else (self.n_minor, n_major)
        return cls((data, indices, indptr), shape=shape, copy=False)

    def _minor_sums(self, dtype: np.dtype) -> np.ndarray:
        if self.take is None and self.minor is None and len(self.starts) == 1:
            group = get_root(self.location)[self.element.lstrip("/") or "/"]
            assert isinstance(group, Group)
            data_arr = group.require("data", "the sparse data array")
            indices_arr = group.require("indices", "the sparse indices array")
            if raw_readable(data_arr) and raw_readable(indices_arr):
                indptr_arr = group.require("indptr", "the sparse indptr array")
                a, b = int(self.starts[0]), int(self.stops[0])
                ip = np.asarray(indptr_arr.read(slice(a, b + 1)), dtype=np.int64)
                self._check_indptr(ip, a, b, data_arr.shape[0])
                pairs = h5raw.mapped_pairs(
                    data_arr.handle, indices_arr.handle, int(ip[0]), int(ip[-1])
                )
                if pairs is not None:
                    total = np.zeros(self.n_minor, dtype=dtype)
                    for data, indices in pairs:
                        self._check_indices(indices)
                        total += _sums_by_index(data, indices, self.n_minor, dtype)
                    return total
        m = self._read()
        return np.asarray(m.sum(axis=0 if self.format == "csr" else 1, dtype=dtype)).ravel()

    def _check_indices(self, indices: np.ndarray) -> None:
        if _out_of_range(indices, self.n_minor):
            raise CorruptElementError(
                f"indices out of range [0, {self.n_minor}) (found {indices.min()}..{indices.max()})",
                source=self.location.url,
                element=self.element + "/indices",
            )

    def _check_indptr(self, ip: np.ndarray, a: int, b: int, n_data: int) -> None:
        if ip.shape[0] != b - a + 1 or np.any(np.diff(ip) < 0) or ip[0] < 0 or ip[-1] > n_data:
            raise CorruptElementError(
                f"indptr[{a}:{b + 1}] is not a non-decreasing sequence within [0, {n_data}] "
                "(the length of data)",
                source=self.location.url,
                element=self.element + "/indptr",
            )


@dataclass(frozen=True)
class DenseRead:
    """Read a block of a dense stored array: stored rows ``[starts[i], stops[i])`` (axis 0),
    then ``take`` positions among them, with ``rest`` (slices) along the other axes."""

    location: Location
    element: str
    starts: np.ndarray
    stops: np.ndarray
    rest: tuple[slice, ...] = ()
    take: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        where = _describe(self.starts, self.stops, "rows")
        try:
            blocks = self._read_raw()
            if blocks is not None:
                out = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
                return out if self.take is None else out[self.take]
            arr = get_root(self.location)[self.element.lstrip("/")]
            blocks = [
                np.asarray(arr.read((slice(a, b), *self.rest)))
                for a, b in zip(self.starts.tolist(), self.stops.tolist())
            ]
            if not blocks:
                extent = tuple(len(range(*r.indices(n))) for r, n in zip(self.rest, arr.shape[1:]))
                return np.empty((0, *extent), dtype=arr.dtype)
            out = blocks[0] if len(blocks) == 1 else np.concatenate(blocks, axis=0)
            return out if self.take is None else out[self.take]
        except AnnscaleError as e:
            raise type(e)(f"{e.message}; in {where}", source=e.source, element=e.element) from e
        except Exception as e:
            raise CorruptElementError(
                f"cannot read {where}: {type(e).__name__}: {e}",
                source=self.location.url,
                element=self.element,
            ) from e

    def _read_raw(self) -> list[np.ndarray] | None:
        """The row blocks read straight from a local HDF5 file whose layout was looked up
        when it was opened (:func:`.h5raw.read_rows`: no HDF5 handle), else None."""
        if not self.location.is_local or len(self.starts) == 0:
            return None
        path = self.location.path
        blocks = []
        for a, b in zip(self.starts.tolist(), self.stops.tolist()):
            rows = h5raw.read_rows(path, self.element, a, b)
            if rows is None:
                return None
            blocks.append(rows[(slice(None), *self.rest)] if self.rest else rows)
        return blocks


def read_indptr(location: Location, element: str, start: int, stop: int) -> np.ndarray:
    """``indptr[start:stop]`` of a stored sparse group, as int64, checked."""
    group = get_root(location)[element.lstrip("/")]
    arr = group.require("indptr", "the sparse indptr array")
    ip = np.asarray(arr.read(slice(start, stop)), dtype=np.int64)
    if ip.size and (np.any(np.diff(ip) < 0) or ip[0] < 0):
        raise CorruptElementError(
            f"indptr[{start}:{stop}] is not non-decreasing",
            source=location.url,
            element=element.rstrip("/") + "/indptr",
        )
    check_indptr_chunks(arr, start, ip)
    return ip


def stored_info(location: Location, element: str) -> dict[str, Any]:
    """dtype / storage chunking of a stored array or sparse group (metadata only)."""
    node = get_root(location)[element.lstrip("/")]
    if isinstance(node, Group):
        data = node.require("data", "the sparse data array")
        return {"dtype": data.dtype}
    z = node
    chunks = z.chunks
    if isinstance(z, ZarrArray) and z.handle.shards is not None:
        chunks = z.handle.shards
    return {"dtype": z.dtype, "chunks": chunks}
