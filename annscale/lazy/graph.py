"""Turn chunk read tasks into dask arrays, with deterministic names and no tokenizing of data.

Task names derive from the :class:`Location` token, the element path and a digest of the
selection (hashing index arrays with :mod:`hashlib`, never ``dask.base.tokenize`` on large
objects), so building the graph of a 10,000-chunk matrix is a cheap Python loop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import dask.array as da
import numpy as np
from dask.highlevelgraph import HighLevelGraph

__all__ = ["digest", "array_from_tasks", "array_from_block_tasks", "StoredArray"]


class StoredArray(da.Array):
    """A dask array read from a store (what lazy X, layers, ... are).

    Exactly a :class:`dask.array.Array`, except that computing it returns ordinary
    ``scipy.sparse.csr_matrix``/``csc_matrix`` (or numpy) rather than the chunk types of
    :mod:`annscale.lazy.sparse_chunks`. Arrays derived from it by dask operations are plain
    dask arrays (their sparse results keep the chunk types, which subclass scipy's).
    """

    __slots__ = ()

    def __dask_postcompute__(self):
        func, args = super().__dask_postcompute__()
        return _finalize_plain, (func, args)


def _finalize_plain(results, func, args):
    from .sparse_chunks import as_plain

    return as_plain(func(results, *args))


def digest(*parts: Any) -> str:
    """A short stable hash of strings, numbers, slices, tuples and numpy arrays."""
    h = hashlib.sha1()
    for p in parts:
        _feed(h, p)
    return h.hexdigest()[:20]


def _feed(h, p: Any) -> None:
    if isinstance(p, np.ndarray):
        h.update(b"nd")
        h.update(str(p.dtype).encode())
        h.update(str(p.shape).encode())
        h.update(np.ascontiguousarray(p).tobytes())
    elif isinstance(p, (tuple, list)):
        h.update(b"(")
        for q in p:
            _feed(h, q)
        h.update(b")")
    else:
        h.update(repr(p).encode())
    h.update(b"\0")


def array_from_tasks(
    name: str,
    tasks: Sequence[Any],
    chunks: tuple[tuple[int, ...], ...],
    meta: Any,
    *,
    axis: int = 0,
) -> da.Array:
    """A dask array whose blocks along ``axis`` are ``tasks[i]()`` (one block on other axes)."""
    ndim = len(chunks)
    dsk = {}
    for i, task in enumerate(tasks):
        key = [0] * ndim
        key[axis] = i
        dsk[(name, *key)] = (task,)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return StoredArray(graph, name, chunks, meta=meta)


def array_from_block_tasks(
    name: str, tasks: dict[tuple[int, ...], Any], chunks: tuple[tuple[int, ...], ...], meta: Any
) -> da.Array:
    """A dask array from ``{block index: task}`` covering every block of ``chunks``."""
    dsk = {(name, *idx): (task,) for idx, task in tasks.items()}
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=())
    return StoredArray(graph, name, chunks, meta=meta)


def _register_to_memory() -> None:
    from ..core.arrays import to_memory
    from ..scheduler import compute_one

    @to_memory.register(StoredArray)
    def _stored_to_memory(x: StoredArray) -> object:
        return compute_one(x)


_register_to_memory()
