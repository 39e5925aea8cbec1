"""A per-process cache of open store roots, keyed by :class:`Location`.

Tasks of a lazy graph carry a :class:`Location`, never a handle; each worker process opens
the store the first time one of its tasks needs it and keeps it open for the next tasks.
The cache is a small LRU: evicted roots are closed. It is safe across ``fork`` (a child
never reuses its parent's HDF5/zarr handles: the cache notices the new process id and starts
empty, leaving the parent's handles alone) and the cache itself is never pickled.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from contextlib import ExitStack

from .elements import Group
from .location import Location, as_location
from .open import StoreKind, open_root

__all__ = ["get_root", "clear", "evict", "cached_locations", "set_capacity"]

_lock = threading.RLock()
_roots: OrderedDict[Location, tuple[Group, ExitStack]] = OrderedDict()
_state = {"pid": os.getpid(), "capacity": 32}


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
        if hit is not None:
            _roots.move_to_end(loc)
            return hit[0]
        stack = ExitStack()
        root = stack.enter_context(open_root(loc, "r", kind=kind))
        _roots[loc] = (root, stack)
        while len(_roots) > _state["capacity"]:
            _, (_, old) = _roots.popitem(last=False)
            old.close()
        return root


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
