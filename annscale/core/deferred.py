"""Deferred values: arrays the container holds without reading them.

A *deferred value* is any object with

* ``__annscale_deferred__ = True`` (class or instance attribute),
* ``.shape``, ``.dtype`` and ``.ndim`` (known without reading data), and
* ``materialize()``, returning the array to use (typically a dask array; no data is read
  by materialising a lazy source, only metadata).

Such values may be stored in ``X``, ``layers``, ``obsm``, ``varm``, ``obsp``, ``varp`` and
``raw.X``. The container validates their ``.shape`` without materialising; on first read it
calls ``materialize()`` once (under a lock) and caches the result (:class:`MaterializedCache`).
Subsetting a deferred value goes through :func:`annscale.core.index.subset_array`, where lazy
sources register a pushdown (a new deferred value, no I/O).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

__all__ = ["is_deferred", "materialize", "MaterializedCache"]


def is_deferred(x: Any) -> bool:
    """Whether ``x`` follows the deferred-value protocol (see module docstring)."""
    return getattr(x, "__annscale_deferred__", False) is True


def materialize(x: Any) -> Any:
    """``x.materialize()`` for deferred values (repeated while still deferred), else ``x``."""
    while is_deferred(x):
        x = x.materialize()
    return x


class MaterializedCache:
    """Per-object cache of materialised deferred values, keyed by ``(element, key)``.

    The stored deferred value stays the source of truth (so views can push their subset
    down to it); the cache holds what ``materialize()`` returned, computed at most once.
    Entries are dropped when the element is replaced (:meth:`discard`).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[Hashable, tuple[Any, Any]] = {}

    def get(self, slot: Hashable, value: Any) -> Any:
        """The materialised form of ``value`` (stored under ``slot``); plain values pass through."""
        if not is_deferred(value):
            return value
        with self._lock:
            hit = self._values.get(slot)
            if hit is not None and hit[0] is value:
                return hit[1]
            out = materialize(value)
            self._values[slot] = (value, out)
            return out

    def discard(self, slot: Hashable) -> None:
        with self._lock:
            self._values.pop(slot, None)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()

    def __getstate__(self) -> dict:
        return {"_values": dict(self._values)}

    def __setstate__(self, state: dict) -> None:
        self._lock = threading.Lock()
        self._values = state["_values"]
