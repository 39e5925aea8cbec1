"""Loom files (loom spec 3.0.0), read and written with h5py through the element layer.

A loom file holds a genes x cells ``/matrix``, more matrices of that shape under
``/layers``, one dataset per gene attribute under ``/row_attrs`` and per cell attribute
under ``/col_attrs``, graphs under ``/row_graphs``/``/col_graphs`` and file attributes under
``/attrs``. :func:`read_loom` gives what :func:`anndata.io.read_loom` (through loompy) gives;
:func:`write_loom` writes what :func:`anndata.io.write_loom` writes, readable by loompy.
loompy itself is not needed.
"""

from __future__ import annotations

import datetime
import html
import os
import uuid
import warnings
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse as sp

from .._settings import settings
from ..errors import ElementNotFoundError, FormatError, ShapeMismatchError, StorageError
from ..scheduler import compute_one
from ..storage.elements import Array, Group
from ..storage.location import Location, as_location
from ..storage.open import open_root
from ._parts import Parts

if TYPE_CHECKING:
    from ..core.anndata import AnnData

__all__ = ["read_loom", "write_loom"]

PathLike = str | os.PathLike | Location
LOOM_SPEC_VERSION = "3.0.0"
_LOOM_CHUNK = 64  # loompy stores matrices in 64 x 64 chunks


# ----------------------------------------------------------------------------- reading


def _attr_values(arr: Array) -> np.ndarray:
    """An attribute dataset's values as loompy gives them.

    Strings become an ``object`` array of ``str`` with XML character references unescaped
    (loompy stores non-ASCII characters as ``&#...;`` in fixed-length strings). Unlike
    loompy, which decodes every stored string as ASCII and silently drops other bytes
    ("gène" -> "gne"), strings are decoded as UTF-8. Numbers keep their stored dtype.
    """
    values = arr.read()
    if values.dtype.kind == "S":
        return np.array(
            [html.unescape(v.decode("utf-8", "replace")) for v in values.ravel().tolist()],
            dtype=object,
        ).reshape(values.shape)
    if values.dtype.kind in ("O", "U"):
        return np.array(
            [html.unescape(str(v)) for v in values.ravel().tolist()], dtype=object
        ).reshape(values.shape)
    return values


