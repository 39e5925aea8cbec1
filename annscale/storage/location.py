"""Where data lives: a URL plus fsspec storage options, as a small picklable value.

A :class:`Location` is what task graphs carry instead of open file handles: it is
cheap to pickle, hashable (so it can key a per-process cache) and has a stable
``token`` used in deterministic dask task names.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import fsspec

__all__ = ["Location", "as_location"]


def _freeze(options: dict[str, Any] | None) -> str:
    return json.dumps(options or {}, sort_keys=True, default=repr)


@dataclass(frozen=True, eq=False)
class Location:
    """A file or store: ``url`` (local path or fsspec URL) and ``storage_options``."""

    url: str
    storage_options: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property  # asked for by every task that opens the store
    def protocol(self) -> str:
        """fsspec protocol (``"file"`` for local paths)."""
        proto = fsspec.utils.get_protocol(self.url)
        return "file" if proto == "local" else proto

    @property
    def is_local(self) -> bool:
        return self.protocol == "file"

    @property
    def path(self) -> str:
        """The path without protocol (an absolute OS path for local files)."""
        if self.is_local:
            return fsspec.utils.stringify_path(self.url).removeprefix("file://")
        return fsspec.core.strip_protocol(self.url)

    @property
    def name(self) -> str:
        """Last component of the path, without a trailing slash."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]

    def filesystem(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem(self.protocol, **self.storage_options)

    @property
    def token(self) -> str:
        """A short stable hash of url and options, for deterministic task names."""
        h = hashlib.sha1(f"{self.url}\0{_freeze(self.storage_options)}".encode())
        return h.hexdigest()[:16]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Location):
            return NotImplemented
        return self.url == other.url and _freeze(self.storage_options) == _freeze(
            other.storage_options
        )

    def __hash__(self) -> int:
        return hash((self.url, _freeze(self.storage_options)))

    def __str__(self) -> str:
        return self.url


def as_location(url: str | os.PathLike | Location, storage_options: dict | None = None) -> Location:
    """Normalise a path, URL or Location. Local paths become absolute.

    An open ``h5py.File`` or root ``zarr.Group`` (on a local, zip or fsspec store) stands for
    the file or store it was opened from: tasks reopen it by address, never share the handle.
    """
    if not isinstance(url, str | os.PathLike | Location):
        url, handle_options = _address_of_handle(url)
        storage_options = {**handle_options, **(storage_options or {})}
    if isinstance(url, Location):
        if storage_options:
            return Location(url.url, {**url.storage_options, **storage_options})
        return url
    s = fsspec.utils.stringify_path(url)
    proto = fsspec.utils.get_protocol(s)
    if proto in ("file", "local"):
        s = os.path.abspath(os.path.expanduser(s.removeprefix("file://")))
    return Location(s, dict(storage_options or {}))


def _address_of_handle(obj: Any) -> tuple[str, dict]:
    """URL and storage options of an open h5py file or zarr root group (see as_location)."""
    kind = type(obj).__module__.split(".")[0]
    if kind == "h5py" and hasattr(obj, "file") and obj.name == "/":
        return obj.file.filename, {}
    if kind == "zarr" and hasattr(obj, "store") and obj.path == "":
        store = obj.store
        name = type(store).__name__
        if name == "LocalStore":
            return str(store.root), {}
        if name == "ZipStore":
            return str(store.path), {}
        if name == "FsspecStore":
            return store.fs.unstrip_protocol(store.path), dict(store.fs.storage_options)
    msg = (
        f"cannot address {obj!r}: expected a path or URL, an h5py.File, or the root zarr.Group "
        "of a local, zip or fsspec store (tasks reopen stores by address, so in-memory stores "
        "and groups below the root cannot be read lazily)"
    )
    raise TypeError(msg)
