"""Addresses of zarr arrays being written, and a per-process cache of their open handles.

Write tasks carry a :class:`ZarrTarget` (a :class:`Location`, an array path and the
write's plan token), never a zarr handle. The first task of a write that runs in a process
opens the store (one metadata read); later tasks of the same write in that process reuse
the handle. The plan token is part of the key so that a handle from an earlier write (with
other shapes) is never reused. The cache notices ``fork`` and starts empty in the child.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import zarr

from ..errors import StorageError
from ..storage.location import Location
from ..storage.open import open_root

__all__ = ["ZarrTarget", "open_target", "clear_cache"]

_CAPACITY = 64
_lock = threading.Lock()
_handles: OrderedDict[ZarrTarget, zarr.Array] = OrderedDict()
_state = {"pid": os.getpid()}


@dataclass(frozen=True)
class ZarrTarget:
    """A zarr array to write: store ``location``, array ``path`` inside it, plan ``token``."""

    location: Location
    path: str
    token: str

    @property
    def element(self) -> str:
        return "/" + self.path.strip("/")


def open_target(target: ZarrTarget) -> zarr.Array:
    """The writable zarr array for ``target`` (opened once per process and write)."""
    with _lock:
        if _state["pid"] != os.getpid():
            _handles.clear()
            _state["pid"] = os.getpid()
        arr = _handles.get(target)
        if arr is not None:
            _handles.move_to_end(target)
            return arr
    with open_root(target.location, "r+", kind="zarr") as root:
        try:
            arr = root.handle[target.path.strip("/")]
        except KeyError:
            raise StorageError(
                "array to write is missing from the staged store (was it deleted while writing?)",
                source=target.location.url,
                element=target.element,
            ) from None
    if not isinstance(arr, zarr.Array):
        raise StorageError(
            "expected an array to write, found a group",
            source=target.location.url,
            element=target.element,
        )
    with _lock:
        _handles[target] = arr
        while len(_handles) > _CAPACITY:
            _handles.popitem(last=False)
    return arr


def clear_cache() -> None:
    """Forget every cached handle of this process."""
    with _lock:
        _handles.clear()
