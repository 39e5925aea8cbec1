"""The dask array elements of one zarr store, written together as one task graph.

:func:`annscale.write_zarr` writes the structure of an object (``obs``, ``var``, ``uns``,
in-memory arrays, encoding attributes) through the element registry. The registry's dask
writers do not write a dask array element there: they hand it to the :class:`ZarrSession`
found in the write context, which leaves a *placeholder* (an empty array, or a group with
its ``shape``) for the registry to stamp with the encoding attributes, and remembers the
element.

:meth:`ZarrSession.run` then writes every remembered element into the (staged) store:

1. one graph counting the nonzeros per block of every sparse element (skipped for the
   elements whose counts a resumed manifest remembers, or that the stored ``indptr`` of
   their inputs gives: :func:`.stored_nnz.stored_block_nnz`);
2. one graph writing every chunk of every element (:func:`.zarr.write_dask_zarr`, tasks own
   whole chunks/shards), on annscale's scheduler with a progress bar.

Each element is created with the attributes its placeholder received, so the store reads
exactly as if the registry had written it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import dask.array as da
import numpy as np

from ..scheduler import compute
from ..storage.elements import Element, Group
from ..storage.location import Location
from .manifest import Manifest
from .stored_nnz import stored_block_nnz
from .zarr import count_nonzeros, sparse_format, write_dask_zarr

__all__ = ["SESSION_OPTION", "INDEX_DTYPE", "PendingElement", "ZarrSession"]

SESSION_OPTION = "annscale.writeout.session"
"""Key of the :class:`ZarrSession` in ``WriteContext.options``."""

INDEX_DTYPE = np.dtype(np.int64)
"""``indices``/``indptr`` dtype of sparse dask elements: int64, as anndata writes them."""


@dataclass
class PendingElement:
    """A dask array element to write: its ``path`` in the store and its layout options."""

    path: str
    x: da.Array
    fmt: str | None
    chunks: Any
    shards: Any
    placeholder: Element

    @property
    def cache_key(self) -> str:
        return f"{self.x.name}:{self.fmt}"

    def describe(self) -> dict[str, Any]:
        """What identifies this element's write (for fingerprints): input and layout."""
        return {
            "path": self.path,
            "name": self.x.name,
            "shape": [int(s) for s in self.x.shape],
            "dtype": np.dtype(self.x.dtype).str,
            "blocks": [list(map(int, c)) for c in self.x.chunks],
            "format": self.fmt,
            "chunks": _plain(self.chunks),
            "shards": _plain(self.shards),
        }


def _plain(v: Any) -> Any:
    if v is None or isinstance(v, (int, np.integer)):
        return None if v is None else int(v)
    return [int(i) for i in v]


def _sparse_length(value: Any) -> int | None:
    """A 1-d length for a sparse element's arrays; 2-d shapes (meant for dense X) are ignored."""
    if value is None:
        return None
    if isinstance(value, (int, np.integer)):
        return int(value)
    seq = tuple(value)
    if len(seq) == 1:
        return int(seq[0])
    return None


class ZarrSession:
    """Collects the dask array elements of one zarr write and writes them as one graph.

    Parameters
    ----------
    zarr_format
        Format of the store being written.
    compressors
        zarr compressors of every array written (``"auto"``: zarr's default).
    index_dtype
        ``indices``/``indptr`` dtype of sparse elements; None: the narrowest that holds
        the values (see :func:`.dispatch.writeout_options`).
    """

    def __init__(
        self, *, zarr_format: int, compressors: Any = "auto", index_dtype: Any = INDEX_DTYPE
    ):
        self.zarr_format = zarr_format
        self.compressors = compressors
        self.index_dtype = None if index_dtype is None else np.dtype(index_dtype)
        self.pending: list[PendingElement] = []

    def add(self, group: Group, key: str, x: da.Array, options: dict[str, Any]) -> Element:
        """Remember ``x`` as element ``group/key``; create and return its placeholder.

        ``options`` are the write's dataset options: ``chunks``/``shards`` set for this
        element (``write_zarr(chunks=..., shards=...)`` for ``X``).
        """
        path = f"{group.path.rstrip('/')}/{key}".strip("/")
        fmt = sparse_format(x)
        chunks, shards = options.get("chunks"), options.get("shards")
        if fmt is not None:
            if x.ndim != 2:
                raise ValueError(f"sparse arrays must be 2-d, got shape {x.shape} ({path})")
            chunks, shards = _sparse_length(chunks), _sparse_length(shards)
            if len(x.chunks[1 if fmt == "csr" else 0]) > 1:
                x = x.rechunk({1 if fmt == "csr" else 0: -1})
            placeholder: Element = group.create_group(key)
            placeholder.set_attrs({"shape": [int(s) for s in x.shape]})
        else:
            placeholder = group.create_array(key, shape=x.shape, dtype=x.dtype)
        self.pending.append(PendingElement(path, x, fmt, chunks, shards, placeholder))
        return placeholder

    @property
    def paths(self) -> list[str]:
        """Store paths of the elements remembered so far."""
        return [p.path for p in self.pending]

    def describe(self) -> list[dict[str, Any]]:
        """The inputs and layouts of every element (for the write's fingerprint)."""
        common = {"zarr_format": self.zarr_format, "compressors": repr(self.compressors)}
        if (
            self.index_dtype != INDEX_DTYPE
        ):  # (the default leaves earlier fingerprints as they were)
            common["index_dtype"] = None if self.index_dtype is None else self.index_dtype.str
        return [{**p.describe(), **common} for p in self.pending]

    def run(self, location: Location, manifest: Manifest | None = None) -> None:
        """Write every remembered element into the zarr store at ``location``.

        The store must hold the structure the registry wrote (parents of the elements); each
        element is (re)created there with its placeholder's attributes, unless ``manifest``
        resumes it. Reads every input block once to write it, and once more before to count
        nonzeros (sparse elements whose counts neither the manifest nor stored ``indptr``
        give).
        """
        counts = self._count(manifest)
        graphs = [
            write_dask_zarr(
                location,
                "/",
                p.path,
                p.x,
                zarr_format=self.zarr_format,
                chunks=p.chunks,
                shards=p.shards,
                compressors=self.compressors,
                manifest=manifest,
                compute=False,
                nnz=counts.get(p.path),
                attrs=p.placeholder.attrs,
                index_dtype=self.index_dtype if p.fmt else None,
            )
            for p in self.pending
        ]
        if graphs:
            compute(*graphs)

    def _count(self, manifest: Manifest | None) -> dict[str, Sequence[int]]:
        counts: dict[str, Sequence[int]] = {}
        todo = []
        for p in self.pending:
            if p.fmt is None:
                continue
            known = manifest.lookup("/" + p.path, p.cache_key) if manifest is not None else None
            if known is None:
                known = stored_block_nnz(p.x, p.fmt)
            if known is not None:
                counts[p.path] = known
            else:
                todo.append(p)
        for p, c in zip(todo, count_nonzeros(*((p.x, p.fmt) for p in todo))):
            counts[p.path] = c
        return counts
