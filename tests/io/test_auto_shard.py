"""``settings.auto_shard_zarr_v3``: arrays written whole get zarr's automatic shards."""

from __future__ import annotations

import anndata
import numpy as np
import scipy.sparse as sp
import zarr

import annscale


def _adata() -> annscale.AnnData:
    rng = np.random.default_rng(0)
    return annscale.AnnData(
        rng.random((3000, 30), dtype=np.float32),
        layers={"s": sp.random(3000, 30, density=0.1, format="csr", dtype=np.float32, rng=rng)},
    )


def test_auto_shard_setting_shards_zarr_v3_arrays_and_anndata_reads_them(tmp_path):
    adata = _adata()
    with annscale.settings.override(auto_shard_zarr_v3=True):
        adata.write_zarr(tmp_path / "a.zarr", zarr_format=3)
    g = zarr.open_group(tmp_path / "a.zarr", mode="r")
    assert g["X"].shards is not None
    assert g["layers/s/data"].shards is not None
    back = anndata.read_zarr(tmp_path / "a.zarr")
    np.testing.assert_array_equal(back.X, adata.X)
    assert (back.layers["s"] != adata.layers["s"]).nnz == 0


def test_no_shards_by_default_nor_for_v2(tmp_path):
    adata = _adata()
    adata.write_zarr(tmp_path / "v3.zarr", zarr_format=3)
    assert zarr.open_group(tmp_path / "v3.zarr", mode="r")["X"].shards is None
    with annscale.settings.override(auto_shard_zarr_v3=True):
        adata.write_zarr(tmp_path / "v2.zarr", zarr_format=2)
    assert zarr.open_group(tmp_path / "v2.zarr", mode="r")["X"].shards is None


def test_lazy_writes_keep_their_planned_layout(tmp_path):
    """Dask elements are written by concurrent tasks that must own whole shards: the setting
    does not shard them behind the write-out engine's back."""
    _adata().write_h5ad(tmp_path / "a.h5ad")
    lazy = annscale.read_lazy(tmp_path / "a.h5ad")
    with annscale.settings.override(auto_shard_zarr_v3=True):
        annscale.write_zarr(tmp_path / "b.zarr", lazy, zarr_format=3)
    g = zarr.open_group(tmp_path / "b.zarr", mode="r")
    assert g["X"].shards is None
    np.testing.assert_array_equal(anndata.read_zarr(tmp_path / "b.zarr").X, lazy.X.compute())
