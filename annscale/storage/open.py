"""Open a store (``.h5ad`` file or zarr directory/zip, local or remote) as a root :class:`Group`.

This is the only place that turns a :class:`Location` into h5py/zarr handles. Remote HDF5
files are read through fsspec with a large block cache because HDF5 makes many small reads.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from typing import Any, Literal

import h5py
import zarr

from .._settings import settings
from ..errors import StorageError
from .elements import H5Group, ZarrGroup
from .location import Location, as_location

__all__ = ["open_root", "detect_kind", "StoreKind"]

StoreKind = Literal["h5ad", "zarr", "zip"]

_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


def _sniff(head: bytes) -> StoreKind | None:
    if head.startswith(_HDF5_MAGIC):
        return "h5ad"
    if head.startswith(_ZIP_MAGIC):
        return "zip"
    return None


def detect_kind(loc: Location) -> StoreKind:
    """Decide whether ``loc`` is an HDF5 file, a zarr directory or a zarr zip store.

    Reads at most the first 8 bytes (HDF5 may also start at 512/1024/2048 with a user block,
    which we check too). Raises :class:`StorageError` when it is none of these.
    """
    if loc.is_local:
        p = loc.path
        if os.path.isdir(p):
            return "zarr"
        if not os.path.exists(p):
            raise StorageError("no such file or directory", source=loc.url)
        with open(p, "rb") as f:
            return _sniff_file(f, loc)
    fs = loc.filesystem()
    path = loc.path
    try:
        if fs.isdir(path):
            return "zarr"
        with fs.open(path, "rb") as f:
            return _sniff_file(f, loc)
    except FileNotFoundError:
        raise StorageError("no such file or object", source=loc.url) from None


def _sniff_file(f, loc: Location) -> StoreKind:
    head = f.read(8)
    kind = _sniff(head)
    if kind is None:
        for offset in (512, 1024, 2048):
            f.seek(offset)
            if f.read(8) == _HDF5_MAGIC:
                return "h5ad"
        raise StorageError(
            f"not an HDF5 (.h5ad) file, zarr directory or zarr zip store (starts with {head!r})",
            source=loc.url,
        )
    return kind


@contextmanager
def open_root(
    url: str | os.PathLike | Location,
    mode: Literal["r", "r+", "w", "a"] = "r",
    *,
    storage_options: dict[str, Any] | None = None,
    kind: StoreKind | None = None,
    zarr_format: int | None = None,
):
    """Open a store and yield its root :class:`Group`; closes it on exit.

    ``kind`` is detected for reading; for writing (``mode="w"``) pass ``"h5ad"`` or ``"zarr"``.
    """
    loc = as_location(url, storage_options)
    if kind is None:
        if mode == "w":
            raise ValueError("open_root(mode='w') needs kind='h5ad' or 'zarr'")
        kind = detect_kind(loc)
    if kind == "h5ad":
        with _open_h5(loc, mode) as root:
            yield root
    else:
        yield _open_zarr(loc, mode, kind, zarr_format)


#: blocks of ``settings.h5_block_cache_bytes`` kept per remote HDF5 file handle
H5_CACHED_BLOCKS = 8


@contextmanager
def _open_h5(loc: Location, mode: str):
    fileobj = None
    try:
        if loc.is_local:
            f = h5py.File(loc.path, mode)
        else:
            if mode != "r":
                raise StorageError("HDF5 files on object stores can only be read", source=loc.url)
            fs = loc.filesystem()
            # HDF5 makes many small reads: serve them from large cached blocks, but few of
            # them (fsspec's default keeps 32 blocks: 256 MiB per open file at 8 MiB blocks)
            fileobj = fs.open(
                loc.path,
                "rb",
                block_size=settings.h5_block_cache_bytes,
                cache_type="blockcache",
                cache_options={"maxblocks": H5_CACHED_BLOCKS},
            )
            f = h5py.File(fileobj, "r")
    except StorageError:
        raise
    except (OSError, ValueError) as e:
        if fileobj is not None:
            fileobj.close()
        raise StorageError(f"cannot open as HDF5: {e}", source=loc.url) from e
    try:
        yield H5Group(f, loc.url, "/")
    finally:
        f.close()
        if fileobj is not None:
            fileobj.close()


def _open_zarr(loc: Location, mode: str, kind: StoreKind, zarr_format: int | None) -> ZarrGroup:
    try:
        if kind == "zip":
            if not loc.is_local:
                raise StorageError("zip stores are only supported on local disk", source=loc.url)
            store = zarr.storage.ZipStore(loc.path, mode="r" if mode == "r" else "w")
        elif loc.is_local:
            store = zarr.storage.LocalStore(loc.path, read_only=(mode == "r"))
        else:
            store = zarr.storage.FsspecStore.from_url(
                loc.url, storage_options=loc.storage_options or None, read_only=(mode == "r")
            )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=UserWarning)
            if mode == "w":
                g = zarr.open_group(
                    store, mode="w", zarr_format=zarr_format or settings.zarr_write_format
                )
            else:
                g = zarr.open_group(store, mode=mode)
    except StorageError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise StorageError(f"cannot open as a zarr store: {e}", source=loc.url) from e
    except Exception as e:  # zarr raises its own GroupNotFoundError etc.
        raise StorageError(f"cannot open as a zarr store: {e}", source=loc.url) from e
    return ZarrGroup(g, loc.url, "/")
