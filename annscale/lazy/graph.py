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

__all__ = [
    "digest", "array_from_tasks", "array_from_block_tasks", "AnnscaleArray", "StoredArray",
]  # fmt: skip


class AnnscaleArray(da.Array):
    """A dask array whose ``.compute()`` runs on annscale's scheduler by default.

    That is :func:`annscale.scheduler.default_scheduler`: ``annscale.settings.scheduler``, an
    active distributed client, or else dask's threaded scheduler passed directly — dask
    itself imports ``distributed`` on a process's first compute just to look for a client
    (about half a second). An explicit ``scheduler=`` is honoured as in dask.
    """

    __slots__ = ()

    def compute(self, **kwargs: Any) -> Any:
        if "scheduler" not in kwargs and "get" not in kwargs:
            from ..scheduler import default_scheduler

            kwargs["scheduler"] = default_scheduler()
        return super().compute(**kwargs)


def _as_annscale(x: Any) -> Any:
    if type(x) is da.Array:
        return AnnscaleArray(x.dask, x.name, x.chunks, meta=x._meta)
    return x


def _on_annscale(name: str):
    base = getattr(da.Array, name)

    def method(self, *args, **kwargs):
        return _as_annscale(base(self, *args, **kwargs))

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


class StoredArray(AnnscaleArray):
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

    def sum(self, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
        if out is None and split_every is None:
            from .reductions import stored_major_sum

            fast = stored_major_sum(self, axis, dtype=dtype, keepdims=keepdims)
            if fast is not None:
                return _as_annscale(fast)
        return _as_annscale(da.Array.sum(self, axis, dtype, keepdims, split_every, out))

    def mean(self, axis=None, dtype=None, keepdims=False, split_every=None, out=None):
        if out is None and split_every is None:
            from .reductions import stored_major_sum

            fast = stored_major_sum(self, axis, dtype=dtype, keepdims=keepdims, mean=True)
            if fast is not None:
                return _as_annscale(fast)
        return _as_annscale(da.Array.mean(self, axis, dtype, keepdims, split_every, out))

    # the other reductions compute on annscale's scheduler too
    min = _on_annscale("min")
    max = _on_annscale("max")
    var = _on_annscale("var")
    std = _on_annscale("std")


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
