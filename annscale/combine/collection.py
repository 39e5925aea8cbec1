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

import numpy as np

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
    unused: Sequence[str] = (),
) -> list[Any]:
    """:func:`annscale.read_lazy` of every input, in input order (remote ones in parallel
    threads).

    ``unused`` names parts the caller drops, which are then not read: ``"var_columns"``
    (``var`` is read as its index only), and ``"uns"``, ``"varm"``, ``"varp"``, ``"obsp"``
    (read as ``{}``).
    """
    from ..lazy.open import read_lazy

    def one(x: PathLike) -> Any:
        if unused:
            return _read_lazy_without(x, storage_options, chunks, frozenset(unused))
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


def _read_lazy_without(
    x: PathLike, storage_options: dict[str, Any] | None, chunks: Any, unused: frozenset[str]
) -> Any:
    """:func:`annscale.read_lazy` of ``x`` without reading the ``unused`` parts (see
    :func:`open_all`)."""
    import pandas as pd

    from ..lazy.open import _LAZY_MAPPINGS, _Opener
    from ..spec import containers, legacy
    from ..spec.frames import DATAFRAME
    from ..spec.registry import ReadContext, get_spec
    from ..storage.cache import get_root

    loc = as_location(x, storage_options)
    root = get_root(loc)
    ctx = ReadContext()

    def var_index(elem: Any) -> Any:
        if not elem.is_group or get_spec(elem) != DATAFRAME or "_index" not in elem.attrs:
            return legacy.read_root_part(root, "var", ctx)  # old layouts: read as usual
        key = str(elem.attrs["_index"])
        index = pd.Index(_read_names(elem.require(key, "the index named by '_index'"), ctx))
        index.name = None if key == "_index" else key
        return pd.DataFrame(index=index)

    opener = _Opener(loc, chunks)
    readers: dict[str, Any] = {"X": opener.element, "raw/X": opener.element}
    readers.update({k: opener.mapping for k in _LAZY_MAPPINGS})
    if "var_columns" in unused:
        readers["var"] = var_index
    for name in ("uns", "varm", "varp", "obsp"):
        if name in unused:
            readers[name] = _nothing
    return containers.read_root(root, ctx, readers=readers)


def _nothing(elem: Any) -> dict:
    return {}


def _read_names(arr: Any, ctx: Any) -> Any:
    """A stored index (string array) as an object array of ``str``; HDF5 variable-length
    strings are decoded by numpy (``StringDType``), not one by one in Python."""
    from ..spec.registry import read_elem

    handle = getattr(arr, "handle", None)
    try:
        import h5py

        if (
            isinstance(handle, h5py.Dataset)
            and handle.ndim == 1
            and getattr(h5py.check_string_dtype(handle.dtype), "length", 0) is None
            and hasattr(np.dtypes, "StringDType")
        ):
            return handle.astype(np.dtypes.StringDType())[()].astype(object)
    except (ImportError, TypeError, ValueError):  # older h5py/numpy: the usual reader
        pass
    return read_elem(arr, ctx)


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
    and array metadata, except what the result drops: ``var`` columns, ``varm`` and
    ``varp`` with ``merge=None`` along obs, the concatenated axis' ``obsp``/``varp``
    without ``pairwise``, ``uns`` with ``uns_merge=None``. (With a ``merge`` strategy,
    ``varm``/``varp`` arrays along obs are read when compared.) ``X``/``layers``/``obsm``
    read nothing until computed;
    a subset (``coll[coll.obs["cell_type"] == "NK"]``) reads only the selected rows, from
    the inputs that have any.
    """
    inputs, keys = expand_inputs(urls_or_glob, keys=keys, storage_options=storage_options)
    # what the concatenation drops is not read: var columns (along obs, merge=None), uns
    unused = []
    along_obs = axis in (0, "obs")
    if merge is None and along_obs:  # var and its mappings are not merged: dropped
        unused += ["var_columns", "varm", "varp"]
    if not pairwise:  # the concatenated axis' pairwise arrays are dropped
        unused.append("obsp" if along_obs else "varp")
    if uns_merge is None:
        unused.append("uns")
    adatas = open_all(
        inputs,
        storage_options=storage_options,
        chunks=chunks,
        max_workers=max_workers,
        unused=unused,
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
