"""Old layouts are upgraded on read, in one place (``annscale.spec.legacy``)."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

import annscale
from annscale.errors import FormatError, OldFormatWarning
from annscale.io import read_elem


def test_elements_without_attributes(tmp_path, backend, raw_store):
    f = raw_store(tmp_path / ("o.h5ad" if backend == "h5ad" else "o.zarr"), backend)
    f.create_group("g")
    data = {"nums": np.arange(3), "bytes": np.array([b"ab", b"c"])}
    for k, v in data.items():
        if backend == "h5ad":
            f["g"].create_dataset(k, data=v)
        else:
            f["g"].create_array(k, data=v)
    with pytest.warns(OldFormatWarning):
        got = read_elem(f["g"])
    np.testing.assert_array_equal(got["nums"], np.arange(3))
    assert list(got["bytes"]) == ["ab", "c"]


def test_one_element_byte_array_is_a_scalar_in_hdf5(tmp_path):
    with h5py.File(tmp_path / "s.h5ad", "w") as f:
        f["method"] = np.array([b"umap"])
        with pytest.warns(OldFormatWarning):
            assert read_elem(f["method"]) == "umap"


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_h5sparse_groups(tmp_path, backend, raw_store, fmt):
    m = sp.random(5, 4, density=0.5, format=fmt, random_state=0)
    f = raw_store(tmp_path / ("h.h5ad" if backend == "h5ad" else "h.zarr"), backend)
    g = f.create_group("m")
    g.attrs["h5sparse_format"] = fmt
    g.attrs["h5sparse_shape"] = [5, 4]
    for name in ("data", "indices", "indptr"):
        if backend == "h5ad":
            g.create_dataset(name, data=getattr(m, name))
        else:
            g.create_array(name, data=getattr(m, name))
    with pytest.warns(OldFormatWarning):
        got = read_elem(f["m"])
    assert got.format == fmt
    np.testing.assert_array_equal(got.toarray(), m.toarray())


def test_dataframe_0_1_0_with_zarr_path_categories(tmp_path):
    g = zarr.open_group(tmp_path / "d.zarr", mode="w", zarr_format=2)
    df = g.create_group("df")
    df.attrs.update(
        {
            "_index": "_index",
            "column-order": ["c"],
            "encoding-type": "dataframe",
            "encoding-version": "0.1.0",
        }
    )
    df.create_array("_index", data=np.array(["a", "b", "c"]))
    codes = df.create_array("c", data=np.array([1, 0, 1], dtype=np.int8))
    codes.attrs["categories"] = "__categories/c"
    cats = df.create_group("__categories").create_array("c", data=np.array(["x", "y"]))
    cats.attrs["ordered"] = True
    with pytest.warns(OldFormatWarning):
        got = read_elem(g["df"])
    expected = pd.Categorical(["y", "x", "y"], categories=["x", "y"], ordered=True)
    pd.testing.assert_extension_array_equal(got["c"].array, expected)
    assert list(got.index) == ["a", "b", "c"]


def _legacy_root(path, *, with_raw_group: bool):
    with h5py.File(path, "w") as f:
        f["X"] = np.ones((2, 3))
        obs = np.array(
            [(b"c1", 0, 1.0), (b"c2", 1, 2.0)], dtype=[("index", "S2"), ("grp", "i1"), ("m1", "f8")]
        )
        f["obs"] = obs
        f["var"] = np.array([(b"g1",), (b"g2",), (b"g3",)], dtype=[("index", "S2")])
        f["uns/grp_categories"] = np.array([b"A", b"B"])
        f["uns/obs_keys_multicol"] = np.array([b"m"])
        f["raw.X"] = np.zeros((2, 4))
        f["raw.var"] = np.array([(b"r1",), (b"r2",), (b"r3",), (b"r4",)], dtype=[("index", "S2")])
        if with_raw_group:
            f.create_group("raw")
            f["raw/X"] = np.zeros((2, 4))


def test_pre_0_7_root(tmp_path):
    path = tmp_path / "old.h5ad"
    _legacy_root(path, with_raw_group=False)
    with pytest.warns(OldFormatWarning):
        adata = annscale.read_h5ad(path)
    assert list(adata.obs_names) == ["c1", "c2"]
    assert list(adata.obs["grp"]) == ["A", "B"]
    assert "grp_categories" not in adata.uns and "obs_keys_multicol" not in adata.uns
    np.testing.assert_array_equal(adata.obsm["m"], [[1.0], [2.0]])
    assert "m1" not in adata.obs.columns
    assert adata.raw.shape == (2, 4) and list(adata.raw.var_names) == ["r1", "r2", "r3", "r4"]


def test_legacy_and_current_raw_together_is_an_error(tmp_path):
    path = tmp_path / "both.h5ad"
    _legacy_root(path, with_raw_group=True)
    with pytest.warns(OldFormatWarning), pytest.raises(FormatError, match="raw"):
        annscale.read_h5ad(path)