def _matrix_cells_by_genes(ds: Array, *, to_sparse: bool, dtype: Any) -> Any:
    """A genes x cells dataset as cells x genes: CSR (built from blocks of cells) or dense.

    Sparse reads keep memory at one block of cells (about ``settings.chunk_target_bytes``
    of dense values) plus the nonzeros; values are float64 unless ``dtype`` is given,
    which is what loompy's ``LoomLayer.sparse()`` returns.
    """
    n_genes, n_cells = ds.shape
    if not to_sparse:
        return ds.read().T
    itemsize = max(1, ds.dtype.itemsize)
    per_block = max(_LOOM_CHUNK, settings.chunk_target_bytes // max(1, n_genes * itemsize))
    per_block -= per_block % _LOOM_CHUNK
    blocks = [
        sp.csr_matrix(ds.read((slice(None), slice(c0, min(n_cells, c0 + per_block)))).T)
        for c0 in range(0, n_cells, per_block)
    ]
    out_dtype = np.float64 if dtype is None else dtype
    if not blocks:
        return sp.csr_matrix((0, n_genes), dtype=out_dtype)
    return sp.vstack(blocks, format="csr").astype(out_dtype)


def _axis_frame(
    attrs: dict[str, np.ndarray],
    idx_name: str,
    mapping: Mapping[str, Iterable[str]],
    n: int,
    group: Group,
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Split attributes into a DataFrame (1-d) and a dict of matrices (obsm/varm)."""
    attrs = dict(attrs)
    matrices: dict[str, np.ndarray] = {}
    for key, names in mapping.items():
        cols = []
        for name in names:
            if name not in attrs:
                raise ElementNotFoundError(
                    f"attribute {name!r} (for {key!r}) not found",
                    source=group.source,
                    element=group.path,
                )
            cols.append(attrs.pop(name))
        matrices[key] = np.array(cols).T
    columns: dict[str, np.ndarray] = {}
    for key, values in attrs.items():
        if values.ndim > 1 and values.shape[1] > 1:
            matrices[key] = values
        else:
            columns[key] = values.reshape(len(values))
    df = pd.DataFrame(columns, index=pd.RangeIndex(n))
    if idx_name in df.columns:
        df = df.set_index(idx_name, drop=True)
    if not all(isinstance(v, str) for v in df.index):  # as anndata: names are strings
        df.index = pd.Index(df.index.astype(str), dtype=object, name=df.index.name)
    return df, matrices


def _read_attrs(root: Group, key: str, n: int) -> dict[str, np.ndarray]:
    if key not in root:
        return {}
    group = root[key]
    out = {}
    for name in group.keys():
        node = group[name]
        if node.is_group:
            continue
        values = _attr_values(node)
        if values.ndim == 0 or len(values) != n:
            raise ShapeMismatchError(
                f"attribute has {values.shape} values, the matrix has {n} along this axis",
                source=node.source,
                element=node.path,
            )
        out[name] = values
    return out


def _cleanup(df: pd.DataFrame) -> dict[str, Any]:
    """Move columns holding a single distinct value out of ``df`` (as anndata's cleanup)."""
    moved = {}
    for key in list(df.columns):
        if len(df[key].unique()) == 1:
            moved[key] = df[key].iloc[0]
            del df[key]
    return moved


def loom_parts(
    filename: PathLike,
    *,
    sparse: bool = True,
    cleanup: bool = False,
    X_name: str = "spliced",
    obs_names: str = "CellID",
    var_names: str = "Gene",
    dtype: str = "float32",
    obsm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
    varm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
    storage_options: dict[str, Any] | None = None,
) -> Parts:
    loc = as_location(filename, storage_options)
    with open_root(loc, "r", kind="h5ad") as root:
        matrix = root.require("matrix", "the main loom matrix (genes x cells)")
        if matrix.is_group or matrix.ndim != 2:
            raise FormatError(
                "expected a 2-d dataset (genes x cells)", source=loc.url, element="/matrix"
            )
        n_genes, n_cells = matrix.shape
        layer_group = root["layers"] if "layers" in root else None
        layer_names = layer_group.keys() if layer_group is not None else []
        layer_arrays: dict[str, Array] = {}
        for name in layer_names:
            arr = layer_group[name]
            if arr.is_group or arr.shape != matrix.shape:
                raise ShapeMismatchError(
                    f"layer must be a dataset of the matrix's shape {matrix.shape}",
                    source=loc.url,
                    element=arr.path,
                )
            layer_arrays[name] = arr

        def read(ds: Array, out_dtype: Any = None) -> Any:
            return _matrix_cells_by_genes(ds, to_sparse=sparse, dtype=out_dtype)

        if X_name in layer_arrays:
            X = read(layer_arrays[X_name])
            layers = {"matrix": read(matrix)}
        else:
            X = read(matrix)
            layers = {}
        X = X.astype(dtype, copy=False)
        for name, arr in layer_arrays.items():
            layers[name] = read(arr)

        obs, obsm = _axis_frame(
            _read_attrs(root, "col_attrs", n_cells),
            obs_names,
            obsm_mapping,
            n_cells,
            root.get("col_attrs", root),
        )
        var, varm = _axis_frame(
            _read_attrs(root, "row_attrs", n_genes),
            var_names,
            varm_mapping,
            n_genes,
            root.get("row_attrs", root),
        )
    uns: dict[str, Any] = {}
    if cleanup:
        for key, df in (("loom-obs", obs), ("loom-var", var)):
            moved = _cleanup(df)
            if moved:
                uns[key] = moved
    return Parts(X=X, obs=obs, var=var, layers=layers, obsm=obsm, varm=varm, uns=uns)


def _deprecated_mapping(
    old: Mapping[str, Iterable[str]] | None, new: Mapping[str, Iterable[str]], which: str
) -> Mapping[str, Iterable[str]]:
    if old is None:
        return new
    warnings.warn(
        f"Argument {which}_names has been deprecated in favour of `{which}_mapping`.",
        FutureWarning,
        stacklevel=3,
    )
    if len(new):
        raise ValueError(
            f"Received values for both `{which}_names` and `{which}_mapping`. This is "
            f"ambiguous, only pass `{which}_mapping`."
        )
    return old


def read_loom(
    filename: PathLike,
    *,
    sparse: bool = True,
    cleanup: bool = False,
    X_name: str = "spliced",
    obs_names: str = "CellID",
    obsm_names: Mapping[str, Iterable[str]] | None = None,
    var_names: str = "Gene",
    varm_names: Mapping[str, Iterable[str]] | None = None,
    dtype: str = "float32",
    obsm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
    varm_mapping: Mapping[str, Iterable[str]] = MappingProxyType({}),
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> AnnData:
    """Read a ``.loom`` file into memory (cells x genes).

    Parameters
    ----------
    sparse
        Read matrices as ``scipy.sparse.csr_matrix`` (else dense, transposed numpy arrays).
    cleanup
        Move obs/var columns holding one distinct value into ``uns["loom-obs"]``/``["loom-var"]``.
    X_name
        Layer to use as X; when the file has no such layer, X is ``/matrix``. When it has,
        ``/matrix`` becomes ``layers["matrix"]``. Every layer is also read into ``layers``.
    obs_names, var_names
        Cell/gene attribute used as obs/var names.
    dtype
        dtype of X. Sparse layers are float64, dense layers keep their stored dtype (as
        anndata, which reads through loompy).
    obsm_mapping, varm_mapping
        ``{key: [attribute, ...]}``: stack these 1-d attributes into ``obsm[key]``/``varm[key]``.
        2-d attributes always go to obsm/varm.
    obsm_names, varm_names
        Deprecated spellings of ``obsm_mapping``/``varm_mapping``.
    storage_options
        fsspec options for remote files.
    **kwargs
        Accepted for compatibility (anndata passes them to ``loompy.connect``).
    """
    del kwargs
    obsm_mapping = _deprecated_mapping(obsm_names, obsm_mapping, "obsm")
    varm_mapping = _deprecated_mapping(varm_names, varm_mapping, "varm")
    return loom_parts(
        filename,
        sparse=sparse,
        cleanup=cleanup,
        X_name=X_name,
        obs_names=obs_names,
        var_names=var_names,
        dtype=dtype,
        obsm_mapping=obsm_mapping,
        varm_mapping=varm_mapping,
        storage_options=storage_options,
    ).to_anndata()


# ----------------------------------------------------------------------------- writing


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S.%fZ")


def _attr_for_loom(values: Any) -> np.ndarray:
    """Normalise attribute values as loompy does: numbers kept, bools as uint8, else str."""
    if hasattr(values, "compute"):  # dask
        values = compute_one(values)
    if sp.issparse(values):
        values = values.toarray()
    arr = np.asarray(values)
    if arr.dtype.kind in ("i", "u", "f"):
        return arr
    if arr.dtype.kind == "b":
        return arr.astype(np.uint8)
    flat = [str(v) for v in arr.ravel().tolist()]
    return np.array(flat, dtype=object).reshape(arr.shape)


def _write_attrs(group: Group, attrs: dict[str, Any], n: int) -> None:
    for name, values in attrs.items():
        if "/" in name:
            raise FormatError(
                f"attribute name {name!r} cannot contain '/'",
                source=group.source,
                element=group.path,
            )
        arr = _attr_for_loom(values)
        if arr.ndim == 0 or arr.shape[0] != n:
            raise ShapeMismatchError(
                f"attribute {name!r} has {arr.shape} values, expected {n}",
                source=group.source,
                element=group.path,
            )
        ds = group.create_array(name, arr, compression="gzip", compression_opts=2, resizable=True)
        ds.set_attrs({"last_modified": _timestamp()})


def _row_slices(n: int, per_block: int) -> Iterable[tuple[int, int]]:
    for start in range(0, n, per_block):
        yield start, min(n, start + per_block)


def _dense_block(matrix: Any, start: int, stop: int) -> np.ndarray:
    block = matrix[start:stop]
    if hasattr(block, "compute"):
        block = compute_one(block)
    if sp.issparse(block):
        return block.toarray()
    return np.asarray(block)


def _write_matrix(group: Group, key: str, matrix: Any, path: str) -> None:
    """Write a cells x genes matrix as a genes x cells dataset, one block of cells at a time."""
    n_cells, n_genes = matrix.shape
    dtype = np.dtype(matrix.dtype)
    if dtype.kind not in ("i", "u", "f"):
        raise ValueError(f"loom matrices must hold integers or floats; {path} has {dtype}")
    is_sparse = sp.issparse(matrix) or isinstance(
        getattr(matrix, "_meta", None), sp.spmatrix | sp.sparray
    )
    ds = group.create_array(
        key,
        shape=(n_genes, n_cells),
        dtype=dtype,
        chunks=(min(_LOOM_CHUNK, n_genes), min(_LOOM_CHUNK, n_cells)),
        compression="gzip",
        compression_opts=2,
        resizable=True,
    )
    per_block = max(_LOOM_CHUNK, settings.chunk_target_bytes // max(1, n_genes * dtype.itemsize))
    per_block -= per_block % _LOOM_CHUNK
    for start, stop in _row_slices(n_cells, per_block):
        block = _dense_block(matrix, start, stop)
        if not is_sparse and not np.isfinite(block).all():
            raise ValueError(f"INF and NaN not allowed in loom matrix ({path})")
        ds.write((slice(None), slice(start, stop)), block.T)
    ds.set_attrs({"last_modified": _timestamp()})


def _named_axis(df: pd.DataFrame, names: pd.Index, default: str) -> dict[str, Any]:
    attrs: dict[str, Any] = {k: np.array(v) for k, v in df.to_dict("list").items()}
    attrs[names.name if names.name is not None else default] = np.asarray(names)
    return attrs


def write_loom(filename: PathLike, adata: AnnData, *, write_obsm_varm: bool = False) -> None:
    """Write ``adata`` as a loom file (genes x cells), as :func:`anndata.io.write_loom`.

    X becomes ``/matrix`` and each layer ``/layers/<key>`` (transposed); var columns and
    var names (attribute ``var_names.name`` or ``"var_names"``) become ``/row_attrs``, obs
    likewise ``/col_attrs``; with ``write_obsm_varm`` obsm/varm entries become 2-d
    attributes. Matrices are written one block of cells at a time (lazy X is computed block
    by block). The file is written beside the target and renamed into place. Local files only.
    """
    loc = as_location(filename)
    if not loc.is_local:
        raise StorageError("loom files can only be written to local disk", source=loc.url)
    if adata.X is None:
        raise ValueError("loompy does not accept empty matrices as data")
    n_obs, n_vars = adata.shape
    if n_obs == 0 or n_vars == 0:
        raise ValueError("Main matrix cannot be empty")
    row_attrs = _named_axis(adata.var, adata.var_names, "var_names")
    col_attrs = _named_axis(adata.obs, adata.obs_names, "obs_names")
    if write_obsm_varm:
        col_attrs.update(dict(adata.obsm))
        row_attrs.update(dict(adata.varm))
    elif len(adata.obsm) or len(adata.varm):
        warnings.warn(
            "The loom file will lack these fields:\n"
            f"{set(adata.obsm.keys()) | set(adata.varm.keys())}\n"
            "Use write_obsm_varm=True to export multi-dimensional annotations",
            UserWarning,
            stacklevel=2,
        )

    target = loc.path
    tmp = f"{target}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open_root(tmp, "w", kind="h5ad") as root:
            meta = root.create_group("attrs")
            meta.create_array("CreationDate", _timestamp())
            meta.create_array("LOOM_SPEC_VERSION", LOOM_SPEC_VERSION)
            layers = root.create_group("layers")
            _write_matrix(root, "matrix", adata.X, "X")
            for key, layer in adata.layers.items():
                if "/" in key:
                    raise FormatError(f"layer name {key!r} cannot contain '/'", source=target)
                _write_matrix(layers, key, layer, f"layers[{key!r}]")
            _write_attrs(root.create_group("row_attrs"), row_attrs, n_vars)
            _write_attrs(root.create_group("col_attrs"), col_attrs, n_obs)
            root.create_group("row_graphs")
            root.create_group("col_graphs")
            root.set_attrs({"last_modified": _timestamp()})
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
