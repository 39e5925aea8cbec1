"""Small, library-independent fingerprints of workload results, and their comparison.

A workload returns a digest (plain JSON: shapes, dtypes, sums, hashes of names) instead of its
result, so the harness can check that anndata and annscale computed the same thing before any
timing counts. Digests are computed after the timed section, by this module's code for both
libraries, in blocks of at most ``BLOCK_NNZ`` stored values, so that computing one does not
raise the measured peak memory much.

Matrices are fingerprinted by shape, dtype, number of stored values, sum, and a checksum that
weights each value by its (row, column) position, so transposed or permuted results differ.
Files written by a workload are fingerprinted by reading them back with anndata's element API.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

BLOCK_NNZ = 4_000_000
#: relative tolerance for floating-point digest values (float32 sums in different orders)
REL_TOL = 1e-4


def _weights(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return ((rows * 31 + cols * 17) % 1009 + 1).astype(np.float64)


class MatrixDigest:
    """Accumulates a matrix fingerprint from row blocks (sparse or dense)."""

    def __init__(self, shape: tuple[int, ...], dtype: Any, kind: str) -> None:
        self.shape = [int(s) for s in shape]
        self.dtype = str(np.dtype(dtype))
        self.kind = kind
        self.nnz = 0
        self.total = 0.0
        self.checksum = 0.0

    def add(self, block: Any, row0: int) -> None:
        if sp.issparse(block):
            coo = sp.coo_matrix(block)
            rows, cols, vals = coo.row.astype(np.int64) + row0, coo.col.astype(np.int64), coo.data
            self.nnz += int(coo.nnz)
        else:
            block = np.asarray(block)
            if block.ndim == 1:
                block = block[:, None]
            rows, cols = np.indices(block.shape, dtype=np.int64)
            rows, cols, vals = (rows + row0).ravel(), cols.ravel(), block.ravel()
            self.nnz += int(np.count_nonzero(block))
        vals = vals.astype(np.float64)
        self.total += float(vals.sum())
        self.checksum += float((vals * _weights(rows, cols)).sum())

    def result(self) -> dict:
        return {
            "kind": self.kind,
            "shape": self.shape,
            "dtype": self.dtype,
            "nnz": self.nnz,
            "sum": self.total,
            "checksum": self.checksum,
        }


def _row_step(n_rows: int, nnz: int) -> int:
    per_row = max(nnz / max(n_rows, 1), 1.0)
    return max(int(BLOCK_NNZ / per_row), 1)


def of_matrix(X: Any) -> dict | None:
    """Fingerprint an in-memory scipy sparse matrix, numpy array or ``np.matrix``."""
    if X is None:
        return None
    if sp.issparse(X):
        kind = X.format
        X = sp.csr_matrix(X) if X.format != "csr" else X
        step = _row_step(X.shape[0], X.nnz)
    else:
        X = np.asarray(X)
        kind = "dense"
        step = _row_step(X.shape[0], X.size)
    d = MatrixDigest(X.shape, X.dtype, kind)
    for start in range(0, X.shape[0], step):
        d.add(X[start : start + step], start)
    return d.result()


def of_vector(v: Any) -> dict:
    """Fingerprint a per-gene or per-cell result (``np.matrix`` of shape (1, n) or (n,))."""
    arr = np.asarray(v).ravel()
    d = MatrixDigest(arr.shape, arr.dtype, "vector")
    d.add(arr, 0)
    return d.result()


def _hash_strings(values: Any) -> str:
    h = hashlib.sha1()
    for v in values:
        h.update(str(v).encode())
        h.update(b"\0")
    return h.hexdigest()[:16]


def of_index(index: pd.Index) -> dict:
    return {"n": len(index), "sha1": _hash_strings(index)}


def of_frame(df: pd.DataFrame) -> dict:
    """Fingerprint an obs/var dataframe: index, column order, dtypes, categories and values."""
    cols = {}
    for name in df.columns:
        col = df[name]
        entry: dict[str, Any] = {"dtype": str(col.dtype)}
        if isinstance(col.dtype, pd.CategoricalDtype):
            entry["categories"] = _hash_strings(col.cat.categories)
        entry["values"] = int(pd.util.hash_pandas_object(col, index=False).sum() % (2**61))
        cols[str(name)] = entry
    return {"index": of_index(df.index), "columns": list(map(str, df.columns)), "data": cols}


def of_anndata(adata: Any) -> dict:
    """Fingerprint an in-memory AnnData (anndata's or annscale's): X, obs, var, mapping keys."""
    return {
        "shape": [int(adata.n_obs), int(adata.n_vars)],
        "obs": of_frame(adata.obs),
        "var": of_frame(adata.var),
        "X": of_matrix(adata.X),
        "layers": sorted(adata.layers.keys()),
        "obsm": {k: of_matrix(v) for k, v in sorted(adata.obsm.items())},
    }


def of_names(adata: Any) -> dict:
    """Fingerprint only what opening reads: shape and the obs/var names."""
    return {
        "shape": [int(adata.n_obs), int(adata.n_vars)],
        "obs_names": of_index(pd.Index(adata.obs_names)),
        "var_names": of_index(pd.Index(adata.var_names)),
    }


def _open_group(path: Path):
    if str(path).endswith(".h5ad"):
        import h5py

        return h5py.File(path, "r")
    import zarr

    return zarr.open_group(str(path), mode="r")


def of_store(path: str | Path) -> dict:
    """Fingerprint a written h5ad or zarr store, read back with anndata in bounded blocks.

    Reads obs, var and obsm fully (they are small) and X in row blocks of about
    ``BLOCK_NNZ`` stored values, so a file larger than memory can be checked.
    """
    import anndata as ad

    root = _open_group(Path(path))
    try:
        obs = ad.io.read_elem(root["obs"])
        var = ad.io.read_elem(root["var"])
        X = None
        if "X" in root:
            elem = root["X"]
            if dict(elem.attrs).get("encoding-type") in ("csr_matrix", "csc_matrix"):
                ds = ad.io.sparse_dataset(elem)
                d = MatrixDigest(ds.shape, ds.dtype, ds.format)
                nnz = int(elem["data"].shape[0])
            else:
                ds = elem
                d = MatrixDigest(ds.shape, ds.dtype, "dense")
                nnz = int(np.prod(ds.shape))
            step = _row_step(ds.shape[0], nnz)
            for start in range(0, ds.shape[0], step):
                d.add(ds[start : start + step], start)
            X = d.result()
        layers = sorted(root["layers"].keys()) if "layers" in root else []
        obsm = {}
        if "obsm" in root:
            obsm = {k: of_matrix(ad.io.read_elem(root["obsm"][k])) for k in sorted(root["obsm"])}
    finally:
        if hasattr(root, "close"):
            root.close()
    return {
        "shape": [len(obs), len(var)],
        "obs": of_frame(obs),
        "var": of_frame(var),
        "X": X,
        "layers": layers,
        "obsm": obsm,
    }


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two digests differ: exact for ints, strings and lists, ``REL_TOL`` for floats."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            if key not in a or key not in b:
                out.append(f"{path}/{key}: only in {'second' if key not in a else 'first'}")
            else:
                out.extend(differences(a[key], b[key], f"{path}/{key}"))
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        out = []
        for i, (x, y) in enumerate(zip(a, b)):
            out.extend(differences(x, y, f"{path}[{i}]"))
        return out
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, int | float) and isinstance(b, int | float):
            if math.isclose(a, b, rel_tol=REL_TOL, abs_tol=1e-9):
                return []
    elif a == b:
        return []
    return [f"{path or '/'}: {a!r} != {b!r}"]
