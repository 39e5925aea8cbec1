"""Lazy open, subsets and to_memory from S3 (moto server) and GCS (fake-gcs-server) on loopback."""

from __future__ import annotations

import warnings

import anndata as ad
import dask.array as da
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annscale
from annscale.storage import cache

from .helpers import make_adata


@pytest.fixture(scope="module")
def local_files(tmp_path_factory):
    adata = make_adata(n_obs=120, n_vars=30, seed=3)
    tmp = tmp_path_factory.mktemp("cloud")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(tmp / "a.h5ad")
        with ad.settings.override(zarr_write_format=3):
            adata.write_zarr(tmp / "a3.zarr")
        with ad.settings.override(zarr_write_format=2):
            adata.write_zarr(tmp / "a2.zarr")
    return adata, tmp


@pytest.fixture(params=["s3_store", "gcs_store"])
def bucket(request):
    return request.getfixturevalue(request.param)


@pytest.mark.parametrize("name", ["a.h5ad", "a3.zarr", "a2.zarr"])
def test_remote_lazy_open_subset_to_memory(bucket, local_files, name):
    adata, tmp = local_files
    url = bucket.upload(tmp / name)
    try:
        lazy = annscale.read_lazy(url, storage_options=bucket.storage_options)
        assert isinstance(lazy.X, da.Array)
        assert lazy.shape == adata.shape
        rows = np.array([100, 4, 4, 57])
        view = lazy[rows][:, ["gene3", "gene0"]]
        exp = adata[rows][:, ["gene3", "gene0"]].copy()
        assert (view.X.compute() != exp.X).nnz == 0
        mem = lazy.to_memory()
        assert type(mem.X) is sp.csr_matrix and (mem.X != adata.X).nnz == 0
        assert type(mem.layers["counts"]) is sp.csc_matrix
        np.testing.assert_array_equal(mem.layers["dense"], adata.layers["dense"])
        np.testing.assert_allclose(
            lazy.X.sum(axis=0).compute(), adata.X.toarray().sum(axis=0), rtol=1e-5
        )
        assert list(mem.obs_names) == list(adata.obs_names)
    finally:
        cache.clear()


def test_remote_backed_h5ad(s3_store, local_files):
    adata, tmp = local_files
    url = s3_store.upload(tmp / "a.h5ad")
    try:
        backed = annscale.read_h5ad(url, backed="r", storage_options=s3_store.storage_options)
        assert isinstance(backed.X, da.Array)
        assert (backed[:10].X.compute() != adata.X[:10]).nnz == 0
    finally:
        cache.clear()


def _eager_local(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.read_h5ad(path) if str(path).endswith(".h5ad") else ad.read_zarr(path)


@pytest.mark.parametrize("name", ["a.h5ad", "a3.zarr", "a2.zarr"])
def test_remote_eager_read_takes_url_and_storage_options(bucket, local_files, name):
    _, tmp = local_files
    url = bucket.upload(tmp / name)
    read = annscale.read_h5ad if name.endswith(".h5ad") else annscale.read_zarr
    try:
        got = read(url, storage_options=bucket.storage_options)
    finally:
        cache.clear()
    exp = _eager_local(tmp / name)
    assert type(got.X) is type(exp.X) and got.X.dtype == exp.X.dtype
    assert (got.X != exp.X).nnz == 0
    assert type(got.layers["counts"]) is type(exp.layers["counts"])
    np.testing.assert_array_equal(got.layers["dense"], exp.layers["dense"])
    np.testing.assert_array_equal(got.obsm["X_pca"], exp.obsm["X_pca"])
    pd.testing.assert_frame_equal(got.obs, exp.obs)
    pd.testing.assert_frame_equal(got.var, exp.var)


#: elements whose chunks opening must not read (paths relative to the root)
LAZY_PREFIXES = ("X/", "layers/", "obsm/X_pca", "obsp/", "varm/", "varp/", "raw/X/")


def test_remote_h5ad_open_reads_no_array_chunk(bucket, local_files, monkeypatch):
    _, tmp = local_files
    url = bucket.upload(tmp / "a.h5ad")
    read: list[str] = []
    orig_getitem, orig_direct = h5py.Dataset.__getitem__, h5py.Dataset.read_direct

    def getitem(self, args, *a, **kw):
        read.append(self.name.lstrip("/"))
        return orig_getitem(self, args, *a, **kw)

    def read_direct(self, *a, **kw):
        read.append(self.name.lstrip("/"))
        return orig_direct(self, *a, **kw)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)
    monkeypatch.setattr(h5py.Dataset, "read_direct", read_direct)
    try:
        lazy = annscale.read_lazy(url, storage_options=bucket.storage_options)
        assert any(n.startswith("obs/") for n in read)  # the hook sees reads
        assert not [n for n in read if n.startswith(LAZY_PREFIXES)], read
        read.clear()
        _ = lazy.X  # building X's graph reads indptr only
        assert set(read) == {"X/indptr"}
    finally:
        cache.clear()


@pytest.mark.parametrize("name", ["a3.zarr", "a2.zarr"])
def test_remote_zarr_open_reads_no_array_chunk(bucket, local_files, monkeypatch, name):
    import zarr

    _, tmp = local_files
    url = bucket.upload(tmp / name)
    keys: list[str] = []
    orig_get = zarr.storage.FsspecStore.get

    async def get(self, key, *a, **kw):
        keys.append(key)
        return await orig_get(self, key, *a, **kw)

    monkeypatch.setattr(zarr.storage.FsspecStore, "get", get)
    try:
        lazy = annscale.read_lazy(url, storage_options=bucket.storage_options)
        meta = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")
        chunk_keys = [k for k in keys if not k.endswith(meta)]
        assert any(k.startswith("obs/") for k in chunk_keys)  # the hook sees reads
        assert not [k for k in chunk_keys if k.startswith(LAZY_PREFIXES)], chunk_keys
        keys.clear()
        _ = lazy.X
        chunk_keys = [k for k in keys if not k.endswith(meta)]
        assert chunk_keys and all(k.startswith("X/indptr/") for k in chunk_keys), chunk_keys
    finally:
        cache.clear()
