"""The two layouts of 10x Genomics ``.h5`` matrices, read through the element layer.

* Cell Ranger 2 ("legacy"): one group per genome, each with ``barcodes``, ``genes``,
  ``gene_names``, ``data``, ``indices``, ``indptr``, ``shape``.
* Cell Ranger 3+ and Space Ranger: one ``/matrix`` group with ``barcodes``, ``data``,
  ``indices``, ``indptr``, ``shape`` and ``features/{id,name,feature_type,genome,...}``
  (probe-barcode matrices add ``features/gene_id``; ``filtered_barcodes`` may be present).

Both store the matrix as CSC with shape ``(genes, cells)``: each column is one cell, which is
exactly CSR of cells x genes, so a range of cells is a contiguous range of ``data`` and
``indices``. obs/var come out as scanpy's ``read_10x_h5`` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import CorruptElementError, ElementNotFoundError, FormatError
from ..storage.elements import Array, Group
from ._names import as_str_array, str_index

__all__ = ["TenxMatrix", "find_matrix", "read_rows", "scalar_attr"]

_MATRIX_KEYS = ("data", "indices", "indptr", "shape", "barcodes")
# features/* datasets scanpy does not copy into var as they are
_V3_SKIPPED = ("name", "feature_type", "id", "gene_id", "_all_tag_keys")


def scalar_attr(value: Any) -> Any:
    """An attribute stored as str, bytes or a 1-element array, as one plain value."""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)) and len(value) == 1:
        value = scalar_attr(value[0])
    if isinstance(value, np.generic):
        value = value.item()
    return value


@dataclass(frozen=True)
class TenxMatrix:
    """Where a file's matrix lives and its obs/var (cells x genes, before feature filters)."""

    group: str  # element path of the group holding data/indices/indptr
    legacy: bool
    n_obs: int  # cells
    n_vars: int  # features, all of them
    obs: pd.DataFrame
    var: pd.DataFrame


def _require_array(group: Group, key: str) -> Array:
    node = group.require(key, "a dataset of the 10x matrix")
    if node.is_group:
        raise FormatError(
            f"{key!r} must be a dataset, found a group", source=group.source, element=node.path
        )
    return node


def _strings(group: Group, key: str) -> np.ndarray:
    return as_str_array(_require_array(group, key).read())


def _shape(group: Group) -> tuple[int, int]:
    """``(cells, genes)`` from the stored ``shape`` dataset ``(genes, cells)``."""
    arr = _require_array(group, "shape")
    shape = np.asarray(arr.read()).ravel()
    if shape.size != 2:
        raise CorruptElementError(
            f"expected 2 values (genes, cells), got {shape.tolist()}",
            source=arr.source,
            element=arr.path,
        )
    n_genes, n_cells = (int(s) for s in shape)
    return n_cells, n_genes


def _check_file_type(root: Group) -> None:
    filetype = scalar_attr(root.attrs.get("filetype", "matrix"))
    if filetype != "matrix":
        raise FormatError(
            f"not a 10x feature-barcode matrix (attribute filetype={filetype!r})",
            source=root.source,
            element=root.path,
        )


def _legacy_group(root: Group, genome: str | None) -> Group:
    genomes = root.keys()
    if not genome:
        if len(genomes) > 1:
            raise FormatError(
                "contains more than one genome; for Cell Ranger 2 (legacy) 10x h5 files pass "
                f"genome=. Available genomes are: {genomes}",
                source=root.source,
                element=root.path,
            )
        if not genomes:
            raise ElementNotFoundError(
                "empty file: expected a '/matrix' group or one group per genome",
                source=root.source,
                element=root.path,
            )
        genome = genomes[0]
    elif genome not in genomes:
        raise FormatError(
            f"could not find genome {genome!r}. Available genomes are: {genomes}",
            source=root.source,
            element=root.path,
        )
    group = root[genome]
    if not group.is_group:
        raise FormatError(
            f"{genome!r} is not a group of matrix datasets", source=root.source, element=group.path
        )
    return group


def _legacy_matrix(group: Group) -> TenxMatrix:
    for key in (*_MATRIX_KEYS, "genes", "gene_names"):
        _require_array(group, key)
    n_obs, n_vars = _shape(group)
    obs = pd.DataFrame(index=str_index(_strings(group, "barcodes")))
    var = pd.DataFrame(
        {"gene_ids": _strings(group, "genes")},
        index=str_index(_strings(group, "gene_names")),
    )
    return TenxMatrix(group.path, True, n_obs, n_vars, obs, var)


