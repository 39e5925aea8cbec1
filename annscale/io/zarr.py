"""Eager zarr reading and writing, store-compatible with anndata 0.12.

:func:`read_zarr` reads zarr v2 and v3 stores — directories, ``.zip`` files (when a zip holds
the same member name twice, the last one wins, as in ``zipfile``), fsspec URLs, consolidated
or not — into an in-memory ``AnnData``. :func:`write_zarr` writes what anndata's
``write_zarr`` writes, then consolidates the metadata (v2: ``.zmetadata``; v3: inline in the
root ``zarr.json``), in a staging store published only when complete.
"""

from __future__ import annotations

import os
import shutil
import warnings
import zipfile
from typing import Any

import numpy as np
import zarr

from .._settings import settings
from ..errors import StorageError
from ..spec import containers
from ..spec.registry import ReadContext, WriteContext
from ..storage.atomic import atomic_write, check_not_reading
from ..storage.elements import ZarrGroup
from ..storage.location import Location, as_location
from ..storage.open import detect_kind, open_root
from .h5ad import strings_to_categoricals

__all__ = ["read_zarr", "write_zarr"]


def read_zarr(store: Any, *, storage_options: dict[str, Any] | None = None):
    """Read a zarr store into memory.

    ``store`` is a local path (directory or ``.zip``), an fsspec URL, a
    :class:`~annscale.storage.Location`, an open ``zarr.Group`` or a zarr store object.
    """
    if isinstance(store, zarr.Group):
        return containers.read_root(_wrap_group(store), ReadContext())
    if isinstance(store, zarr.abc.store.Store):
        try:
            group = zarr.open_group(store, mode="r")
        except Exception as e:
            raise StorageError(f"cannot open as a zarr store: {e}", source=str(store)) from e
        return containers.read_root(_wrap_group(group), ReadContext())
    loc = as_location(store, storage_options)
    kind = detect_kind(loc)
    if kind == "h5ad":
        raise StorageError("this is an HDF5 (.h5ad) file, not a zarr store", source=loc.url)
    root = _open_read(loc, kind)
    try:
        return containers.read_root(root, ReadContext())
    finally:
        _close(root)


def _wrap_group(group: zarr.Group) -> ZarrGroup:
    return ZarrGroup(group, str(group.store), group.path or "/")


def _open_read(loc: Location, kind: str) -> ZarrGroup:
    with open_root(loc, "r", kind=kind) as root:  # zarr roots stay open after the block
        return root


def _close(root: ZarrGroup) -> None:
    store = root.handle.store
    if hasattr(store, "close"):
        store.close()


def write_zarr(
    store: str | os.PathLike | Location,
    adata: Any,
    *,
    zarr_format: int | None = None,
    chunks: tuple[int, ...] | None = None,
    convert_strings_to_categoricals: bool = True,
    consolidate_metadata: bool = True,
    storage_options: dict[str, Any] | None = None,
) -> None:
    """Write ``adata`` as a zarr store (what ``anndata.write_zarr`` writes).

    Parameters
    ----------
    store
        Directory path, ``.zip`` path or fsspec URL.
    zarr_format
        2 or 3; default ``annscale.settings.zarr_write_format``.
    chunks
        Chunk shape of a dense ``X`` (ignored for sparse ``X`` and for layers, as in anndata).
    convert_strings_to_categoricals
        Turn repeated-string columns of ``obs``/``var``/``raw.var`` into categoricals first.
    consolidate_metadata
        Write consolidated metadata (v2 ``.zmetadata``; v3 inline in the root ``zarr.json``).
    storage_options
        fsspec options for remote URLs.
    """
    fmt = zarr_format or settings.zarr_write_format
    if fmt not in (2, 3):
        raise ValueError(f"zarr_format must be 2 or 3, not {fmt!r}")
    loc = as_location(store, storage_options)
    check_not_reading(loc, adata)
    if convert_strings_to_categoricals:
        strings_to_categoricals(adata)
    part_options = {}
    if chunks is not None and _is_dense(getattr(adata, "X", None)):
        part_options["X"] = {"chunks": tuple(chunks)}
    ctx = WriteContext(options={"part_options": part_options})
    is_zip = loc.path.endswith(".zip")
    with atomic_write(loc) as staging:
        # a zip cannot be edited in place (attributes are rewritten, consolidation deletes
        # keys), so a zip store is written as a directory first and then packed
        directory = staging + ".dir" if is_zip else staging
        try:
            with open_root(directory, "w", kind="zarr", zarr_format=fmt) as root:
                write_zarr_root(root, adata, ctx)  # type: ignore[arg-type]
                if consolidate_metadata:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", category=UserWarning)
                        zarr.consolidate_metadata(root.handle.store)
            if is_zip:
                _pack_zip(directory, staging)
        finally:
            if is_zip:
                shutil.rmtree(directory, ignore_errors=True)


def _pack_zip(directory: str, target: str) -> None:
    """Pack a zarr directory into a zip store (members uncompressed, as zarr's ZipStore)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for base, dirs, files in os.walk(directory):
            dirs.sort()
            for name in sorted(files):
                full = os.path.join(base, name)
                zf.write(full, os.path.relpath(full, directory).replace(os.sep, "/"))


def write_zarr_root(root: ZarrGroup, adata: Any, ctx: WriteContext) -> None:
    """Write ``adata`` into an open zarr root group, in anndata's order, and stamp the root."""
    containers.write_anndata_parts(root, adata, ctx, containers.ZARR_ORDER)
    containers.stamp_root(root)


def _is_dense(x: Any) -> bool:
    if isinstance(x, np.ndarray):
        return True
    meta = getattr(x, "_meta", None)
    return isinstance(meta, np.ndarray)
