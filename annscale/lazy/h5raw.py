"""Direct reads of uncompressed 1-d HDF5 datasets of local files, by element range, and
direct writes into datasets allocated for them.

Every h5py read costs tens of microseconds and holds h5py's global lock, so a selection of
thousands of rows (one ``data`` and one ``indices`` read per merged range) is dominated by
per-call overhead, and reads from several dask threads never overlap. A dataset stored without
filters — contiguous, or chunked with an empty filter pipeline, which is how anndata writes
sparse components by default — is plain bytes at offsets HDF5 reports once (``get_offset`` /
``chunk_iter``). :func:`read_ranges` reads element ranges of such a dataset with
:func:`os.preadv` straight into one numpy buffer: a few microseconds per range, the GIL
released while reading. Everything else (compressed or compact datasets, files opened through
fsspec, unallocated chunks, non-numeric dtypes) is read through h5py as before.

Layouts are looked up once per file and dataset (per process, keyed by the file's identity so
a rewritten file is looked up again); each read opens the file read-only for ``preadv``.

Writes: a dataset created contiguous with its storage allocated up front and never filled by
HDF5 (``create_array(..., allocate=True)``) is a byte range of the file that HDF5 will not
touch again. :func:`write_target` gives its address (path, file identity, offset) — a small
picklable value a task carries — and :func:`write_at` writes elements into it with
``os.pwrite`` from any thread or process of this machine, in parallel and without h5py's
lock, while the writer keeps the file open. Such a dataset must never be written through
HDF5 as well (HDF5's sieve buffer could write stale bytes back over it).
"""

from __future__ import annotations

import itertools
import mmap
import os
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

import h5py
import numpy as np

__all__ = [
    "RawLayout",
    "WriteTarget",
    "known_layout",
    "mapped_pairs",
    "raw_layout",
    "read_elements",
    "read_ranges",
    "read_rows",
    "writable_in_place",
    "write_at",
    "write_target",
]


