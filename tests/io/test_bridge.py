"""The bridge to anndata/scanpy: ``AnnData.to_anndata`` and ``annscale.from_anndata``."""

from __future__ import annotations

import warnings

import anndata
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp

import annscale

sc = pytest.importorskip("scanpy")


def test_to_anndata_equals_anndata_built_from_the_same_parts(compat):
    ours = compat.build(annscale, compat.rich_parts())
    theirs = compat.build(anndata, compat.rich_parts())
    converted = ours.to_anndata()
    assert type(converted) is anndata.AnnData
    compat.assert_adata_equal(converted, theirs)


def test_from_anndata_round_trips(compat):
    theirs = compat.build(anndata, compat.rich_parts())
    ours = annscale.from_anndata(theirs)
    assert type(ours) is annscale.AnnData
    compat.assert_adata_equal(ours, theirs)
    compat.assert_adata_equal(ours.to_anndata(), theirs)
    ours.obs["new"] = 1  # frames are new objects: the source is not changed
    assert "new" not in theirs.obs


def test_lazy_objects_are_computed_or_kept(tmp_path, compat):
    path = tmp_path / "a.h5ad"
    compat.build(annscale, compat.rich_parts()).write_h5ad(path)
    expected = compat.read_with(anndata, path)
    lazy = annscale.read_lazy(path)
    computed = lazy.to_anndata()
    assert isinstance(computed.X, sp.csr_matrix)
    compat.assert_adata_equal(computed, expected)
    kept = lazy.to_anndata(keep_lazy=True)
    assert isinstance(kept.X, da.Array) and isinstance(kept.layers["dense"], da.Array)
    np.testing.assert_array_equal(kept.X.compute().toarray(), expected.X.toarray())
    np.testing.assert_array_equal(kept.layers["dense"].compute(), expected.layers["dense"])


def test_views_convert_to_their_subset(compat):
    ours = compat.build(annscale, compat.rich_parts())
    theirs = compat.build(anndata, compat.rich_parts())
    rows, cols = [0, 2, 5], [True, False, True, True]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        subset = theirs[rows, cols].copy()
        compat.assert_adata_equal(ours[rows, cols].to_anndata(), subset)
        compat.assert_adata_equal(annscale.from_anndata(theirs[rows, cols]), subset)


def test_backed_anndata_x_becomes_lazy(tmp_path, compat):
    path = tmp_path / "b.h5ad"
    compat.build(annscale, compat.rich_parts()).write_h5ad(path)
    backed = anndata.read_h5ad(path, backed="r")
    ours = annscale.from_anndata(backed)
    assert isinstance(ours.X, da.Array)
    np.testing.assert_array_equal(ours.X.compute().toarray(), backed.X[:].toarray())
    backed.file.close()


def test_from_anndata_of_anndata_read_lazy(tmp_path, compat):
    path = tmp_path / "l.zarr"
    compat.build(annscale, compat.rich_parts()).write_zarr(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lazy = anndata.experimental.read_lazy(path)
        ours = annscale.from_anndata(lazy)
        expected = lazy.to_memory()  # what anndata itself loads from its lazy object
    assert isinstance(ours.X, da.Array)
    compat.assert_adata_equal(ours.to_memory(), expected)


def test_from_anndata_rejects_other_types():
    with pytest.raises(TypeError, match=r"anndata\.AnnData"):
        annscale.from_anndata(annscale.AnnData(np.ones((2, 2))))


def _counts(lib):
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(2.0, (40, 12)).astype(np.float32))
    adata = lib.AnnData(X)
    adata.obs_names = [f"c{i}" for i in range(40)]
    adata.var_names = [f"g{j}" for j in range(12)]
    return adata


def test_scanpy_runs_on_converted_objects(tmp_path):
    """normalize_total + log1p + highly_variable_genes + pca on a to_anndata() result give
    what they give on the same anndata object; the result converts back."""
    mine = _counts(annscale).to_anndata()
    reference = _counts(anndata)
    for adata in (mine, reference):
        sc.pp.normalize_total(adata, target_sum=1e4)
        sc.pp.log1p(adata)
        sc.pp.highly_variable_genes(adata, n_top_genes=5)
        sc.pp.pca(adata, n_comps=3, svd_solver="arpack")
    np.testing.assert_allclose(mine.X.toarray(), reference.X.toarray())
    np.testing.assert_array_equal(mine.var["highly_variable"], reference.var["highly_variable"])
    np.testing.assert_allclose(np.abs(mine.obsm["X_pca"]), np.abs(reference.obsm["X_pca"]))
    back = annscale.from_anndata(mine)
    assert "log1p" in back.uns and "X_pca" in back.obsm
    back.write_h5ad(tmp_path / "scanpy.h5ad")
    again = anndata.read_h5ad(tmp_path / "scanpy.h5ad")
    np.testing.assert_allclose(again.obsm["X_pca"], mine.obsm["X_pca"])


def test_scanpy_on_a_lazily_read_file(tmp_path):
    _counts(annscale).write_zarr(tmp_path / "c.zarr")
    adata = annscale.read_lazy(tmp_path / "c.zarr").to_anndata()
    sc.pp.normalize_total(adata, target_sum=100)
    np.testing.assert_allclose(np.asarray(adata.X.sum(axis=1)).ravel(), 100, rtol=1e-5)
