"""The fingerprint of a zarr write: what a resume must match to reuse a staged store.

A write is identified by

* its *structure*: every key and value the element registry writes (metadata, attributes,
  ``obs``/``var``/``uns``, in-memory arrays), hashed as they are written by
  :class:`HashingStore` (a zarr store wrapper; with ``keep_data=False`` it keeps only
  metadata, so a resume can fingerprint an object without writing its data anywhere);
* its *dask elements*: store path, dask name (which derives from what the graph reads:
  file, element, selection, operations), shape, dtype, blocks and zarr layout;
* its *inputs on storage*: for every store the graph reads, a cheap identity (local:
  inode, size, modification time; object stores: ETag/size/modification time of the file
  or of the root metadata object), so a resume refuses after an input was rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from typing import Any

from zarr.abc.store import ByteRequest, Store
from zarr.core.buffer import Buffer, BufferPrototype
from zarr.storage import WrapperStore

from ..storage.atomic import METADATA_NAMES
from ..storage.location import Location

__all__ = ["HashingStore", "write_fingerprint", "source_identity"]


class HashingStore(WrapperStore):
    """A zarr store wrapper recording a SHA-256 of every value set, by key.

    With ``keep_data=False`` only metadata keys (``zarr.json``, ``.zarray``, ...) reach the
    wrapped store; chunks are hashed and dropped (reading them back gives the fill value).
    """

    def __init__(self, store: Store, *, keep_data: bool = True, hashes: dict | None = None):
        super().__init__(store)
        self.keep_data = keep_data
        self.hashes: dict[str, str] = {} if hashes is None else hashes

    def _with_store(self, store: Store) -> HashingStore:
        return type(self)(store, keep_data=self.keep_data, hashes=self.hashes)

    def _forward(self, key: str) -> bool:
        return self.keep_data or key.rsplit("/", 1)[-1] in METADATA_NAMES

    async def set(self, key: str, value: Buffer) -> None:
        self.hashes[key] = hashlib.sha256(value.to_bytes()).hexdigest()
        if self._forward(key):
            await self._store.set(key, value)

    async def set_if_not_exists(self, key: str, value: Buffer) -> None:
        if key not in self.hashes:
            await self.set(key, value)

    async def get(
        self, key: str, prototype: BufferPrototype, byte_range: ByteRequest | None = None
    ) -> Buffer | None:
        if not self._forward(key):
            return None
        return await self._store.get(key, prototype, byte_range)

    async def delete(self, key: str) -> None:
        self.hashes.pop(key, None)
        await self._store.delete(key)

    async def delete_dir(self, prefix: str) -> None:
        prefix = prefix.rstrip("/")
        for key in [k for k in self.hashes if not prefix or k.startswith(prefix + "/")]:
            del self.hashes[key]
        await self._store.delete_dir(prefix)

    def digest(self) -> str:
        """One hash of everything set so far (keys and values)."""
        h = hashlib.sha256()
        for key in sorted(self.hashes):
            h.update(f"{key}\0{self.hashes[key]}\0".encode())
        return h.hexdigest()


def source_identity(location: Location) -> dict[str, Any]:
    """A cheap identity of a stored input (one ``stat`` or metadata request, no data)."""
    try:
        if location.is_local:
            path = location.path
            if os.path.isdir(path):  # a zarr directory: its root metadata changes on rewrite
                path = next(
                    (
                        os.path.join(path, m)
                        for m in ("zarr.json", ".zgroup")
                        if os.path.exists(os.path.join(path, m))
                    ),
                    path,
                )
            st = os.stat(path)
            return {
                "url": location.url,
                "ino": st.st_ino,
                "size": st.st_size,
                "mtime": st.st_mtime_ns,
            }
        fs = location.filesystem()
        info = fs.info(location.path)
        if info.get("type") == "directory":
            for m in ("zarr.json", ".zgroup"):
                if fs.exists(f"{location.path}/{m}"):
                    info = fs.info(f"{location.path}/{m}")
                    break
        keep = ("ETag", "etag", "size", "LastModified", "mtime", "md5Hash", "generation")
        return {"url": location.url, **{k: str(info[k]) for k in keep if k in info}}
    except (OSError, ValueError) as e:
        return {"url": location.url, "error": type(e).__name__}


def write_fingerprint(
    structure: str, elements: list[dict[str, Any]], sources: Iterable[Location], **options: Any
) -> str:
    """The fingerprint of a write (see the module docstring) as a hex string."""
    payload = {
        "structure": structure,
        "elements": elements,
        "sources": sorted((source_identity(s) for s in sources), key=lambda d: d["url"]),
        "options": {k: repr(v) for k, v in sorted(options.items())},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:32]
