"""``annscale.concat_on_disk``: concatenate stored AnnData files into a new store.

Built from the lazy pieces: :func:`annscale.read_collection` opens the inputs (``obs``,
``var``, ``uns`` and metadata only) and concatenates them lazily, then the public writers
(:func:`annscale.write_h5ad` or :func:`annscale.write_zarr`, by the output's suffix) stream
``X``, layers, ``obsm``, ``obsp`` and ``raw.X`` chunk by chunk. Memory holds the
annotations plus a bounded number of chunks at a time, whatever the number and size of the
inputs. Unlike anndata's version, nothing is dropped: ``uns`` (by ``uns_merge``), ``raw``,
pairwise ``obsp``/``varp`` and outer joins of layers are written as ``anndata.concat``
would produce them.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Any, Literal

from ..storage.location import Location, as_location
from ..writeout.dispatch import writeout_options
from .api import Strategy
from .collection import read_collection

__all__ = ["concat_on_disk"]

PathLike = str | os.PathLike | Location


def _input_path(x: Any) -> PathLike:
    """A path for an input given as a path, URL, Location or an open root group."""
    if isinstance(x, (str, os.PathLike, Location)):
        return x
    try:
        import h5py

        if isinstance(x, h5py.Group) and x.name == "/":
            return x.file.filename
    except ImportError:  # pragma: no cover - h5py is a dependency
        pass
    import zarr

    if isinstance(x, zarr.Group) and x.path in ("", "/"):
        root = getattr(x.store, "root", None)
        if root is not None:
            return os.fspath(root)
    raise TypeError(
        f"concat_on_disk inputs must be paths, URLs or root groups of local stores, got {x!r}"
    )


def _output_kind(loc: Location) -> Literal["h5ad", "zarr"]:
    path = loc.path.rstrip("/")
    if path.endswith((".zarr", ".zip")):
        return "zarr"
    if path.endswith((".h5ad", ".h5", ".hdf5")):
        return "h5ad"
    raise ValueError(
        f"cannot tell the output format of {loc.url!r}: its name must end with .h5ad (HDF5) "
        "or .zarr / .zarr.zip (zarr)"
    )


def concat_on_disk(
    in_files: Collection[PathLike] | Mapping[str, PathLike],
    out_file: PathLike,
    *,
    max_loaded_elems: int = 100_000_000,
    axis: Literal["obs", 0, "var", 1] = 0,
    join: Literal["inner", "outer"] = "inner",
    merge: Strategy = None,
    uns_merge: Strategy = None,
    label: str | None = None,
    keys: Collection[str] | None = None,
    index_unique: str | None = None,
    fill_value: Any | None = None,
    pairwise: bool = False,
    storage_options: dict[str, Any] | None = None,
    out_storage_options: dict[str, Any] | None = None,
    resume: bool = False,
) -> None:
    """Concatenate stored AnnData objects into ``out_file`` without loading them.

    Same signature and result as :func:`anndata.experimental.concat_on_disk` (and as
    ``anndata.concat`` of the loaded inputs written out), including ``uns`` (merged by
    ``uns_merge``), ``raw``, ``obsp``/``varp`` with ``pairwise=True`` and outer joins of
    layers.

    Parameters
    ----------
    in_files
        Paths or fsspec URLs of ``.h5ad`` files / zarr stores (or open root groups of local
        ones), or a mapping ``{key: path}`` whose keys are the ``keys``.
    out_file
        Path or fsspec URL of the result; ``.h5ad`` writes HDF5, ``.zarr`` / ``.zarr.zip``
        zarr. Written beside the target and moved into place when complete.
    max_loaded_elems
        Accepted for compatibility with anndata and unused: memory is bounded by the chunk
        size of the lazy engine (``annscale.settings.chunk_target_bytes``, in bytes per chunk)
        and the scheduler's parallelism instead.
    axis, join, merge, uns_merge, label, keys, index_unique, fill_value, pairwise
        As in :func:`annscale.concat`.
    storage_options
        fsspec options for reading remote inputs.
    out_storage_options
        fsspec options for writing a remote ``out_file`` (default: ``storage_options``).
    resume
        zarr outputs only: finish a concatenation of the same inputs with the same options
        into the same ``out_file`` that was killed or failed, reusing the chunks it completed
        (as :func:`annscale.write_zarr` with ``resume=True``; refused with
        :class:`~annscale.errors.WriteConflictError` when the inputs or options differ). An
        ``.h5ad`` output cannot be resumed (HDF5 is written by one process, in order, and
        :func:`annscale.write_h5ad` has no ``resume``): ``resume=True`` raises
        :class:`ValueError` before anything is read.

    What is read: each input's ``obs``, ``var``, ``uns`` and metadata when opening, then the
    stored arrays chunk by chunk while writing.
    """
    del max_loaded_elems  # documented as unused
    if isinstance(in_files, Mapping):
        inputs: Any = {k: _input_path(v) for k, v in in_files.items()}
    else:
        inputs = [_input_path(v) for v in in_files]
        if keys is None:  # anndata's default: "0", "1", ... (not the file names)
            keys = [str(i) for i in range(len(inputs))]
    if not inputs:
        raise ValueError("No objects to concatenate.")
    out_loc = as_location(
        out_file, out_storage_options if out_storage_options is not None else storage_options
    )
    kind = _output_kind(out_loc)
    if resume and kind != "zarr":
        raise ValueError(
            f"resume=True applies to zarr outputs only; {out_loc.url!r} is an .h5ad file, "
            "whose writes cannot be resumed: write it again with resume=False"
        )
    result = read_collection(
        inputs,
        axis=axis,
        join=join,
        merge=merge,
        uns_merge=uns_merge,
        label=label,
        keys=None if keys is None else list(keys),
        index_unique=index_unique,
        fill_value=fill_value,
        pairwise=pairwise,
        storage_options=storage_options,
    )
    # indices/indptr as anndata's concat_on_disk writes them: int32 unless int64 is needed
    with writeout_options(index_dtype="auto"):
        if kind == "h5ad":
            from ..io.h5ad import write_h5ad

            write_h5ad(out_loc, result)
        else:
            from ..io.zarr import write_zarr

            write_zarr(out_loc, result, resume=resume)
