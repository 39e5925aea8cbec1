"""Lazy open, subsets and to_memory from S3 (moto server) and GCS (fake-gcs-server) on loopback."""

from __future__ import annotations

import warnings

import anndata as ad
import dask.array as da
import numpy as np
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
