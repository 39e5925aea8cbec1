"""Atomic publication of written stores: write beside the target, publish when complete.

Every write of an ``.h5ad`` file or a zarr store (directory or ``.zip``) goes to a staging
path beside the target, named ``.<name>.annscale-staging-<random>``. Only when the writer
has finished without error is it published:

* a file replaces the target with one ``os.replace`` (atomic on POSIX and Windows);
* a directory cannot be replaced atomically when the target exists, so the old directory is
  first renamed aside (``.<name>.annscale-old-<random>``), the new one renamed in, and the old
  one deleted. A reader sees either the complete old store or the complete new one.

If the writer raises, the staging path is removed and the previous target is untouched.

Remote targets: a file (``.h5ad``) is written locally, then uploaded as one object (the
previous object stays readable until the upload completes). A zarr store is staged under
a prefix beside the target in the same bucket (:class:`StagedStore`, which remote workers
write to directly) and published by copying data first and the metadata that makes the
store readable last (:func:`publish_tree`).

:func:`check_not_reading` refuses to overwrite a store an object is still reading lazily.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from dask._task_spec import GraphNode

from ..errors import WriteConflictError
from .location import Location, as_location

__all__ = [
    "atomic_write",
    "check_not_reading",
    "staging_path",
    "sources_of",
    "publish_tree",
    "StagedStore",
]


def staging_path(target: str, tag: str = "staging") -> str:
    """A fresh path beside ``target``: ``<dir>/.<name>.annscale-<tag>-<random>``."""
    parent, name = os.path.split(os.path.abspath(target).rstrip(os.sep))
    return os.path.join(parent, f".{name}.annscale-{tag}-{secrets.token_hex(4)}")


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        os.remove(path)


def _publish_local(staging: str, target: str) -> None:
    if not os.path.lexists(target):
        os.replace(staging, target)
        return
    if os.path.isfile(staging) and not os.path.isdir(target):
        os.replace(staging, target)
        return
    old = staging_path(target, "old")
    os.replace(target, old)
    try:
        os.replace(staging, target)
    except BaseException:
        os.replace(old, target)  # put the previous store back
        raise
    _remove(old)


@contextmanager
def atomic_write(url: str | os.PathLike | Location, storage_options: dict | None = None):
    """Yield a local path to write to; publish it at ``url`` when the block succeeds.

    The yielded path does not exist yet; the writer creates a file or a directory there.
    Remote targets are written to a local temporary path and uploaded when complete: a file
    is one object ``put`` (the previous object stays readable until the upload completes), a
    directory is published with :func:`publish_tree` (data first, metadata last).
    """
    loc = as_location(url, storage_options)
    if loc.is_local:
        target = loc.path
        staging = staging_path(target)
        try:
            yield staging
            if not os.path.lexists(staging):
                raise FileNotFoundError(f"the writer created nothing at {staging!r}")
            _publish_local(staging, target)
        finally:
            _remove(staging)
        _forget(loc)
        return
    with tempfile.TemporaryDirectory(prefix="annscale-upload-") as tmp:
        local = os.path.join(tmp, loc.name)
        yield local
        if os.path.isdir(local):
            publish_tree(Location(local), loc)
        else:
            loc.filesystem().put_file(local, loc.path)
    _forget(loc)


def _forget(loc: Location) -> None:
    """Drop this process's cached handle of a replaced store (it shows the old content)."""
    from .cache import evict

    evict(loc)


# ----------------------------------------------------------------------------- zarr staging

#: file names of zarr metadata: a store is readable once its root metadata exists
METADATA_NAMES = frozenset({"zarr.json", ".zgroup", ".zarray", ".zattrs", ".zmetadata"})
#: the staging record: which target and which write (fingerprint) a staging store is for
STAGING_RECORD = ".annscale-staging.json"


def _join(loc: Location, *parts: str) -> Location:
    return Location("/".join([loc.url.rstrip("/"), *parts]), loc.storage_options)


def _relative_files(fs: Any, root: str) -> list[str]:
    root = root.rstrip("/")
    return sorted(p[len(root) + 1 :] for p in fs.find(root) if p.startswith(root + "/"))


