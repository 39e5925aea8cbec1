"""Resumable writes: a small manifest of completed write tasks, kept in the staging area.

Layout (one directory per store, normally ``<staging>/.annscale-manifest/``)::

    <manifest>/<quoted element path>/plan.json        fingerprint + what was planned
    <manifest>/<quoted element path>/done/<task id>   one empty file per completed task

A task records itself only *after* its chunks are written, so a task listed as done
never needs redoing; a task killed midway is simply not listed and runs again (its chunks
are rewritten whole, so a half-written chunk is overwritten). The plan fingerprint (shapes,
dtypes, chunking, nonzeros per block) must match for the completed tasks to be reused;
a different plan discards the element's manifest. Recording costs one tiny file write per
task (one PUT on object stores); reading the manifest is one directory listing per element.

Everything here is picklable (a :class:`Location` and strings), so tasks on remote
workers record completion themselves. The caller removes the manifest
(:meth:`Manifest.remove`) before publishing the staged store.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fsspec.implementations.local import LocalFileSystem

from ..errors import StorageError
from ..storage.location import Location, as_location

__all__ = ["MANIFEST_DIR", "Manifest", "ElementManifest", "fingerprint"]

MANIFEST_DIR = ".annscale-manifest"


def fingerprint(plan: Mapping[str, Any]) -> str:
    """A stable hash of a JSON-able plan description (sorted keys)."""
    text = json.dumps(plan, sort_keys=True, default=_jsonable)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _jsonable(v: Any) -> Any:
    if hasattr(v, "tolist"):
        return v.tolist()
    return repr(v)


def _join(loc: Location, *parts: str) -> Location:
    return Location("/".join([loc.url.rstrip("/"), *parts]), loc.storage_options)


class Manifest:
    """The manifest of one staged store.

    Parameters
    ----------
    location
        Directory holding the manifest (created on first use), e.g.
        ``Manifest.in_staging(staging_location)``.
    resume
        Reuse completed tasks recorded by an earlier, interrupted write with the same plan.
        When False, any earlier record for an element is discarded when it is written.
    """

    def __init__(self, location: Location | str, *, resume: bool = False):
        self.location = as_location(location)
        self.resume = resume

    @classmethod
    def in_staging(cls, staging: Location | str, *, resume: bool = False) -> Manifest:
        """The manifest in ``<staging>/.annscale-manifest``."""
        return cls(_join(as_location(staging), MANIFEST_DIR), resume=resume)

    def element(
        self, element: str, plan: Mapping[str, Any], *, cache_key: str | None = None
    ) -> ElementManifest:
        """Open (or start afresh) the record of ``element`` for a write with ``plan``.

        ``cache_key`` identifies the input (e.g. a dask array's name) so that planning
        results stored with :meth:`ElementManifest.remember` can be reused on resume.
        """
        loc = _join(self.location, quote(element.strip("/") or "_root", safe=""))
        fp = fingerprint(plan)
        fs = loc.filesystem()
        previous = _read_json(fs, _join(loc, "plan.json").path) if self.resume else None
        resumed = previous is not None and previous.get("fingerprint") == fp
        if not resumed:
            _remove(fs, loc.path)
            fs.makedirs(_join(loc, "done").path, exist_ok=True)
            _write_json(fs, _join(loc, "plan.json").path, {"fingerprint": fp, "plan": plan})
        return ElementManifest(loc, fp, resumed)

    def lookup(self, element: str, cache_key: str) -> dict[str, Any] | None:
        """What an earlier write of ``element`` remembered for input ``cache_key``, if resuming."""
        if not self.resume:
            return None
        loc = _join(self.location, quote(element.strip("/") or "_root", safe=""))
        got = _read_json(loc.filesystem(), _join(loc, "memo.json").path)
        if got is None or got.get("cache_key") != cache_key:
            return None
        return got.get("value")

    def remember(self, element: str, cache_key: str, value: Any) -> None:
        """Store a planning result (e.g. nonzeros per block) for a later resume."""
        loc = _join(self.location, quote(element.strip("/") or "_root", safe=""))
        fs = loc.filesystem()
        fs.makedirs(loc.path, exist_ok=True)
        _write_json(fs, _join(loc, "memo.json").path, {"cache_key": cache_key, "value": value})

    def has_progress(self) -> bool:
        """Whether any write task is recorded as complete (one listing of the manifest)."""
        fs = self.location.filesystem()
        try:
            names = fs.find(self.location.path)
        except FileNotFoundError:
            return False
        return any("/done/" in n for n in names)

    def remove(self) -> None:
        """Delete the whole manifest (call before publishing the staged store)."""
        _remove(self.location.filesystem(), self.location.path)

    def __repr__(self) -> str:
        return f"Manifest({self.location.url!r}, resume={self.resume})"


@dataclass(frozen=True)
class ElementManifest:
    """Completed tasks of one element's write; picklable, used inside tasks."""

    location: Location
    fingerprint: str
    resumed: bool = False
    _done_dir: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_done_dir", _join(self.location, "done").path)

    def done(self) -> frozenset[str]:
        """Ids of the tasks recorded as complete (one listing)."""
        fs = self.location.filesystem()
        try:
            names = fs.ls(self._done_dir, detail=False)
        except FileNotFoundError:
            return frozenset()
        return frozenset(n.rstrip("/").rsplit("/", 1)[-1] for n in names)

    def record(self, task_id: str) -> None:
        """Mark ``task_id`` complete (after its chunks are written)."""
        fs = self.location.filesystem()
        try:
            fs.pipe_file(f"{self._done_dir}/{task_id}", b"")
        except OSError as e:
            raise StorageError(
                f"cannot record completed write task {task_id!r}: {e}", source=self.location.url
            ) from e


def _read_json(fs, path: str) -> dict[str, Any] | None:
    try:
        with fs.open(path, "rb") as f:
            return json.loads(f.read())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_json(fs, path: str, value: Any) -> None:
    data = json.dumps(value, sort_keys=True, default=_jsonable).encode()
    if isinstance(fs, LocalFileSystem):
        # write beside, then rename: a killed write never leaves half a plan behind
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    else:  # object stores replace whole objects atomically
        fs.pipe_file(path, data)


def _remove(fs, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm(path, recursive=True)
    except FileNotFoundError:
        pass