def _v3_matrix(group: Group) -> TenxMatrix:
    for key in _MATRIX_KEYS:
        _require_array(group, key)
    features = group.require("features", "the group of feature annotations")
    for key in ("id", "name", "feature_type"):
        _require_array(features, key)
    n_obs, n_vars = _shape(group)

    obs = pd.DataFrame(index=str_index(_strings(group, "barcodes")))
    if "filtered_barcodes" in group:
        obs["filtered_barcodes"] = _require_array(group, "filtered_barcodes").read().astype(bool)

    columns: dict[str, np.ndarray] = {}
    if "gene_id" in features:  # probe-barcode matrix: id names the probe
        columns["gene_ids"] = _strings(features, "gene_id")
        columns["probe_ids"] = _strings(features, "id")
    else:
        columns["gene_ids"] = _strings(features, "id")
    columns["feature_types"] = _strings(features, "feature_type")
    for key in features.keys():
        node = features[key]
        if node.is_group or key in _V3_SKIPPED:
            continue
        values = node.read()
        columns[key] = values.astype(bool) if values.dtype.kind == "b" else as_str_array(values)
    var = pd.DataFrame(columns, index=str_index(_strings(features, "name")))
    return TenxMatrix(group.path, False, n_obs, n_vars, obs, var)


def find_matrix(root: Group, genome: str | None) -> TenxMatrix:
    """Locate the matrix in an open 10x h5 file and read its obs/var (not its values).

    For legacy files ``genome`` picks the group (required when there are several); for
    Cell Ranger 3+ files it is applied later, as a filter on ``var["genome"]``.
    """
    _check_file_type(root)
    if "matrix" in root:
        found = _v3_matrix(root["matrix"])
    else:
        found = _legacy_matrix(_legacy_group(root, genome))
    if (len(found.obs), len(found.var)) != (found.n_obs, found.n_vars):
        raise CorruptElementError(
            f"shape says {found.n_vars} genes x {found.n_obs} cells, but there are "
            f"{len(found.var)} features and {len(found.obs)} barcodes",
            source=root.source,
            element=f"{found.group}/shape",
        )
    return found


def read_indptr(group: Group, n_obs: int, start: int = 0, stop: int | None = None) -> np.ndarray:
    """``indptr[start:stop + 1]`` (one entry per cell plus one), checked."""
    stop = n_obs if stop is None else stop
    arr = group["indptr"]
    if arr.shape != (n_obs + 1,):
        raise CorruptElementError(
            f"expected {n_obs + 1} entries (cells + 1), found shape {arr.shape}",
            source=arr.source,
            element=arr.path,
        )
    return np.asarray(arr.read(slice(start, stop + 1)), dtype=np.int64)


def value_dtype(stored: np.dtype) -> np.dtype:
    """The dtype of X: Cell Ranger's int32 counts become float32 (as scanpy), others stay."""
    return np.dtype(np.float32) if stored == np.dtype(np.int32) else np.dtype(stored)


def read_rows(group: Group, n_obs: int, n_vars: int, start: int, stop: int) -> sparse.csr_matrix:
    """Cells ``start:stop`` as a CSR matrix of all features (reads only their nonzeros)."""
    indptr = read_indptr(group, n_obs, start, stop)
    lo, hi = int(indptr[0]), int(indptr[-1])
    data_arr, indices_arr = group["data"], group["indices"]
    for arr in (data_arr, indices_arr):
        if arr.ndim != 1 or hi > arr.shape[0] or lo > hi:
            raise CorruptElementError(
                f"indptr points to entries {lo}:{hi} but the dataset has shape {arr.shape}",
                source=arr.source,
                element=arr.path,
            )
    data = data_arr.read(slice(lo, hi)).astype(value_dtype(data_arr.dtype), copy=False)
    indices = indices_arr.read(slice(lo, hi))
    if indices.size and (indices.min() < 0 or indices.max() >= n_vars):
        raise CorruptElementError(
            f"feature indices must lie in [0, {n_vars})",
            source=indices_arr.source,
            element=indices_arr.path,
        )
    return sparse.csr_matrix((data, indices, indptr - lo), shape=(stop - start, n_vars))