def publish_tree(staging: Location, target: Location) -> None:
    """Copy a complete store (directory tree) from ``staging`` to object-store ``target``.

    Order, so that a reader never sees the new metadata before its data: the old root
    metadata is deleted first (during the publish the target reads as "not a zarr store"
    rather than as a mix of old and new), then data objects are copied, then keys of the
    old store that the new one lacks are deleted, then array/group metadata, and the root
    metadata (``zarr.json``; v2 ``.zgroup``/``.zattrs`` then ``.zmetadata``) last. Object
    stores have no multi-key transaction: a publish killed midway leaves the target
    unreadable (never silently mixed); the staged store is still complete.
    """
    fs = target.filesystem()
    src_fs = staging.filesystem()
    files = [f for f in _relative_files(src_fs, staging.path) if f != STAGING_RECORD]
    root_meta = [f for f in files if f in METADATA_NAMES]
    root_meta.sort(key=lambda f: (f == ".zmetadata", f == "zarr.json", f))
    other_meta = [
        f for f in files if f not in METADATA_NAMES and f.rsplit("/", 1)[-1] in METADATA_NAMES
    ]
    data = [f for f in files if f.rsplit("/", 1)[-1] not in METADATA_NAMES]
    old: list[str] = []
    if fs.exists(target.path):
        old = _relative_files(fs, target.path)
        stale_root = [f for f in old if f in METADATA_NAMES]
        if stale_root:
            fs.rm([f"{target.path}/{f}" for f in stale_root])
    _copy(src_fs, fs, staging, target, data)
    stale = sorted(set(old) - set(files) - METADATA_NAMES)
    if stale:
        fs.rm([f"{target.path}/{f}" for f in stale])
    _copy(src_fs, fs, staging, target, other_meta)
    for f in root_meta:  # one by one, in order: .zmetadata / zarr.json makes it readable
        _copy(src_fs, fs, staging, target, [f])
    fs.invalidate_cache()


def _copy(src_fs: Any, fs: Any, staging: Location, target: Location, names: list[str]) -> None:
    if not names:
        return
    src = [f"{staging.path}/{f}" for f in names]
    dst = [f"{target.path}/{f}" for f in names]
    if staging.is_local and not target.is_local:
        fs.put(src, dst)
    elif type(src_fs) is type(fs):
        fs.copy(src, dst)  # server-side copies on object stores
    else:  # pragma: no cover - staging and target always share a filesystem or upload
        for a, b in zip(src, dst):
            fs.pipe_file(b, src_fs.cat_file(a))


class StagedStore:
    """A zarr store written beside its target and published only when complete.

    The staging store is ``<parent>/.<name>.annscale-staging-<random>`` on the target's own
    filesystem (a local directory, or a prefix in the same bucket, so that remote workers
    write to it directly). It holds :data:`STAGING_RECORD`, naming the target and the
    write's ``fingerprint``; :meth:`find` uses it to resume an interrupted write.

    :meth:`publish` renames the directory over a local target (the old one is renamed aside
    first) or copies it to an object store with :func:`publish_tree`, then removes it.
    """

    def __init__(self, target: Location, location: Location, *, resumed: bool = False):
        self.target = target
        self.location = location
        self.resumed = resumed

    @classmethod
    def create(cls, target: Location) -> StagedStore:
        """A new, empty staging store (directory or prefix) for ``target``."""
        if target.is_local:
            loc = Location(staging_path(target.path))
            os.makedirs(loc.path)
        else:
            loc = Location(_url(target, _remote_staging(target)), target.storage_options)
        return cls(target, loc)

    @classmethod
    def find(cls, target: Location) -> list[tuple[StagedStore, dict[str, Any]]]:
        """Staging stores left beside ``target`` by interrupted writes, with their records
        (``{}`` for one whose structure was not complete)."""
        fs = target.filesystem()
        parent, name = _split(target)
        try:
            candidates = fs.glob(f"{parent}/.{name}.annscale-staging-*")
        except FileNotFoundError:
            return []
        found = []
        for path in sorted(candidates):
            if target.is_local and not os.path.isdir(path):
                continue
            loc = Location(path if target.is_local else _url(target, path), target.storage_options)
            record = _read_record(loc) or {}
            if record.get("target", target.url) == target.url:
                found.append((cls(target, loc, resumed=bool(record.get("ready"))), record))
        return found

    def _write_record(self, record: dict[str, Any]) -> None:
        fs = self.location.filesystem()
        fs.pipe_file(f"{self.location.path}/{STAGING_RECORD}", json.dumps(record).encode())

    def mark_ready(self, fingerprint: str) -> None:
        """Record that the structure is written: a resume may reuse this staging store."""
        self._write_record({"target": self.target.url, "fingerprint": fingerprint, "ready": True})

    def publish(self) -> None:
        """Replace the target by the staged store (see the class docstring); removes staging."""
        fs = self.location.filesystem()
        record = f"{self.location.path}/{STAGING_RECORD}"
        if fs.exists(record):
            fs.rm(record)
        if self.target.is_local and self.target.path.endswith(".zip"):
            packed = staging_path(self.target.path, "packing")
            try:
                _pack_zip(self.location.path, packed)
                _publish_local(packed, self.target.path)
            finally:
                _remove(packed)
            self.discard()
        elif self.target.is_local:
            _publish_local(self.location.path, self.target.path)
        else:
            publish_tree(self.location, self.target)
            self.discard()
        _forget(self.target)

    def discard(self) -> None:
        """Delete the staged store."""
        if self.location.is_local:
            _remove(self.location.path)
            return
        fs = self.location.filesystem()
        if fs.exists(self.location.path):
            fs.rm(self.location.path, recursive=True)

    def __repr__(self) -> str:
        return f"StagedStore({self.location.url!r} -> {self.target.url!r})"


