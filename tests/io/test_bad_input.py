"""Bad files raise annscale errors naming the file and the element, never wrong data."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import annscale
from annscale.errors import (
    CorruptElementError,
    ShapeMismatchError,
    StorageError,
    UnknownEncodingError,
)


def _small(path, fmt="h5ad"):
    adata = annscale.AnnData(
        sp.random(6, 4, density=0.5, format="csr", random_state=0),
        layers={"dense": np.ones((6, 4))},
    )
    if fmt == "h5ad":
        adata.write_h5ad(path)
    else:
        adata.write_zarr(path, zarr_format=int(fmt[-1]), consolidate_metadata=False)
    return path


def _assert_names(err, path, element):
    msg = str(err.value)
    assert os.path.basename(str(path)) in msg, msg
    assert element in msg, msg
    assert err.value.element == element


def test_truncated_h5ad(tmp_path):
    path = _small(tmp_path / "t.h5ad")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(StorageError) as err:
        annscale.read_h5ad(path)
    assert "t.h5ad" in str(err.value)


def test_not_hdf5_nor_zarr(tmp_path):
    path = tmp_path / "notes.h5ad"
    path.write_text("just some text\n")
    for read in (annscale.read_h5ad, annscale.read_zarr):
        with pytest.raises(StorageError) as err:
            read(path)
        assert "notes.h5ad" in str(err.value) and isinstance(err.value, OSError)


def test_directory_that_is_not_zarr(tmp_path):
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(StorageError, match=r"empty\.zarr"):
        annscale.read_zarr(tmp_path / "empty.zarr")


@pytest.mark.parametrize("fmt", ["zarr2", "zarr3"])
def test_corrupt_zarr_chunk_and_metadata(tmp_path, fmt):
    path = _small(tmp_path / "c.zarr", fmt)
    metadata = {".zarray", ".zattrs", ".zgroup", "zarr.json"}
    chunk = next(
        p for p in (path / "layers" / "dense").rglob("*") if p.is_file() and p.name not in metadata
    )
    chunk.write_bytes(chunk.read_bytes()[:5])
    with pytest.raises(StorageError) as err:
        annscale.read_zarr(path)
    _assert_names(err, path, "/layers/dense")
    meta = path / "obs" / (".zattrs" if fmt == "zarr2" else "zarr.json")
    meta.write_text("{not json")
    with pytest.raises(StorageError) as err:
        annscale.read_zarr(path)
    _assert_names(err, path, "/obs")


def test_unknown_encoding(tmp_path):
    path = _small(tmp_path / "u.h5ad")
    with h5py.File(path, "r+") as f:
        f["layers/dense"].attrs["encoding-type"] = "fancy-array"
        f["layers/dense"].attrs["encoding-version"] = "9.9.9"
    with pytest.raises(UnknownEncodingError) as err:
        annscale.read_h5ad(path)
    _assert_names(err, path, "/layers/dense")
    assert "fancy-array" in str(err.value) and isinstance(err.value, ValueError)


def test_unknown_version_of_a_known_encoding(tmp_path):
    path = _small(tmp_path / "v.h5ad")
    with h5py.File(path, "r+") as f:
        f["X"].attrs["encoding-version"] = "0.9.0"
    with pytest.raises(UnknownEncodingError) as err:
        annscale.read_h5ad(path)
    _assert_names(err, path, "/X")
    assert "0.1.0" in str(err.value)  # the known version is named


@pytest.mark.parametrize(
    ("element", "shape"),
    [("layers/dense", (5, 4)), ("obsm/emb", (3, 2)), ("varp/g", (4, 3)), ("X", (6, 5))],
)
def test_shape_mismatch_names_the_element(tmp_path, element, shape):
    path = _small(tmp_path / "s.h5ad")
    with h5py.File(path, "r+") as f:
        if element in f:
            del f[element]
        if element == "X":
            annscale.write_elem(f, "X", np.zeros(shape))
        else:
            annscale.write_elem(f, element, np.zeros(shape))
    with pytest.raises(ShapeMismatchError) as err:
        annscale.read_h5ad(path)
    _assert_names(err, path, "/" + element)


def _corrupt_sparse(path, child, value):
    with h5py.File(path, "r+") as f:
        del f[f"X/{child}"]
        f[f"X/{child}"] = value


@pytest.mark.parametrize(
    ("child", "make", "text"),
    [
        ("indptr", lambda ip, nnz: ip[::-1].copy(), "starts at"),
        ("indptr", lambda ip, nnz: np.r_[ip[:3], ip[2] - 1, ip[4:]], "not monotonic"),
        ("indptr", lambda ip, nnz: np.r_[ip[:-1], nnz + 5], "ends at"),
        ("indptr", lambda ip, nnz: ip[:-1], "expected 7"),
        ("indices", lambda ix, nnz: np.r_[ix[:-1], 99], "indices must lie in [0, 4)"),
        ("indices", lambda ix, nnz: np.r_[ix[:-1], -1], "indices must lie"),
    ],
)
def test_corrupt_sparse(tmp_path, child, make, text):
    path = _small(tmp_path / "x.h5ad")
    with h5py.File(path, "r") as f:
        original = f[f"X/{child}"][()]
        nnz = f["X/data"].shape[0]
    _corrupt_sparse(path, child, make(original, nnz).astype(original.dtype))
    with pytest.raises(CorruptElementError) as err:
        annscale.read_h5ad(path)
    _assert_names(err, path, f"/X/{child}")
    assert text in str(err.value)


def test_corrupt_sparse_in_zarr(tmp_path):
    import zarr

    path = _small(tmp_path / "x.zarr", "zarr3")
    g = zarr.open_group(path, mode="r+")
    indices = g["X/indices"][...]
    indices[0] = 1000
    g["X/indices"][...] = indices
    with pytest.raises(CorruptElementError) as err:
        annscale.read_zarr(path)
    _assert_names(err, path, "/X/indices")


def test_sparse_without_shape(tmp_path):
    path = _small(tmp_path / "n.h5ad")
    with h5py.File(path, "r+") as f:
        del f["X"].attrs["shape"]
    with pytest.raises(annscale.errors.FormatError) as err:
        annscale.read_h5ad(path)
    _assert_names(err, path, "/X")


def test_missing_dataframe_column(tmp_path):
    path = tmp_path / "m.zarr"
    annscale.AnnData(obs={"a": [1, 2]}, shape=(2, 1)).write_zarr(path, consolidate_metadata=False)
    attrs_file = path / "obs" / "zarr.json"
    meta = json.loads(attrs_file.read_text())
    meta["attributes"]["column-order"] = ["a", "ghost"]
    attrs_file.write_text(json.dumps(meta))
    with pytest.raises(annscale.errors.ElementNotFoundError) as err:
        annscale.read_zarr(path)
    assert "ghost" in str(err.value) and "m.zarr" in str(err.value)
