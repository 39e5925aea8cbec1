"""Direct reads of uncompressed 1-d HDF5 datasets of local files, by element range.

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
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import h5py
import numpy as np

__all__ = ["RawLayout", "raw_layout", "read_ranges"]


@dataclass(frozen=True)
class RawLayout:
    """Where the elements of a 1-d dataset lie in its file.

    ``run_starts[i]`` is the first element of run ``i``, stored contiguously from byte
    ``run_offsets[i]`` of the file (consecutive chunks adjacent on disk form one run);
    ``run_starts`` ends with the dataset length.
    """

    dtype: np.dtype
    run_starts: np.ndarray
    run_offsets: np.ndarray

    def read_into(self, fd: int, out: np.ndarray, start: int) -> None:
        """Fill ``out`` with elements ``[start, start + len(out))`` read from ``fd``."""
        itemsize = self.dtype.itemsize
        stop = start + out.size
        i = int(np.searchsorted(self.run_starts, start, side="right")) - 1
        pos = 0
        while pos < out.size:
            run_stop = int(self.run_starts[i + 1])
            take = min(stop, run_stop) - (start + pos)
            offset = int(self.run_offsets[i]) + (start + pos - int(self.run_starts[i])) * itemsize
            _pread_exact(fd, out[pos : pos + take], offset)
            pos += take
            i += 1


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
    if dset.ndim != 1 or dtype.kind not in "biuf" or dset.shape[0] == 0:
        return None
    n, itemsize = int(dset.shape[0]), dtype.itemsize
    plist = dset.id.get_create_plist()
    if plist.get_nfilters() or plist.get_external_count():
        return None
    layout = plist.get_layout()
    if layout == h5py.h5d.CONTIGUOUS:
        offset = dset.id.get_offset()
        if offset is None or dset.id.get_storage_size() < n * itemsize:
            return None
        return RawLayout(dtype, np.array([0, n], np.int64), np.array([offset], np.int64))
    if layout != h5py.h5d.CHUNKED:
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
    return RawLayout(dtype, np.append(starts[new_run], n), offsets[new_run])


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


def read_ranges(dset: h5py.Dataset, starts: np.ndarray, stops: np.ndarray) -> np.ndarray | None:
    """Elements ``[starts[i], stops[i])`` of ``dset``, concatenated; None if not raw-readable.

    Reads from the file directly (see the module docstring); ranges must lie within the
    dataset.
    """
    found = raw_layout(dset)
    if found is None:
        return None
    path, layout = found
    lengths = np.asarray(stops, np.int64) - np.asarray(starts, np.int64)
    n = int(layout.run_starts[-1])
    if len(lengths) and (np.any(lengths < 0) or np.min(starts) < 0 or np.max(stops) > n):
        raise IndexError(f"element ranges outside [0, {n}) of {dset.name}")
    out = np.empty(int(lengths.sum()), dtype=layout.dtype)
    # a descriptor per call (microseconds): nothing to close when files or caches go away
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_ino != os.fstat(dset.file.id.get_vfd_handle()).st_ino:
            return None  # replaced since HDF5 opened it: read through HDF5's own handle
        pos = 0
        for a, length in zip(np.asarray(starts).tolist(), lengths.tolist()):
            if length:
                layout.read_into(fd, out[pos : pos + length], a)
                pos += length
    finally:
        os.close(fd)
    return out
