"""The element layer behaves the same over HDF5, zarr v2 and zarr v3."""

from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest

from annscale.errors import ElementNotFoundError, StorageError
from annscale.storage import Location, as_location, detect_kind, open_root

BACKENDS = [("h5ad", None, "x.h5ad"), ("zarr", 2, "x.zarr"), ("zarr", 3, "x.zarr")]


@pytest.fixture(params=BACKENDS, ids=["h5ad", "zarr2", "zarr3"])
def store(request, tmp_path):
    kind, fmt, name = request.param
    return tmp_path / name, kind, fmt


def test_arrays_attrs_and_children_round_trip(store):
    path, kind, fmt = store
    with open_root(path, "w", kind=kind, zarr_format=fmt) as root:
        root.create_array("ints", np.arange(10, dtype=np.int32), compression="gzip")
        root.create_array("strs", np.array(["a", "bé", ""], dtype=object))
        root.create_array("scalar_s", "hello")
        root.create_array("scalar_i", np.int64(7))
        root.create_array("empty", np.zeros((0,), dtype=np.float64))
        root.create_null("none")
        g = root.create_group("g")
        g.set_attrs(
            {
                "encoding-type": "x",
                "column-order": [],
                "names": ["a", "b"],
                "shape": (3, 4),
                "ordered": True,
            }
        )
        r = g.create_array("resizable", np.arange(3), resizable=True)
        if kind == "h5ad":
            r.resize((5,))
            r[3:5] = [10, 11]
    with open_root(path) as root:
        assert root.keys() == ["empty", "g", "ints", "none", "scalar_i", "scalar_s", "strs"]
        np.testing.assert_array_equal(root["ints"][:], np.arange(10))
        assert root["ints"].dtype == np.int32
        strs = root["strs"].read()
        assert strs.dtype == object and list(strs) == ["a", "bé", ""]
        assert root["strs"].is_string
        assert root["scalar_s"].read(()) == "hello"
        assert int(root["scalar_i"].read(())) == 7
        assert root["empty"].shape == (0,)
        attrs = root["g"].attrs
        assert attrs == {
            "encoding-type": "x",
            "column-order": [],
            "names": ["a", "b"],
            "shape": [3, 4],
            "ordered": True,
        }
        assert type(attrs["ordered"]) is bool
        assert root["g/resizable"].path == "/g/resizable"
        if kind == "h5ad":
            np.testing.assert_array_equal(root["g/resizable"][:], [0, 1, 2, 10, 11])
            assert root["none"].read() is None
        assert root.store_format == ("h5ad" if kind == "h5ad" else f"zarr{fmt}")


def test_h5ad_attribute_dtypes_match_anndata_conventions(tmp_path):
    import h5py

    p = tmp_path / "a.h5ad"
    with open_root(p, "w", kind="h5ad") as root:
        root.set_attrs({"column-order": [], "names": ["a"], "shape": (2, 3), "ordered": False})
    with h5py.File(p) as f:
        assert f.attrs["column-order"].dtype == np.float64  # h5py's default for []
        assert h5py.check_string_dtype(f.attrs["names"].dtype).encoding == "utf-8"
        assert f.attrs["shape"].dtype == np.int64
        assert f.attrs["ordered"].dtype == np.bool_


def test_missing_child_names_file_and_element(store):
    path, kind, fmt = store
    with open_root(path, "w", kind=kind, zarr_format=fmt) as root:
        root.create_group("obs")
    with open_root(path) as root:
        with pytest.raises(ElementNotFoundError) as e:
            root["obs"].require("_index", "the dataframe index")
        msg = str(e.value)
        assert "_index" in msg and "/obs" in msg and str(path) in msg
        assert isinstance(e.value, KeyError)


def test_detect_kind_and_errors(tmp_path):
    junk = tmp_path / "junk.h5ad"
    junk.write_bytes(b"this is not hdf5 at all")
    with pytest.raises(StorageError, match="not an HDF5") as e:
        detect_kind(as_location(junk))
    assert str(junk) in str(e.value) and isinstance(e.value, OSError)
    with pytest.raises(StorageError, match="no such file"):
        with open_root(tmp_path / "missing.h5ad"):
            pass
    h5 = tmp_path / "ok.h5ad"
    with open_root(h5, "w", kind="h5ad") as root:
        root.create_array("a", np.arange(1000))
    truncated = tmp_path / "truncated.h5ad"
    truncated.write_bytes(h5.read_bytes()[:600])
    with pytest.raises(StorageError) as e:
        with open_root(truncated) as root:
            root["a"].read()
    assert str(truncated) in str(e.value)


def test_location_is_hashable_picklable_and_stable(tmp_path):
    a = as_location(tmp_path / "x.h5ad")
    b = Location(str(tmp_path / "x.h5ad"))
    assert a == b and hash(a) == hash(b) and a.token == b.token
    s3 = as_location(
        "s3://bucket/x.zarr", {"client_kwargs": {"endpoint_url": "http://127.0.0.1:1"}}
    )
    assert s3.protocol == "s3" and not s3.is_local and s3.name == "x.zarr"
    assert pickle.loads(pickle.dumps(s3)) == s3
    assert s3.token != as_location("s3://bucket/x.zarr").token


def test_h5_attributes_read_like_h5py(tmp_path):
    """Scalar variable-length strings take a fast low-level path; every attribute still
    reads as h5py reads it (then decoded to plain Python)."""
    path = tmp_path / "attrs.h5"
    with h5py.File(path, "w") as f:
        f.attrs["utf8"] = "encodé"
        f.attrs.create("ascii", "csr_matrix", dtype=h5py.string_dtype("ascii"))
        f.attrs["fixed"] = np.bytes_(b"0.1.0")
        f.attrs["strings"] = np.array(["a", "b"], dtype=h5py.string_dtype())
        f.attrs["shape"] = np.array([3, 4])
        f.attrs["ordered"] = np.bool_(True)
        f.attrs["empty"] = h5py.Empty("f")
    with open_root(str(path), "r") as root:
        assert root.attrs == {
            "utf8": "encodé",
            "ascii": "csr_matrix",
            "fixed": "0.1.0",
            "strings": ["a", "b"],
            "shape": [3, 4],
            "ordered": True,
            "empty": h5py.Empty("f"),
        }
        assert root.attr("ascii") == "csr_matrix"
        assert root.attr("missing", "default") == "default"
        assert all(root.attr(k) == v for k, v in root.attrs.items())
