"""Every element encoding round-trips and is stored exactly as anndata stores it.

For each value: annscale writes it, annscale reads it back equal; anndata reads annscale's
element equal; annscale reads anndata's element equal; and the stored layout (every node's
attributes with their stored types, array dtypes and shapes) is the same as anndata's.
"""

from __future__ import annotations

import warnings

import anndata
import awkward as ak
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from annscale.io import read_elem, write_elem
from annscale.spec.tree import describe

rng = np.random.default_rng(0)


def _rec() -> np.recarray:
    return np.rec.fromarrays(
        [
            np.arange(4),
            rng.random(4).astype(np.float32),
            np.array(["a", "bb", "", "dddd"], dtype=object),
        ],
        names=["n", "f", "s"],
    )


VALUES = {
    "array_f32_2d": rng.random((5, 3)).astype(np.float32),
    "array_int_1d": np.arange(7, dtype=np.int64),
    "array_uint8": np.arange(6, dtype=np.uint8),
    "array_bool": np.array([True, False, True]),
    "array_empty": np.zeros((0, 3)),
    "list_ints": [1, 2, 3],
    "string_array_obj": np.array(["a", "bé", ""], dtype=object),
    "string_array_u": np.array(["x", "yy", "zzz"]),
    "string_array_2d": np.array([["a", "b"], ["c", "d"]], dtype=object),
    "scalar_int": 3,
    "scalar_float": 2.5,
    "scalar_bool": True,
    "scalar_np_int16": np.int16(-4),
    "scalar_np_float32": np.float32(1.5),
    "scalar_complex": np.complex128(1 + 2j),
    "zero_dim": np.array(7.0),
    "string": "hello",
    "np_str": np.str_("wörld"),
    "null": None,
    "rec_array": _rec(),
    "csr": sp.random(6, 4, density=0.4, format="csr", random_state=0, dtype=np.float32),
    "csc": sp.random(6, 4, density=0.4, format="csc", random_state=1),
    "csr_array": sp.csr_array(sp.random(5, 7, density=0.3, format="csr", random_state=2)),
    "csc_array": sp.csc_array(sp.random(5, 7, density=0.3, format="csc", random_state=3)),
    "csr_empty": sp.csr_matrix((3, 4), dtype=np.float64),
    "categorical": pd.Categorical(["a", "b", None, "a"]),
    "categorical_ordered": pd.Categorical(
        ["lo", "hi", "lo"], categories=["lo", "hi"], ordered=True
    ),
    "categorical_int": pd.Categorical([1, 2, 2, 1]),
    "nullable_int32": pd.array([1, None, 3], dtype="Int32"),
    "nullable_uint8": pd.array([1, None, 3], dtype="UInt8"),
    "nullable_bool": pd.array([True, None, False], dtype="boolean"),
    "dataframe": pd.DataFrame(
        {
            "int": np.arange(3),
            "float32": np.arange(3, dtype=np.float32),
            "cat": pd.Categorical(["x", "y", "x"]),
            "str": np.array(["u", "v", "w"], dtype=object),
            "nint": pd.array([1, None, 2], dtype="Int32"),
            "bool": [True, False, True],
        },
        index=pd.Index(["r1", "r2", "r3"]),
    ),
    "dataframe_named_index": pd.DataFrame({"a": [1, 2]}, index=pd.Index(["x", "y"], name="cell")),
    "dataframe_empty": pd.DataFrame(index=pd.Index(["a", "b", "c"])),
    "dict": {"a": np.arange(3), "b": {"c": "s", "d": {}}},
    "dict_empty": {},
}

DASK = {
    "dask_dense": (da.from_array(rng.random((7, 4)), chunks=(3, 4)), "array"),
    "dask_csr": (
        da.from_array(
            sp.random(7, 5, density=0.4, format="csr", random_state=4), chunks=(3, 5), asarray=False
        ),
        "csr_matrix",
    ),
    "dask_csc": (
        da.from_array(
            sp.random(4, 9, density=0.4, format="csc", random_state=5), chunks=(4, 4), asarray=False
        ),
        "csc_matrix",
    ),
}


