"""``annscale.read_collection``: many stored AnnData files opened as one lazy AnnData.

Each input is opened with :func:`annscale.read_lazy` (reading ``obs``, ``var``, ``uns`` and
metadata; no data chunk), in parallel threads, and the opened objects are concatenated
lazily (:func:`annscale.concat`). ``X``, layers and ``obsm`` arrays of the result are
deferred concatenations (:mod:`annscale.combine.sources`): selecting cells reads only the
selected rows and never touches an input that contributes none.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from ..storage.location import Location, as_location
from .api import Strategy, concat

__all__ = ["read_collection", "expand_glob", "expand_inputs", "default_key"]

#: threads opening inputs at once (opening is dominated by storage latency)
OPEN_THREADS = 16

_SUFFIXES = (".zip", ".zarr", ".h5ad", ".h5", ".hdf5")
_GLOB_CHARS = ("*", "?", "[")

PathLike = str | os.PathLike | Location


def default_key(url: str) -> str:
    """A file's key: its name without the store suffixes (``a.h5ad`` and ``a.zarr.zip`` -> ``a``)."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    changed = True
    while changed:
        changed = False
        for suffix in _SUFFIXES:
            if name.endswith(suffix) and len(name) > len(suffix):
                name = name[: -len(suffix)]
                changed = True
    return name


def _url(x: PathLike) -> str:
    if isinstance(x, Location):
        return x.url
    return os.fspath(x)


def expand_glob(pattern: str, storage_options: dict[str, Any] | None) -> list[str]:
    """The stores matching a glob, sorted (local paths stay plain paths)."""
    import fsspec

    fs, path = fsspec.core.url_to_fs(pattern, **(storage_options or {}))
    found = sorted(fs.glob(path))
    if "://" in pattern:
        return [fs.unstrip_protocol(p) for p in found]
    return found


def expand_inputs(
    urls_or_glob: PathLike | Sequence[PathLike] | Mapping[str, PathLike],
    *,
    keys: Sequence[str] | None = None,
    storage_options: dict[str, Any] | None = None,
) -> tuple[list[PathLike], list[str]]:
    """The inputs and their keys: globs expanded (sorted), keys defaulting to file names.

    A mapping gives its keys; ``keys`` gives them explicitly (one per input).
    """
    if isinstance(urls_or_glob, Mapping):
        if keys is not None:
            msg = (
                "Cannot specify categories in both mapping keys and using `keys`. "
                "Only specify this once."
            )
            raise TypeError(msg)
        keys = [str(k) for k in urls_or_glob]
        items: list[PathLike] = list(urls_or_glob.values())
    else:
        single = isinstance(urls_or_glob, (str, os.PathLike, Location))
        items = [urls_or_glob] if single else list(urls_or_glob)  # type: ignore[list-item]
    inputs: list[PathLike] = []
    for item in items:
        url = _url(item)
        if not isinstance(item, Location) and any(c in url for c in _GLOB_CHARS):
            matched = expand_glob(url, storage_options)
            if not matched:
                raise FileNotFoundError(f"no file matches {url!r}")
            inputs.extend(matched)
        else:
            inputs.append(item)
    if not inputs:
        raise ValueError("read_collection needs at least one input")
    if keys is None:
        keys = [default_key(_url(x)) for x in inputs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            msg = (
                f"inputs share the file names {repeated}; pass `keys=` (one per input) or a "
                "mapping {key: url} to name them"
            )
            raise ValueError(msg)
    keys = list(keys)
    if len(keys) != len(inputs):
        raise ValueError(f"got {len(keys)} keys for {len(inputs)} inputs")
    return inputs, keys


def open_all(
    inputs: Sequence[PathLike],
    *,
    storage_options: dict[str, Any] | None = None,
    chunks: Any = None,
    max_workers: int | None = None,
) -> list[Any]:
    """:func:`annscale.read_lazy` of every input, in input order (remote ones in parallel
    threads)."""
    from ..lazy.open import read_lazy

    def one(x: PathLike) -> Any:
        return read_lazy(x, storage_options=storage_options, chunks=chunks)

    if max_workers is None:
        # local HDF5 opens serialise on h5py's lock (threads only add overhead); remote
        # inputs wait on the network, which threads overlap
        remote = any(not as_location(x, storage_options).is_local for x in inputs)
        max_workers = OPEN_THREADS if remote else 1
    workers = min(max_workers, len(inputs))
    if workers <= 1 or len(inputs) == 1:
        return [one(x) for x in inputs]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(one, inputs))


def read_collection(
    urls_or_glob: PathLike | Sequence[PathLike] | Mapping[str, PathLike],
    *,
    axis: Literal["obs", 0, "var", 1] = "obs",
    join: Literal["inner", "outer"] = "inner",
    merge: Strategy = None,
    uns_merge: Strategy = None,
    label: str | None = None,
    keys: Sequence[str] | None = None,
    index_unique: str | None = None,
    fill_value: Any | None = None,
    pairwise: bool = False,
    storage_options: dict[str, Any] | None = None,
    chunks: int | tuple[int, ...] | None = None,
    max_workers: int | None = None,
):
    """Open many ``.h5ad`` files or zarr stores as one lazy AnnData (a lazy ``concat``).

    Parameters
    ----------
    urls_or_glob
        A path or fsspec URL, a glob (``"s3://bucket/samples/*.h5ad"``, expanded and sorted),
        a sequence of them, or a mapping ``{key: url}``.
    axis, join, merge, uns_merge, label, index_unique, fill_value, pairwise
        As in :func:`annscale.concat`.
    keys
        One name per input, for ``label`` and ``index_unique``. Default: the file names
        without their suffix (``.h5ad``, ``.zarr``, ``.zarr.zip``).
    storage_options
        fsspec options for remote URLs (used for every input and for expanding globs).
    chunks
        Chunking of each input's arrays, as in :func:`annscale.read_lazy`.
    max_workers
        Threads opening inputs at once (default: 16 when any input is remote, else 1:
        local HDF5 files are opened one at a time by h5py whatever the threads).

    Returns
    -------
    A lazy :class:`annscale.AnnData`. Opening reads each input's ``obs``, ``var``, ``uns``
    and array metadata (plus what ``merge=`` needs: ``varm``/``varp`` when concatenating
    along obs are read when compared). ``X``/``layers``/``obsm`` read nothing until computed;
    a subset (``coll[coll.obs["cell_type"] == "NK"]``) reads only the selected rows, from
    the inputs that have any.
    """
    inputs, keys = expand_inputs(urls_or_glob, keys=keys, storage_options=storage_options)
    adatas = open_all(
        inputs, storage_options=storage_options, chunks=chunks, max_workers=max_workers
    )
    return concat(
        adatas,
        axis=axis,
        join=join,
        merge=merge,
        uns_merge=uns_merge,
        label=label,
        keys=keys,
        index_unique=index_unique,
        fill_value=fill_value,
        pairwise=pairwise,
    )
