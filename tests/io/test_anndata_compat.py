"""A rich object (every encoding) round-trips both ways against anndata, in h5ad, zarr v2, v3.

* anndata writes -> annscale reads what anndata reads;
* annscale writes -> anndata reads what it reads from its own file;
* both files hold the same nodes with the same attributes (names, values, stored types) and
  the same array dtypes and shapes.
"""

from __future__ import annotations

import anndata
import numpy as np
import pytest

import annscale
from annscale.spec.tree import describe


def test_anndata_writes_annscale_reads(tmp_path, fmt, compat):
    theirs = compat.path_for(tmp_path, fmt, "theirs")
    compat.write_with(anndata, compat.build(anndata, compat.rich_parts()), theirs, fmt)
    got = compat.read_with(annscale, theirs)
    expected = compat.read_with(anndata, theirs)
    compat.assert_adata_equal(got, expected)


def test_annscale_writes_anndata_reads(tmp_path, fmt, compat):
    ours = compat.path_for(tmp_path, fmt, "ours")
    theirs = compat.path_for(tmp_path, fmt, "theirs")
    compat.write_with(annscale, compat.build(annscale, compat.rich_parts()), ours, fmt)
    compat.write_with(anndata, compat.build(anndata, compat.rich_parts()), theirs, fmt)
    compat.assert_adata_equal(compat.read_with(anndata, ours), compat.read_with(anndata, theirs))
    compat.assert_adata_equal(compat.read_with(annscale, ours), compat.read_with(anndata, theirs))


def _without_na_value(tree):
    """anndata 0.12 writes no ``na-value`` on nullable-string-array; we write the 0.13 one."""
    out = {}
    for path, node in tree.items():
        attrs = dict(node.attrs)
        if attrs.get("encoding-type", (None,))[0] == "nullable-string-array":
            assert attrs.pop("na-value")[0] in ("NA", "NaN"), path
        out[path] = (node.kind, attrs, node.dtype, node.shape)
    return out


def test_same_nodes_attributes_and_dtypes_as_anndata(tmp_path, fmt, compat):
    ours = compat.path_for(tmp_path, fmt, "ours")
    theirs = compat.path_for(tmp_path, fmt, "theirs")
    compat.write_with(annscale, compat.build(annscale, compat.rich_parts()), ours, fmt)
    compat.write_with(anndata, compat.build(anndata, compat.rich_parts()), theirs, fmt)
    a, b = _without_na_value(describe(ours)), _without_na_value(describe(theirs))
    assert sorted(a) == sorted(b)
    for path in b:
        assert a[path] == b[path], path


def test_consolidated_metadata_is_written(tmp_path, compat):
    import json

    for fmt in ("zarr2", "zarr3"):
        ours = compat.path_for(tmp_path, fmt, fmt)
        compat.write_with(annscale, compat.build(annscale, compat.rich_parts()), ours, fmt)
        if fmt == "zarr2":
            meta = json.loads((ours / ".zmetadata").read_text())
            assert meta["zarr_consolidated_format"] == 1
            assert "X/.zattrs" in meta["metadata"] and "obs/cat/codes/.zarray" in meta["metadata"]
        else:
            root = json.loads((ours / "zarr.json").read_text())
            cm = root["consolidated_metadata"]
            assert cm["kind"] == "inline" and "X/data" in cm["metadata"]


def test_compression_reaches_every_non_scalar_dataset(tmp_path, compat):
    import h5py

    for compression, opts in (("gzip", 4), ("lzf", None)):
        path = tmp_path / f"{compression}.h5ad"
        adata = compat.build(annscale, compat.rich_parts())
        adata.write_h5ad(path, compression=compression, compression_opts=opts)
        with h5py.File(path, "r") as f:
            seen = []

            def check(name, obj, compression=compression, seen=seen, opts=opts):
                if isinstance(obj, h5py.Dataset):
                    if obj.shape in ((), None):
                        assert obj.compression is None, name
                    else:
                        assert obj.compression == compression, name
                        seen.append(name)
                        if opts is not None:
                            assert obj.compression_opts == opts, name

            f.visititems(check)
            assert "X/data" in seen and "obs/cat/codes" in seen and "layers/dense" in seen
        expected = compat.read_with(anndata, path)
        compat.assert_adata_equal(compat.read_with(annscale, path), expected)


def test_uncompressed_h5ad_is_contiguous_except_sparse_parts(tmp_path, compat):
    import h5py

    path = tmp_path / "plain.h5ad"
    compat.build(annscale, compat.rich_parts()).write_h5ad(path)
    with h5py.File(path, "r") as f:
        assert f["layers/dense"].chunks is None
        assert f["X/data"].maxshape == (None,) and f["X/indptr"].maxshape == (None,)


