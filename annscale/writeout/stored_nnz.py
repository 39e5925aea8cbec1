"""Nonzeros per block of a lazy sparse array, from stored ``indptr`` instead of the data.

The zarr write of a sparse dask array needs every block's number of nonzeros before it
writes (:mod:`.zarr`, pass 1). Counting them computes every block, i.e. reads the input
twice. When the blocks are plain reads of stored sparse groups, the stored ``indptr`` already
says how many values each block holds: :func:`stored_block_nnz` recognises such graphs and
reads only ``indptr`` (a few bytes per row), so the data is read once.

Recognised block tasks (anything else makes the answer ``None``: count by computing):

* a lazily opened stored CSR/CSC group read along its major axis
  (:class:`annscale.lazy.readers.SparseRead` with no selection on the minor axis; ranges of
  rows, in any order or repeated through ``take``, are fine; a read that knows its
  nonzeros from opening, ``SparseRead.nnz``, reads nothing);
* a lazy concatenation chunk (:mod:`annscale.combine.lazy`) along the major axis whose
  reindexing of the minor axis keeps every stored column (outer joins, reorderings) and
  fills with zeros, over recognised blocks; and an all-zero fill chunk.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["stored_block_nnz"]


class _Unknown(Exception):
    """A block whose nonzeros cannot be told without computing it."""


def stored_block_nnz(x: Any, fmt: str) -> np.ndarray | None:
    """Nonzeros of each major-axis block of sparse dask array ``x`` (``fmt`` ``"csr"`` or
    ``"csc"``, one block along the minor axis), read from stored ``indptr``; ``None`` when
    some block is not a recognised read (see the module docstring)."""
    major = 0 if fmt == "csr" else 1
    if x.ndim != 2 or len(x.chunks[1 - major]) != 1:
        return None
    graph = x.__dask_graph__()
    layers = getattr(graph, "layers", None)
    resolver = _Resolver(graph, layers, fmt)
    out = np.zeros(len(x.chunks[major]), dtype=np.int64)
    try:
        resolver.find_spans()
        for b in range(len(out)):
            out[b] = resolver.nnz((x.name, b, 0) if major == 0 else (x.name, 0, b))
    except _Unknown:
        return None
    except Exception:  # unreadable indptr, odd graphs: computing the blocks will tell
        return None
    return out


class _Resolver:
    def __init__(self, graph: Mapping, layers: Mapping | None, fmt: str):
        self.graph, self.layers, self.fmt = graph, layers, fmt
        self.checked: set[Any] = set()  # take keys known to keep every column
        # per stored group: the rows all reads of the graph span, and that indptr once read
        self.spans: dict[tuple[Any, str], tuple[int, int]] = {}
        self.indptrs: dict[tuple[Any, str], np.ndarray] = {}

    def find_spans(self) -> None:
        """The rows read from each stored group by the graph's plain reads (its
        materialized layers only: nothing is generated)."""
        from dask.highlevelgraph import MaterializedLayer

        from ..lazy.readers import SparseRead

        for layer in (self.layers or {}).values():
            if not isinstance(layer, MaterializedLayer):
                continue
            for task in layer.mapping.values():
                if not (isinstance(task, tuple) and len(task) == 1):
                    continue
                read = task[0]
                if not isinstance(read, SparseRead) or len(read.starts) == 0:
                    continue
                key = (read.location, read.element)
                lo, hi = int(np.min(read.starts)), int(np.max(read.stops))
                if key in self.spans:
                    lo, hi = min(lo, self.spans[key][0]), max(hi, self.spans[key][1])
                self.spans[key] = (lo, hi)

    def task(self, key: Any) -> Any:
        if self.layers is not None and isinstance(key, tuple) and key[0] in self.layers:
            layer = self.layers[key[0]]
            if key in layer:
                return layer[key]
        try:
            return self.graph[key]
        except KeyError:
            raise _Unknown from None

    def nnz(self, key: Any) -> int:
        task = self.task(key)
        if not isinstance(task, tuple) or not task:
            raise _Unknown
        head = task[0]
        if len(task) == 1:
            return self._read_nnz(head)
        from ..combine import lazy as combine_lazy

        if head is combine_lazy._fill_chunk:
            _, _shape, fill_value, _dtype, sparse_out = task
            if sparse_out and _is_zero(fill_value):
                return 0
            raise _Unknown
        if head is combine_lazy._reindex_chunk:
            _, blocks, take, other, _n, _w, fill_value, _dtype, sparse_out = task
            # blocks joined along the minor axis, minor axis reindexed by ``take``
            if not sparse_out or other != (1 if self.fmt == "csr" else 0):
                raise _Unknown
            if not isinstance(blocks, list) or not blocks:
                raise _Unknown
            if take is not None:
                if not _is_zero(fill_value):
                    raise _Unknown
                if take not in self.checked:  # a take is shared by an input's blocks
                    self._check_keeps_every_column(self.task(take), blocks)
                    self.checked.add(take)
            return sum(self.nnz(k) for k in blocks)
        raise _Unknown

    def _check_keeps_every_column(self, take: Any, blocks: list) -> None:
        """The reindex drops no stored value: every joined column appears in ``take``."""
        if not isinstance(take, np.ndarray) or take.ndim != 1:
            raise _Unknown
        width = 0
        for k in blocks:
            shape = self._read_shape(self.task(k))
            width += shape[1] if self.fmt == "csr" else shape[0]
        kept = take[take >= 0]
        if len(kept) != width or (width and (kept.min() < 0 or kept.max() >= width)):
            raise _Unknown
        seen = np.zeros(width, dtype=bool)
        seen[kept] = True
        if not seen.all():
            raise _Unknown

    def _read_shape(self, task: Any) -> tuple[int, int]:
        read = _sparse_read(task, self.fmt)
        n_major = int(np.sum(read.stops - read.starts)) if read.take is None else len(read.take)
        return (n_major, read.n_minor) if self.fmt == "csr" else (read.n_minor, n_major)

    def _read_nnz(self, read: Any) -> int:
        read = _sparse_read((read,), self.fmt)
        if read.nnz is not None and read.take is None:  # known since the file was opened
            return int(read.nnz)
        starts = np.asarray(read.starts, dtype=np.int64)
        stops = np.asarray(read.stops, dtype=np.int64)
        if starts.size == 0:
            return 0
        lo, ip = self._indptr(read, int(starts.min()), int(stops.max()))
        if read.take is None:
            return int(np.sum(ip[stops - lo] - ip[starts - lo]))
        per_row = np.concatenate([np.diff(ip[a - lo : b - lo + 1]) for a, b in zip(starts, stops)])
        return int(per_row[np.asarray(read.take, dtype=np.intp)].sum())

    def _indptr(self, read: Any, lo: int, hi: int) -> tuple[int, np.ndarray]:
        """``(start, indptr[start:...])`` covering rows ``lo..hi`` of ``read``'s group: what
        all the graph's reads of that group span, read once when not too long, else the
        span of this read."""
        from ..lazy.readers import read_indptr

        key = (read.location, read.element)
        span = self.spans.get(key)
        if span is not None and span[0] <= lo and hi <= span[1]:
            if span[1] - span[0] + 1 <= _SPAN_ENTRIES:
                if key not in self.indptrs:
                    self.indptrs[key] = read_indptr(
                        read.location, read.element, span[0], span[1] + 1
                    )
                return span[0], self.indptrs[key]
        return lo, read_indptr(read.location, read.element, lo, hi + 1)


_SPAN_ENTRIES = 1 << 20
"""``indptr`` spans read once per group up to this length (8 MiB); longer ones per block."""


def _sparse_read(task: Any, fmt: str) -> Any:
    """The :class:`~annscale.lazy.readers.SparseRead` of a one-element task, or unknown."""
    from ..lazy.readers import SparseRead

    if not isinstance(task, tuple) or len(task) != 1 or not isinstance(task[0], SparseRead):
        raise _Unknown
    read = task[0]
    if read.format != fmt or read.minor is not None:
        raise _Unknown
    return read


def _is_zero(value: Any) -> bool:
    return bool(np.isscalar(value) and value == 0)