def _pack_zip(directory: str, target: str) -> None:
    """Pack a zarr directory into a zip store (members uncompressed, as zarr's ZipStore)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for base, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(base, name)
                zf.write(full, os.path.relpath(full, directory).replace(os.sep, "/"))


def _split(target: Location) -> tuple[str, str]:
    path = target.path.rstrip("/")
    parent, _, name = path.rpartition("/")
    return parent, name


def _remote_staging(target: Location) -> str:
    parent, name = _split(target)
    return f"{parent}/.{name}.annscale-staging-{secrets.token_hex(4)}"


def _url(target: Location, path: str) -> str:
    return f"{target.protocol}://{path}"


def _read_record(loc: Location) -> dict[str, Any] | None:
    try:
        with loc.filesystem().open(f"{loc.path}/{STAGING_RECORD}", "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


# ----------------------------------------------------------------------------- lazy inputs


def sources_of(obj: Any) -> list[Location]:
    """The stores ``obj`` reads from lazily.

    Found in ``__annscale_sources__`` (Locations or URLs), the ``filename`` of anndata-style
    backed objects, and the tasks of every lazy array element (``X``, ``layers``, ``obsm``,
    ``varm``, ``obsp``, ``varp``, ``raw.X``): read tasks carry the :class:`Location` they
    read, so a subset, a computation on it or a lazy concatenation of many files lists
    every file it reads. Reads no data (deferred elements are materialised, which reads
    metadata such as ``indptr`` spans).
    """
    found: Iterable[Any] = getattr(obj, "__annscale_sources__", None) or ()
    out = [as_location(s) if not isinstance(s, Location) else s for s in found]
    filename = getattr(obj, "filename", None) if getattr(obj, "isbacked", False) else None
    if filename is not None:
        out.append(as_location(filename))
    seen: set[int] = set()
    for value in _lazy_elements(obj):
        _locations_in(value, out, seen)
    unique: dict[Location, None] = dict.fromkeys(out)
    return list(unique)


def _lazy_elements(obj: Any) -> Iterator[Any]:
    """The array elements of an AnnData-like ``obj`` that may be lazy."""
    for name in ("layers", "obsm", "varm", "obsp", "varp"):
        mapping = getattr(obj, name, None)
        if mapping is None or not hasattr(mapping, "keys"):
            continue
        for key in list(mapping.keys()):
            yield mapping[key]
    for holder in (obj, getattr(obj, "raw", None)):
        if holder is not None and hasattr(holder, "X"):
            try:
                yield holder.X
            except (AttributeError, ValueError):  # e.g. no X
                continue


_ATOMS = (str, bytes, int, float, complex, bool, type(None), np.ndarray, np.generic)


def _locations_in(value: Any, out: list[Location], seen: set[int], depth: int = 0) -> None:
    """Append every :class:`Location` reachable from ``value`` (tasks, graphs, sources)."""
    if isinstance(value, Location):
        out.append(value)
        return
    if isinstance(value, _ATOMS) or depth > 16 or id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, type):
        return
    graph = getattr(value, "__dask_graph__", None)
    if callable(graph) and not isinstance(value, GraphNode):
        dsk = graph()
        for task in (dsk or {}).values():
            _locations_in(task, out, seen, 0)
        return
    if isinstance(value, GraphNode):
        children: Iterable[Any] = (
            getattr(value, "func", None),
            getattr(value, "args", ()),
            getattr(value, "kwargs", {}),
            getattr(value, "value", None),
        )
    elif isinstance(value, (tuple, list, set, frozenset)):
        children = value
    elif isinstance(value, dict):
        children = value.values()
    elif isinstance(value, functools.partial):
        children = (value.func, value.args, value.keywords)
    elif dataclasses.is_dataclass(value):
        children = [getattr(value, f.name, None) for f in dataclasses.fields(value)]
    else:
        return
    for child in children:
        _locations_in(child, out, seen, depth + 1)


def _same_store(a: Location, b: Location) -> bool:
    if a.is_local and b.is_local:
        return os.path.realpath(a.path) == os.path.realpath(b.path)
    return a.protocol == b.protocol and a.path.rstrip("/") == b.path.rstrip("/")


def check_not_reading(location: str | os.PathLike | Location, obj: Any) -> None:
    """Raise :class:`WriteConflictError` if ``obj`` still reads lazily from ``location``.

    Covers every file a lazy object's tasks read (see :func:`sources_of`), e.g. each input
    of a lazy concatenation.
    """
    loc = as_location(location)
    for src in sources_of(obj):
        if _same_store(src, loc):
            raise WriteConflictError(
                "cannot overwrite a store this object is still reading from lazily; "
                "write to another path or call .to_memory() first",
                source=loc.url,
                element="/",
            )
