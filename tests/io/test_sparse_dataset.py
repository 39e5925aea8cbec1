"""``annscale.io.sparse_dataset``: stored csr/csc groups read on demand, as anndata's."""

from __future__ import annotations

import warnings

import anndata.io
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

import annscale.abc
import annscale.io
from annscale.errors import CorruptElementError, FormatError


def _open(path, kind, mode):
    if kind == "h5ad":
        return h5py.File(path, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zarr.open_group(path, mode=mode, zarr_format=3 if mode == "w" else None)


@pytest.fixture(params=[("h5ad", "csr"), ("h5ad", "csc"), ("zarr", "csr"), ("zarr", "csc")])
def stored(request, tmp_path):
    kind, fmt = request.param
    path = tmp_path / ("m.h5ad" if kind == "h5ad" else "m.zarr")
    matrix = sp.random(12, 9, density=0.4, format=fmt, random_state=0, dtype=np.float32)
    f = _open(path, kind, "w")
    anndata.io.write_elem(f, "m", matrix)
    if kind == "h5ad":
        f.close()
    return path, kind, fmt, matrix


INDICES = [
    slice(None),
    slice(2, 7),
    slice(1, 11, 3),
    np.array([5, 0, 5, 9]),
    np.array([True, False] * 6),
    3,
    (slice(None), slice(2, 5)),
    (np.array([4, 1]), np.array([8, 0, 3])),
    (slice(3, 9), np.array([True] * 4 + [False] * 5)),
    (..., 2),
    (-1, slice(None)),
]


def _dense(x):
    return x.toarray() if sp.issparse(x) else np.asarray(x)


@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_indexing_matches_anndata_and_scipy(stored, index):
    path, kind, fmt, _ = stored
    f = _open(path, kind, "r")
    try:
        ours = annscale.io.sparse_dataset(f["m"])
        theirs = anndata.io.sparse_dataset(f["m"])
        got, expected = ours[index], theirs[index]
        assert sp.issparse(got) and got.format == fmt
        assert got.shape == expected.shape
        np.testing.assert_array_equal(_dense(got), _dense(expected))
    finally:
        if kind == "h5ad":
            f.close()


def test_description_scalar_and_to_memory(stored):
    path, kind, fmt, matrix = stored
    f = _open(path, kind, "r")
    try:
        ds = annscale.io.sparse_dataset(f["m"])
        expected_cls = annscale.abc.CSRDataset if fmt == "csr" else annscale.abc.CSCDataset
        assert isinstance(ds, expected_cls) and ds.format == fmt
        assert ds.shape == (12, 9) and ds.dtype == np.float32
        assert ds.backend == ("hdf5" if kind == "h5ad" else "zarr")
        assert ds[4, 7] == matrix[4, 7]
        full = ds.to_memory()
        assert type(full) is type(anndata.io.sparse_dataset(f["m"]).to_memory())
        np.testing.assert_array_equal(full.toarray(), matrix.toarray())
        assert repr(ds).startswith(f"{fmt.upper()}Dataset: backend")
    finally:
        if kind == "h5ad":
            f.close()


def test_append_is_read_back_by_anndata(stored):
    path, kind, fmt, matrix = stored
    extra = sp.random(
        12 if fmt == "csc" else 4, 9 if fmt == "csr" else 3, density=0.5, format=fmt,
        random_state=1, dtype=np.float32,
    )  # fmt: skip
    f = _open(path, kind, "r+" if kind == "h5ad" else "a")
    ds = annscale.io.sparse_dataset(f["m"])
    ds.append(extra)
    with pytest.raises(NotImplementedError, match="append"):
        ds.append(extra.toarray())
    expected = sp.vstack([matrix, extra]) if fmt == "csr" else sp.hstack([matrix, extra])
    assert ds.shape == expected.shape
    np.testing.assert_array_equal(ds[-2:].toarray(), expected[-2:].toarray())
    if kind == "h5ad":
        f.close()
    f = _open(path, kind, "r")
    np.testing.assert_array_equal(anndata.io.read_elem(f["m"]).toarray(), expected.toarray())


def test_not_a_sparse_group(tmp_path):
    with h5py.File(tmp_path / "d.h5", "w") as f:
        anndata.io.write_elem(f, "d", {"a": 1})
        with pytest.raises(FormatError, match="not a sparse matrix group") as e:
            annscale.io.sparse_dataset(f["d"])
        assert "/d" in str(e.value)


def test_corrupt_indptr_is_named(tmp_path):
    with h5py.File(tmp_path / "c.h5", "w") as f:
        anndata.io.write_elem(f, "m", sp.csr_matrix(np.eye(4, dtype=np.float32)))
        f["m/indptr"][2] = 7  # beyond nnz
        ds = annscale.io.sparse_dataset(f["m"])
        with pytest.raises(CorruptElementError, match="indptr"):
            ds[0:3]