def assert_equal_value(got, expected):
    """Value equality across the types the encodings produce."""
    if isinstance(expected, da.Array):
        expected = expected.compute()
    if sp.issparse(expected):
        assert sp.issparse(got) and got.format == expected.format
        assert got.shape == expected.shape and got.dtype == expected.dtype
        np.testing.assert_array_equal(got.toarray(), expected.toarray())
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected)
    elif isinstance(expected, (pd.Categorical, pd.api.extensions.ExtensionArray)):
        pd.testing.assert_extension_array_equal(got, expected)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and got.keys() == expected.keys()
        for k in expected:
            assert_equal_value(got[k], expected[k])
    elif isinstance(expected, np.ndarray) and expected.dtype.names:
        assert got.dtype.names == expected.dtype.names
        for name in expected.dtype.names:
            np.testing.assert_array_equal(got[name], expected[name])
    elif isinstance(expected, (np.ndarray, list)):
        expected = np.asarray(expected)
        got = np.asarray(got)
        assert got.shape == expected.shape
        if expected.dtype.kind in "OUT":  # anndata reads zarr strings as StringDType
            assert got.tolist() == expected.tolist()
        else:
            assert got.dtype == expected.dtype
            np.testing.assert_array_equal(got, expected)
    else:
        assert got == expected and (expected is None) == (got is None)
        if not isinstance(expected, str):
            assert np.asarray(got).dtype.kind == np.asarray(expected).dtype.kind


def _path(tmp_path, backend, name):
    return tmp_path / (f"{name}.h5ad" if backend == "h5ad" else f"{name}.zarr")