def test_as_dense_and_as_sparse(tmp_path, compat):
    import h5py
    import scipy.sparse as sp

    path = tmp_path / "dense.h5ad"
    adata = compat.build(annscale, compat.rich_parts())
    x = adata.X.copy()
    adata.write_h5ad(path, as_dense=("X", "raw/X"))
    with h5py.File(path, "r") as f:
        assert f["X"].attrs["encoding-type"] == "array" and f["X"].shape == x.shape
        assert f["raw/X"].attrs["encoding-type"] == "array"
    back = annscale.read_h5ad(path)
    np.testing.assert_array_equal(back.X, x.toarray())
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        sparse_back = annscale.read_h5ad(
            path, as_sparse=("X", "raw.X"), as_sparse_fmt=fmt, chunk_size=2
        )
        assert isinstance(sparse_back.X, fmt) and isinstance(sparse_back.raw.X, fmt)
        np.testing.assert_array_equal(sparse_back.X.toarray(), x.toarray())
        theirs = anndata.read_h5ad(path, as_sparse=("X", "raw/X"), as_sparse_fmt=fmt)
        compat.assert_adata_equal(sparse_back, theirs)


def test_zarr_chunks_apply_to_dense_x_only(tmp_path):
    import zarr

    adata = annscale.AnnData(np.arange(40.0).reshape(8, 5))
    adata.layers["l"] = np.ones((8, 5))
    adata.write_zarr(tmp_path / "c.zarr", chunks=(4, 5))
    g = zarr.open_group(tmp_path / "c.zarr", mode="r")
    assert g["X"].chunks == (4, 5)
    assert g["layers/l"].chunks == (8, 5)


@pytest.mark.parametrize("zip_fmt", [2, 3])
def test_zip_store_round_trip(tmp_path, zip_fmt, compat):
    path = tmp_path / "a.zarr.zip"
    adata = compat.build(annscale, compat.rich_parts())
    annscale.write_zarr(path, adata, zarr_format=zip_fmt)
    expected = compat.read_with(anndata, path)
    compat.assert_adata_equal(annscale.read_zarr(path), expected)


def test_unconsolidated_and_open_group_inputs(tmp_path, compat):
    import zarr

    path = tmp_path / "u.zarr"
    annscale.write_zarr(
        path, compat.build(annscale, compat.rich_parts()), consolidate_metadata=False
    )
    assert not (path / "zarr.json").read_text().count('consolidated_metadata": {')
    expected = compat.read_with(anndata, path)
    compat.assert_adata_equal(annscale.read_zarr(path), expected)
    compat.assert_adata_equal(annscale.read_zarr(zarr.open_group(path, mode="r")), expected)
    store = zarr.storage.LocalStore(path, read_only=True)
    compat.assert_adata_equal(annscale.read_zarr(store), expected)


def test_backed_reads_delegate_to_read_lazy(tmp_path, monkeypatch):
    import annscale.lazy.open as lazy_open

    calls = []
    monkeypatch.setattr(lazy_open, "read_lazy", lambda url, **kw: calls.append((url, kw)) or "lazy")
    assert annscale.read_h5ad("x.h5ad", backed="r", storage_options={"a": 1}) == "lazy"
    assert calls == [("x.h5ad", {"storage_options": {"a": 1}})]


def test_strings_to_categoricals_before_writing(tmp_path, fmt, compat):
    adata = compat.build(annscale, compat.rich_parts())
    path = compat.path_for(tmp_path, fmt, "s")
    compat.write_with(annscale, adata, path, fmt)
    assert str(adata.obs["str_repeated"].dtype) == "category"  # modified in place, as anndata
    assert str(adata.raw.var["kind"].dtype) == "category"
    back = compat.read_with(annscale, path)
    assert str(back.obs["str_unique"].dtype) != "category"
    kept = compat.build(annscale, compat.rich_parts())
    compat.write_with(annscale, kept, path, fmt, convert_strings_to_categoricals=False)
    assert str(kept.obs["str_repeated"].dtype) != "category"


def test_awkward_arrays_in_the_rich_object_both_ways(tmp_path, fmt, compat):
    """obsm/uns awkward arrays (experimental in anndata) travel with the rest of the object."""
    ak = pytest.importorskip("awkward")

    def with_awkward(lib):
        adata = compat.build(lib, compat.rich_parts())
        adata.obsm["ragged"] = ak.Array([[1, 2], [], [3], [4, 5, 6], [], [7]])
        adata.uns["records"] = ak.Array([{"x": 1, "y": [1.5]}, {"x": 2, "y": []}])
        return adata

    def split(adata):
        ragged, records = adata.obsm["ragged"], adata.uns.pop("records")
        del adata.obsm["ragged"]
        return ak.to_list(ragged), ak.to_list(records)

    for writer, reader in ((anndata, annscale), (annscale, anndata)):
        path = compat.path_for(tmp_path, fmt, f"{writer.__name__}-awk")
        compat.write_with(writer, with_awkward(writer), path, fmt)
        got, expected = compat.read_with(reader, path), compat.read_with(writer, path)
        assert split(got) == split(expected) == split(with_awkward(anndata))
        compat.assert_adata_equal(got, expected)


def test_write_h5ad_dataset_kwargs(tmp_path, compat):
    import h5py

    path = tmp_path / "kw.h5ad"
    annscale.write_h5ad(
        path, compat.build(annscale, compat.rich_parts()), dataset_kwargs={"compression": "gzip"}
    )
    with h5py.File(path, "r") as f:
        assert f["layers/dense"].compression == "gzip" and f["X/data"].compression == "gzip"
    compat.assert_adata_equal(compat.read_with(annscale, path), compat.read_with(anndata, path))
