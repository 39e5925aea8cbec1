"""A per-process cache of open store roots, keyed by :class:`Location`.

Tasks of a lazy graph carry a :class:`Location`, never a handle; each worker process opens
the store the first time one of its tasks needs it and keeps it open for the next tasks.
The cache is a small LRU: evicted roots are closed. It is safe across ``fork`` (a child
never reuses its parent's HDF5/zarr handles: the cache notices the new process id and starts
empty, leaving the parent's handles alone) and the cache itself is never pickled.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections import OrderedDict
from contextlib import ExitStack

from ..errors import StorageError
from .elements import Group
from .location import Location, as_location
from .open import StoreKind, open_root

__all__ = ["get_root", "clear", "evict", "cached_locations", "set_capacity"]

_lock = threading.RLock()
_roots: OrderedDict[Location, tuple[Group, ExitStack]] = OrderedDict()
_state = {"pid": os.getpid(), "capacity": 32}
#: thread id -> the location it fetched last (never closed by eviction while pinned)
_pinned: dict[int, Location] = {}


def _check_fork() -> None:
    pid = os.getpid()
    if _state["pid"] != pid:
        # forked child: the parent's handles are not ours to use or close
        _roots.clear()
        _state["pid"] = pid


def get_root(location: Location | str, *, kind: StoreKind | None = None) -> Group:
    """The open root group of ``location`` in this process (opened read-only on first use)."""
    loc = as_location(location)
    with _lock:
        _check_fork()
        hit = _roots.get(loc)
        _pinned[threading.get_ident()] = loc
        if hit is not None:
            _roots.move_to_end(loc)
            return hit[0]
        stack = ExitStack()
        try:
            root = stack.enter_context(open_root(loc, "r", kind=kind))
        except StorageError as e:
            raise _on_worker(e) from e
        _roots[loc] = (root, stack)
        _evict_unpinned()
        return root


def _evict_unpinned() -> None:
    """Close least recently used roots beyond the capacity, except those still pinned: the
    root each live thread fetched last may be in use by it (closing it would break reads of
    other threads, e.g. a collection of more inputs than the capacity read in parallel)."""
    live = {t.ident for t in threading.enumerate()}
    for ident in [i for i in _pinned if i not in live]:
        del _pinned[ident]
    in_use = set(_pinned.values())
    for loc in list(_roots):
        if len(_roots) <= _state["capacity"]:
            break
        if loc not in in_use:
            _roots.pop(loc)[1].close()


def _on_worker(error: StorageError) -> StorageError:
    """``error`` naming the distributed worker (and its host) that could not open the store.

    Unchanged outside a worker. On a worker the usual cause is a path that exists only on
    the client's machine, so the message says where the store must live.
    """
    worker = None
    if "distributed" in sys.modules:  # never import distributed just to ask
        from distributed import get_worker

        try:
            worker = get_worker()
        except ValueError:
            pass
    if worker is None:
        return error
    return StorageError(
        f"{error.message}; on dask worker {worker.address} (host {socket.gethostname()}): "
        "workers open inputs themselves, so the path must be on storage every worker can "
        "reach (a shared filesystem or an object store such as s3:// or gs://)",
        source=error.source,
        element=error.element,
    )


def clear() -> None:
    """Close and forget every cached root of this process."""
    with _lock:
        _check_fork()
        while _roots:
            _, (_, stack) = _roots.popitem(last=False)
            stack.close()


def evict(location: Location | str) -> None:
    """Close and forget one root (e.g. after the file was rewritten)."""
    loc = as_location(location)
    with _lock:
        _check_fork()
        hit = _roots.pop(loc, None)
        if hit is not None:
            hit[1].close()


def cached_locations() -> list[Location]:
    with _lock:
        _check_fork()
        return list(_roots)


def set_capacity(n: int) -> None:
    """Keep at most ``n`` roots open (default 32); closes the least recently used beyond."""
    if n < 1:
        raise ValueError("capacity must be at least 1")
    with _lock:
        _state["capacity"] = n
        while len(_roots) > n:
            _, (_, old) = _roots.popitem(last=False)
            old.close()