@pytest.mark.parametrize("key", list(VALUES))
def test_round_trip_and_anndata_compatibility(tmp_path, backend, raw_store, key):
    value = VALUES[key]
    ours, theirs = _path(tmp_path, backend, "ours"), _path(tmp_path, backend, "theirs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = raw_store(ours, backend)
        write_elem(f, key, value)
        g = raw_store(theirs, backend)
        anndata.io.write_elem(g, key, value)
        if backend == "h5ad":
            f.close()
            g.close()
        f, g = raw_store(ours, backend, "r"), raw_store(theirs, backend, "r")
        assert_equal_value(read_elem(f[key]), value)  # annscale -> annscale
        assert_equal_value(anndata.io.read_elem(f[key]), anndata.io.read_elem(g[key]))
        assert_equal_value(read_elem(g[key]), anndata.io.read_elem(g[key]))
    if backend == "h5ad":
        f.close()
        g.close()
    assert describe(ours) == describe(theirs)


@pytest.mark.parametrize("key", list(DASK))
def test_dask_arrays_are_written_like_their_computed_values(tmp_path, backend, raw_store, key):
    value, encoding = DASK[key]
    path = _path(tmp_path, backend, "d")
    f = raw_store(path, backend)
    write_elem(f, key, value)
    if backend == "h5ad":
        f.close()
    f = raw_store(path, backend, "r")
    assert f[key].attrs["encoding-type"] == encoding
    assert_equal_value(read_elem(f[key]), value)
    assert_equal_value(anndata.io.read_elem(f[key]), value.compute())
    if encoding != "array":  # int64 indices for dask sources, as anndata writes them
        assert f[key]["indptr"].dtype == np.int64 and f[key]["indices"].dtype == np.int64
        assert "encoding-type" not in f[key]["data"].attrs


def test_dask_sparse_is_computed_one_strip_at_a_time(tmp_path):
    import h5py

    computed = []

    def record(block, block_info=None):
        computed.append(block_info[0]["array-location"][0])
        return block

    base = da.from_array(
        sp.random(9, 4, density=0.5, format="csr", random_state=6), chunks=(3, 4), asarray=False
    )
    x = base.map_blocks(record, dtype=base.dtype, meta=base._meta)
    with h5py.File(tmp_path / "s.h5ad", "w") as f:
        write_elem(f, "X", x)
    assert computed == [(0, 3), (3, 6), (6, 9)]
    with h5py.File(tmp_path / "s.h5ad", "r") as f:
        np.testing.assert_array_equal(read_elem(f["X"]).toarray(), base.compute().toarray())
        assert f["X/data"].maxshape == (None,)


def test_deferred_values_are_materialised(tmp_path, backend, raw_store):
    class Deferred:
        __annscale_deferred__ = True

        def materialize(self):
            return da.from_array(np.arange(12.0).reshape(4, 3), chunks=2)

    path = _path(tmp_path, backend, "x")
    f = raw_store(path, backend)
    write_elem(f, "x", Deferred())
    np.testing.assert_array_equal(read_elem(f["x"]), np.arange(12.0).reshape(4, 3))


def test_awkward_round_trip(tmp_path, backend, raw_store):
    value = ak.Array([[1, 2, 3], [], [4, 5]])
    ours, theirs = _path(tmp_path, backend, "ours"), _path(tmp_path, backend, "theirs")
    f, g = raw_store(ours, backend), raw_store(theirs, backend)
    write_elem(f, "awk", value)
    anndata.io.write_elem(g, "awk", value)
    assert ak.to_list(read_elem(f["awk"])) == ak.to_list(value)
    assert ak.to_list(read_elem(g["awk"])) == ak.to_list(value)
    assert ak.to_list(anndata.io.read_elem(f["awk"])) == ak.to_list(value)
    if backend == "h5ad":
        f.close()
        g.close()
    assert describe(ours) == describe(theirs)


def test_masked_array_drops_the_mask_like_anndata(tmp_path, backend, raw_store):
    f = raw_store(_path(tmp_path, backend, "m"), backend)
    write_elem(f, "m", np.ma.masked_array([1.0, 2.0], mask=[True, False]))
    np.testing.assert_array_equal(read_elem(f["m"]), [1.0, 2.0])


def test_dataframe_rules(tmp_path, backend, raw_store):
    f = raw_store(_path(tmp_path, backend, "df"), backend)
    with pytest.raises(ValueError, match="reserved"):
        write_elem(f, "a", pd.DataFrame({"_index": [1]}))
    with pytest.raises(ValueError, match="repeated column"):
        write_elem(f, "b", pd.DataFrame([[1, 2]], columns=["x", "x"]))
    with pytest.raises(TypeError, match="must be str"):
        write_elem(f, "c", pd.DataFrame({1: [1]}))
    clash = pd.DataFrame({"cell": [1, 2]}, index=pd.Index(["a", "b"], name="cell"))
    with pytest.raises(ValueError, match="different"):
        write_elem(f, "d", clash)
    same = pd.DataFrame({"cell": ["a", "b"]}, index=pd.Index(["a", "b"], name="cell"))
    write_elem(f, "e", same)
    assert f["e"].attrs["_index"] == "cell"
    pd.testing.assert_frame_equal(read_elem(f["e"]), same)


def test_wide_dataframe_uses_track_order_in_hdf5(tmp_path):
    import h5py

    df = pd.DataFrame(np.zeros((2, 5001), dtype=np.int8), columns=[f"c{i}" for i in range(5001)])
    with h5py.File(tmp_path / "w.h5ad", "w") as f:
        write_elem(f, "df", df)
    with h5py.File(tmp_path / "w.h5ad", "r") as f:
        plist = f["df"].id.get_create_plist()
        assert plist.get_link_creation_order() != 0
        assert read_elem(f["df"]).shape == (2, 5001)


def test_nullable_strings_follow_the_setting(tmp_path, backend, raw_store):
    import annscale

    f = raw_store(_path(tmp_path, backend, "s"), backend)
    values = pd.array(["a", None, "c"], dtype="string")
    write_elem(f, "default", values)
    assert f["default"].attrs["encoding-type"] == "nullable-string-array"
    assert f["default"].attrs["na-value"] == "NA"
    assert_equal_value(read_elem(f["default"]), values)
    assert_equal_value(anndata.io.read_elem(f["default"]), values)
    with annscale.settings.override(allow_write_nullable_strings=False):
        with pytest.raises(ValueError, match="allow_write_nullable_strings"):
            write_elem(f, "strict", values)
        write_elem(f, "plain", pd.array(["a", "b"], dtype="string"))
        assert f["plain"].attrs["encoding-type"] == "string-array"
        df = pd.DataFrame({"s": pd.array(["a", "b"], dtype="string")}, index=["x", "y"])
        write_elem(f, "df", df)
        assert f["df/s"].attrs["encoding-type"] == "string-array"
    with annscale.settings.override(allow_write_nullable_strings=True):
        df = pd.DataFrame({"s": np.array(["a", "b"], dtype=object)}, index=["x", "y"])
        write_elem(f, "df_nullable", df)
        assert f["df_nullable/s"].attrs["encoding-type"] == "nullable-string-array"
        assert f["df_nullable/_index"].attrs["encoding-type"] == "nullable-string-array"
        got = read_elem(f["df_nullable"])
        assert got["s"].tolist() == ["a", "b"] and got.index.tolist() == ["x", "y"]


def test_nan_semantics_strings_round_trip(tmp_path, backend, raw_store):
    dtype = pd.StringDtype(na_value=np.nan)
    values = pd.array(["a", None, "c"], dtype=dtype)
    f = raw_store(_path(tmp_path, backend, "n"), backend)
    write_elem(f, "s", values)
    assert f["s"].attrs["na-value"] == "NaN"
    got = read_elem(f["s"])
    assert got.dtype == dtype
    pd.testing.assert_extension_array_equal(got, values)