@dataclass(frozen=True)
class RawLayout:
    """Where the elements of a dataset lie in its file (flat positions, C order).

    ``run_starts[i]`` is the first element of run ``i``, stored contiguously from byte
    ``run_offsets[i]`` of the file (consecutive chunks adjacent on disk form one run);
    ``run_starts`` ends with the dataset size. Datasets of more than one dimension are
    described only when contiguous (their rows are then element ranges).
    """

    dtype: np.dtype
    run_starts: np.ndarray
    run_offsets: np.ndarray
    shape: tuple[int, ...] = ()

    def pieces(self, starts: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """File byte offsets and byte sizes of the contiguous pieces of element ranges
        ``[starts[i], starts[i] + lengths[i])``, in order (empty ranges give none).

        Vectorised: a range crossing run boundaries is split at them; pieces adjacent both in
        the file and in the output are joined, so a read of consecutive ranges is one read.
        """
        itemsize = self.dtype.itemsize
        keep = lengths > 0
        starts, lengths = starts[keep], lengths[keep]
        if starts.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        stops = starts + lengths
        first = np.searchsorted(self.run_starts, starts, side="right") - 1
        last = np.searchsorted(self.run_starts, stops - 1, side="right") - 1
        n_pieces = last - first + 1
        if np.all(n_pieces == 1):
            run, p_start, p_stop = first, starts, stops
        else:
            total = int(n_pieces.sum())
            owner = np.repeat(np.arange(starts.size), n_pieces)
            before = np.cumsum(n_pieces) - n_pieces
            run = first[owner] + (np.arange(total) - before[owner])
            p_start = np.maximum(starts[owner], self.run_starts[run])
            p_stop = np.minimum(stops[owner], self.run_starts[run + 1])
        offsets = self.run_offsets[run] + (p_start - self.run_starts[run]) * itemsize
        sizes = (p_stop - p_start) * itemsize
        if offsets.size > 1:
            # a piece continuing the previous one in the file: one read for both
            new = np.ones(offsets.size, dtype=bool)
            new[1:] = offsets[1:] != offsets[:-1] + sizes[:-1]
            if not np.all(new):
                heads = np.flatnonzero(new)
                sizes = np.add.reduceat(sizes, heads)
                offsets = offsets[heads]
        return offsets.astype(np.int64, copy=False), sizes.astype(np.int64, copy=False)


def _pread_exact(fd: int, out: np.ndarray, offset: int) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = os.preadv(fd, [view[done:]], offset + done)
        if n <= 0:
            raise OSError(f"unexpected end of file reading {len(view)} bytes at byte {offset}")
        done += n


#: layouts by (file path, file identity, dataset path); bounded, least recently used dropped
_layouts: OrderedDict[tuple[str, tuple[int, ...], str], RawLayout | None] = OrderedDict()
_CAPACITY = 1024
_lock = threading.Lock()


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _find_layout(dset: h5py.Dataset) -> RawLayout | None:
    dtype = dset.dtype
    if dset.ndim < 1 or dtype.kind not in "biuf" or dset.size == 0:
        return None
    n, itemsize = int(dset.size), dtype.itemsize
    shape = tuple(int(s) for s in dset.shape)
    plist = dset.id.get_create_plist()
    if plist.get_nfilters() or plist.get_external_count():
        return None
    layout = plist.get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dset.id.get_offset()
        if offset is None or dset.id.get_storage_size() < n * itemsize:
            return None
        return RawLayout(dtype, np.array([0, n], np.int64), np.array([offset], np.int64), shape)
    if layout != h5py.h5d.CHUNKED or dset.ndim != 1:
        return None
    chunk = int(dset.chunks[0])
    found: list[tuple[int, int, int, int]] = []
    dset.id.chunk_iter(
        lambda c: found.append((c.chunk_offset[0], c.byte_offset, c.size, c.filter_mask))
    )
    n_chunks = -(-n // chunk)
    if len(found) != n_chunks:
        return None  # unallocated chunks read as the fill value: leave them to HDF5
    table = np.array(sorted(found), dtype=np.int64).reshape(-1, 4)
    if np.any(table[:, 2] != chunk * itemsize) or np.any(table[:, 3] != 0):
        return None
    starts, offsets = table[:, 0], table[:, 1]
    # chunks adjacent on disk form one run: one preadv covers them
    new_run = np.ones(n_chunks, dtype=bool)
    new_run[1:] = offsets[1:] != offsets[:-1] + chunk * itemsize
    return RawLayout(dtype, np.append(starts[new_run], n), offsets[new_run], shape)


def raw_layout(dset: h5py.Dataset) -> tuple[str, RawLayout] | None:
    """The file path and raw layout of ``dset`` if it can be read directly, else None.

    Cached per process, keyed by the file's path and identity (inode, size, modification
    time), so a rewritten file is looked up again.
    """
    f = dset.file
    if f.driver != "sec2" or f.mode != "r":
        return None
    path = f.filename
    try:
        ident = _identity(os.stat(path))
        # the file at ``path`` must still be the one HDF5 has open (not replaced by a rename)
        if ident[:2] != _identity(os.fstat(f.id.get_vfd_handle()))[:2]:
            return None
    except (OSError, ValueError):
        return None
    key = (path, ident, dset.name)
    with _lock:
        if key in _layouts:
            _layouts.move_to_end(key)
            layout = _layouts[key]
        else:
            layout = _layouts[key] = _find_layout(dset)
            while len(_layouts) > _CAPACITY:
                _layouts.popitem(last=False)
    return None if layout is None else (path, layout)


def known_layout(path: str, name: str) -> RawLayout | None:
    """The layout of dataset ``name`` of the local file at ``path``, if it was looked up
    (:func:`raw_layout`) since the file last changed; no HDF5 call, one ``stat``.

    A task reading a small array this way needs no HDF5 handle: opening the file again
    (after the handle cache dropped it) costs milliseconds, more than the read.
    """
    try:
        ident = _identity(os.stat(path))
    except OSError:
        return None
    with _lock:
        return _layouts.get((path, ident, name))


def read_rows(path: str, name: str, start: int, stop: int) -> np.ndarray | None:
    """Rows ``[start, stop)`` (along the first axis) of dataset ``name`` of the local file at
    ``path`` when its layout is known (:func:`known_layout`) and holds them contiguously,
    else None; read without HDF5."""
    layout = known_layout(path, name)
    if layout is None or not layout.shape:
        return None
    n_rows = layout.shape[0]
    if not 0 <= start <= stop <= n_rows:
        raise IndexError(f"rows [{start}, {stop}) outside [0, {n_rows}) of {name}")
    row = int(np.prod(layout.shape[1:], dtype=np.int64))
    out = _read_known(path, name, layout, start * row, stop * row)
    return None if out is None else out.reshape((stop - start, *layout.shape[1:]))


def read_elements(path: str, name: str, start: int, stop: int) -> np.ndarray | None:
    """Elements ``[start, stop)`` (flat, C order) of dataset ``name`` of the local file at
    ``path`` when its layout is known (:func:`known_layout`), else None; read without HDF5."""
    layout = known_layout(path, name)
    if layout is None:
        return None
    n = int(layout.run_starts[-1])
    if not 0 <= start <= stop <= n:
        raise IndexError(f"elements [{start}, {stop}) outside [0, {n}) of {name}")
    return _read_known(path, name, layout, start, stop)


def _read_known(path: str, name: str, layout: RawLayout, start: int, stop: int):
    """Elements ``[start, stop)`` with a layout from :func:`known_layout`; None if the file
    at ``path`` changed since (the descriptor read is checked, not just the path)."""

    def same(fd: int) -> bool:
        with _lock:
            return (path, _identity(os.fstat(fd)), name) in _layouts

    return _read_layout(path, layout, np.array([start]), np.array([stop]), same)


def read_ranges(dset: h5py.Dataset, starts: np.ndarray, stops: np.ndarray) -> np.ndarray | None:
    """Elements ``[starts[i], stops[i])`` of ``dset``, concatenated; None if not raw-readable.

    Reads from the file directly (see the module docstring); ranges must lie within the
    dataset. Each range is one ``preadv`` call (ranges adjacent in the file share one):
    a few microseconds, so merging nearby ranges (reading the bytes between them and
    dropping them afterwards) only costs time here.
    """
    found = raw_layout(dset)
    if found is None:
        return None
    path, layout = found
    starts = np.asarray(starts, np.int64)
    n = int(layout.run_starts[-1])
    if len(starts) and (
        np.any(np.asarray(stops) < starts) or np.min(starts) < 0 or np.max(stops) > n
    ):
        raise IndexError(f"element ranges outside [0, {n}) of {dset.name}")
    hdf5_inode = os.fstat(dset.file.id.get_vfd_handle()).st_ino
    return _read_layout(path, layout, starts, stops, lambda fd: os.fstat(fd).st_ino == hdf5_inode)


def _read_layout(path, layout: RawLayout, starts, stops, same_file) -> np.ndarray | None:
    """Elements ``[starts[i], stops[i])`` (within the dataset) read with ``preadv``; None if
    ``same_file(fd)`` says the file at ``path`` is not the one the layout describes."""
    starts = np.asarray(starts, np.int64)
    lengths = np.asarray(stops, np.int64) - starts
    out = np.empty(int(lengths.sum()), dtype=layout.dtype)
    offsets, sizes = layout.pieces(starts, lengths)
    view = memoryview(out).cast("B")
    raw = out.view(np.uint8)
    preadv = os.preadv
    # a descriptor per call (microseconds): nothing to close when files or caches go away
    fd = os.open(path, os.O_RDONLY)
    try:
        if not same_file(fd):
            return None  # replaced since: read through HDF5
        pos = 0
        # the pieces were planned with numpy; this loop only issues the reads
        for offset, size in zip(offsets.tolist(), sizes.tolist()):
            end = pos + size
            done = preadv(fd, [view[pos:end]], offset)
            if done != size:  # short read (e.g. over 2 GiB at once): finish it
                _pread_exact(fd, raw[pos + max(done, 0) : end], offset + max(done, 0))
            pos = end
    finally:
        os.close(fd)
    return out


def mapped_pairs(
    a: h5py.Dataset, b: h5py.Dataset, start: int, stop: int
) -> Iterator[tuple[np.ndarray, np.ndarray]] | None:
    """Elements ``[start, stop)`` of two 1-d datasets of the same local file, as pairs of
    read-only views into a memory map of the file, segment by segment (each segment is
    contiguous in the file for both); None if either is not raw-readable.

    Nothing is copied: for reductions that consume the values once (per-column sums), this
    saves the copy :func:`read_ranges` makes. The views are only valid during the iteration
    and must not be kept.
    """
    found_a, found_b = raw_layout(a), raw_layout(b)
    if found_a is None or found_b is None or found_a[0] != found_b[0]:
        return None
    (path, la), (_, lb) = found_a, found_b
    n = min(int(la.run_starts[-1]), int(lb.run_starts[-1]))
    if not 0 <= start <= stop <= n:
        raise IndexError(f"element range [{start}, {stop}) outside [0, {n})")
    return _mapped_pairs(path, la, lb, a.file.id.get_vfd_handle(), start, stop)


def _mapped_pairs(path, la, lb, hdf5_fd, start, stop):
    if start == stop:
        return
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_ino != os.fstat(hdf5_fd).st_ino:
            raise OSError(f"{path} was replaced while open")
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        cuts = np.concatenate([la.run_starts, lb.run_starts])
        cuts = np.unique(cuts[(cuts > start) & (cuts < stop)])
        bounds = [start, *cuts.tolist(), stop]
        for lo, hi in itertools.pairwise(bounds):
            yield _view(mapped, la, lo, hi), _view(mapped, lb, lo, hi)
    finally:
        # views handed out are gone once the consumer moves on; unmapping with one still
        # alive would raise, so leave that case to the garbage collector
        try:
            mapped.close()
        except BufferError:
            pass


def _view(mapped: mmap.mmap, layout: RawLayout, lo: int, hi: int) -> np.ndarray:
    i = int(np.searchsorted(layout.run_starts, lo, side="right")) - 1
    offset = int(layout.run_offsets[i]) + (lo - int(layout.run_starts[i])) * layout.dtype.itemsize
    return np.frombuffer(mapped, dtype=layout.dtype, count=hi - lo, offset=offset)


@dataclass(frozen=True)
class WriteTarget:
    """Where the elements of a contiguous, allocated dataset lie in a local file: what a
    task needs to write them (see :func:`write_at`)."""

    path: str
    inode: int
    offset: int
    dtype: np.dtype
    length: int


def writable_in_place(file: h5py.File) -> bool:
    """Whether datasets of ``file`` can be written with :func:`write_at`: a local file
    (default driver) open for writing, still at its path."""
    return _writable_inode(file) is not None


def _writable_inode(file: h5py.File) -> int | None:
    """The inode of ``file`` if :func:`writable_in_place`, else None."""
    try:
        if file.driver != "sec2" or file.mode != "r+":
            return None
        inode = os.fstat(file.id.get_vfd_handle()).st_ino
        return inode if os.stat(file.filename).st_ino == inode else None
    except (OSError, ValueError):
        return None


def write_target(dset: h5py.Dataset) -> WriteTarget | None:
    """The address of ``dset``'s elements if it is a contiguous, unfiltered, allocated
    numeric dataset of a file :func:`writable_in_place`; None otherwise (and for empty
    datasets, which have no storage)."""
    f = dset.file
    inode = _writable_inode(f)
    if inode is None or dset.dtype.kind not in "biuf" or not dset.size:
        return None
    plist = dset.id.get_create_plist()
    if plist.get_layout() != h5py.h5d.CONTIGUOUS or plist.get_nfilters():
        return None
    offset = dset.id.get_offset()
    if offset is None or dset.id.get_storage_size() < dset.size * dset.dtype.itemsize:
        return None
    return WriteTarget(f.filename, inode, int(offset), np.dtype(dset.dtype), int(dset.size))


#: elements converted at a time when the values' dtype differs from the target's: one
#: reused buffer instead of a converted copy of the whole block (whose fresh pages cost
#: more to fault in than the conversion itself)
_CONVERT_BYTES = 4 << 20


def write_at(target: WriteTarget, start: int, values: np.ndarray) -> None:
    """Write ``values`` (converted to the target's dtype, C order) as elements
    ``start, start + 1, ...`` of ``target`` (flat positions, C order for n-d datasets)."""
    values = np.asarray(values)
    n = values.size
    if start < 0 or start + n > target.length:
        raise IndexError(
            f"elements [{start}, {start + n}) outside [0, {target.length}) of the "
            f"dataset at byte {target.offset} of {target.path}"
        )
    if not n:
        return
    itemsize = target.dtype.itemsize
    fd = os.open(target.path, os.O_WRONLY)
    try:
        if os.fstat(fd).st_ino != target.inode:
            raise OSError(f"{target.path} was replaced while being written")
        if values.dtype == target.dtype and values.flags.c_contiguous:
            with _file_lock(target):
                _pwrite_all(fd, values.reshape(-1), target.offset + start * itemsize, target.path)
            return
        flat = values.reshape(-1)  # a copy only if not contiguous
        step = max(1, _CONVERT_BYTES // itemsize)
        buf = np.empty(min(step, n), dtype=target.dtype)
        for lo in range(0, n, step):
            piece = buf[: min(step, n - lo)]
            piece[...] = flat[lo : lo + len(piece)]
            with _file_lock(target):
                _pwrite_all(fd, piece, target.offset + (start + lo) * itemsize, target.path)
    finally:
        os.close(fd)


#: one lock per file written in place (by inode), see :func:`_file_lock`
_write_locks: dict[tuple[str, int], threading.Lock] = {}


def _file_lock(target: WriteTarget) -> threading.Lock:
    """The lock this process's writes to ``target``'s file take.

    Buffered writes to one file are serialised by the kernel anyway (ext4 and xfs hold the
    inode's lock for the whole copy), and a thread waiting there spins on a CPU: measured,
    4 % of concat_on_disk's CPU time with two writer threads. Waiting on this lock instead
    leaves the CPU to threads that compute the next blocks.
    """
    key = (target.path, target.inode)
    lock = _write_locks.get(key)
    if lock is None:
        with _lock:
            lock = _write_locks.setdefault(key, threading.Lock())
            if len(_write_locks) > _CAPACITY:  # forget locks of files no one writes now
                for k in [k for k, v in _write_locks.items() if k != key and not v.locked()]:
                    del _write_locks[k]
    return lock


def _pwrite_all(fd: int, values: np.ndarray, offset: int, path: str) -> None:
    view = memoryview(values).cast("B")
    done = 0
    while done < len(view):
        n = os.pwrite(fd, view[done:], offset + done)
        if n <= 0:
            raise OSError(f"could not write {len(view) - done} bytes to {path}")
        done += n
