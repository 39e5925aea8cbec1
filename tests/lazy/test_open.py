"""read_lazy / read_h5ad(backed="r") on files written by anndata 0.12, compared with anndata."""

from __future__ import annotations

import warnings

import anndata as ad
import dask.array as da
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annscale
from annscale.lazy.sparse_chunks import CSCChunk, CSRChunk
from annscale.storage import cache

from .helpers import make_adata, write_all

LAZY_KEYS = [("layers", "counts"), ("layers", "dense"), ("obsm", "X_pca"), ("varm", "loadings"),
             ("obsp", "connectivities"), ("varp", "corr")]  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    adata = make_adata()
    paths = write_all(adata, tmp_path_factory.mktemp("open"))
    yield adata, paths
    cache.clear()


@pytest.fixture(params=["h5ad", "zarr2", "zarr3", "zarr3-sharded", "zip"])
def stored(request, files):
    adata, paths = files
    return adata, paths[request.param]


def _eager(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.endswith(".h5ad"):
            return ad.read_h5ad(path)
        if path.endswith(".zip"):
            return ad.read_zarr(zarr.storage.ZipStore(path, mode="r"))
        return ad.read_zarr(path)


def _same_array(got, exp):
    assert type(got) is type(exp), (type(got), type(exp))
    assert got.dtype == exp.dtype and got.shape == exp.shape
    if sp.issparse(exp):
        assert (got != exp).nnz == 0
    else:
        np.testing.assert_array_equal(got, exp)


def test_lazy_elements_are_dask_with_scipy_chunks(stored):
    _, path = stored
    lazy = annscale.read_lazy(path)
    assert isinstance(lazy.X, da.Array) and isinstance(lazy.X._meta, CSRChunk)
    assert isinstance(lazy.layers["counts"]._meta, CSCChunk)
    assert isinstance(lazy.layers["dense"]._meta, np.ndarray)
    for mapping, key in LAZY_KEYS:
        assert isinstance(getattr(lazy, mapping)[key], da.Array), (mapping, key)
    assert isinstance(lazy.raw.X, da.Array)
    assert isinstance(lazy.obsm["frame"], pd.DataFrame)  # non-array elements are read
    assert lazy.uns["note"] == "hello"


def test_to_memory_equals_anndata(stored):
    _, path = stored
    exp = _eager(path)
    got = annscale.read_lazy(path).to_memory()
    _same_array(got.X, exp.X)
    for mapping, key in LAZY_KEYS:
        _same_array(getattr(got, mapping)[key], getattr(exp, mapping)[key])
    _same_array(got.raw.X, exp.raw.X)
    pd.testing.assert_frame_equal(got.obs, exp.obs)
    pd.testing.assert_frame_equal(got.var, exp.var)
    pd.testing.assert_frame_equal(got.obsm["frame"], exp.obsm["frame"])
    assert got.uns["params"]["k"] == exp.uns["params"]["k"]


def test_compute_gives_scipy_and_numpy(stored):
    _, path = stored
    exp = _eager(path)
    lazy = annscale.read_lazy(path)
    _same_array(lazy.X.compute(), exp.X)
    _same_array(lazy.layers["counts"].compute(), exp.layers["counts"])
    _same_array(lazy.layers["dense"].compute(), exp.layers["dense"])


def test_backed_r_is_lazy(files):
    adata, paths = files
    backed = annscale.read_h5ad(paths["h5ad"], backed="r")
    assert isinstance(backed.X, da.Array)
    _same_array(backed.X.compute(), adata.X)


def test_chunks_argument(files):
    _, paths = files
    lazy = annscale.read_lazy(paths["h5ad"], chunks=(50, -1))
    assert lazy.X.chunks[0] == (50, 50, 50, 50, 40)
    assert lazy.layers["counts"].chunks[1] == (60,)  # CSC: columns per chunk, capped at n_vars


def test_subsetting_pushes_down_and_matches_anndata(stored):
    adata, path = stored
    lazy = annscale.read_lazy(path)
    rows = np.array([200, 3, 3, 17, 90])
    genes = ["gene5", "gene1", "gene40"]
    view = lazy[rows][:, genes]
    exp = adata[rows][:, genes].copy()
    assert view.shape == exp.shape
    assert list(view.obs_names) == list(exp.obs_names)
    _same_array(view.X.compute(), exp.X)
    _same_array(view.layers["counts"].compute(), exp.layers["counts"])
    _same_array(view.layers["dense"].compute(), exp.layers["dense"])
    np.testing.assert_array_equal(view.obsm["X_pca"].compute(), exp.obsm["X_pca"])
    _same_array(view.obsp["connectivities"].compute(), sp.csr_matrix(exp.obsp["connectivities"]))
    mask = (adata.obs["cat"] == "a").to_numpy()
    _same_array(lazy[mask].to_memory().X, adata[mask].copy().X)
    # a view of the lazy object still holds lazy sources: nothing was computed
    assert isinstance(view.X, da.Array)


def test_reductions_on_lazy_x(stored):
    adata, path = stored
    lazy = annscale.read_lazy(path)
    dense = adata.X.toarray()
    for axis in (None, 0, 1):
        np.testing.assert_allclose(lazy.X.sum(axis=axis).compute(), dense.sum(axis=axis),
                                   rtol=1e-5)  # fmt: skip
        np.testing.assert_allclose(lazy.X.var(axis=axis).compute(), dense.var(axis=axis),
                                   rtol=1e-4, atol=1e-7)  # fmt: skip
        np.testing.assert_array_equal(
            annscale.lazy.count_nonzero(lazy.X, axis=axis).compute(),
            np.count_nonzero(dense, axis=axis),
        )
    counts = adata.layers["counts"].toarray()
    got = lazy.layers["counts"].sum(axis=0).compute()
    assert got.dtype == counts.sum(axis=0).dtype
    np.testing.assert_array_equal(got, counts.sum(axis=0))
    np.testing.assert_array_equal(lazy.layers["counts"].max(axis=1).compute(), counts.max(axis=1))


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_lazy_indexing_matches_memory(files, data):
    adata, paths = files
    path = paths[data.draw(st.sampled_from(["h5ad", "zarr3"]))]
    lazy = annscale.read_lazy(path)
    _n_obs, _n_vars = adata.shape

    def indexer(n):
        kind = data.draw(st.sampled_from(["slice", "array", "mask", "all"]))
        if kind == "slice":
            a = data.draw(st.integers(0, n))
            b = data.draw(st.integers(a, n))
            return slice(a, b)
        if kind == "array":
            # an empty axis only admits the empty array
            positions = st.lists(st.integers(0, max(n - 1, 0)), max_size=30 if n else 0)
            return np.array(data.draw(positions), dtype=int)
        if kind == "mask":
            mask = data.draw(st.lists(st.booleans(), min_size=n, max_size=n))
            return np.array(mask, dtype=bool)
        return slice(None)

    lz, mem = lazy, adata
    for _ in range(data.draw(st.integers(1, 3))):
        r, c = indexer(lz.n_obs), indexer(lz.n_vars)
        lz, mem = lz[r, c], mem[r, c]
    assert lz.shape == mem.shape
    with annscale.settings.override(chunk_target_bytes=2000):
        _same_array(lz.X.compute(), sp.csr_matrix(mem.X))
        _same_array(lz.layers["counts"].compute(), sp.csc_matrix(mem.layers["counts"]))
        np.testing.assert_array_equal(lz.layers["dense"].compute(), mem.layers["dense"])


def test_opening_reads_no_chunk_of_h5ad_arrays(files, monkeypatch):
    _, paths = files
    cache.clear()
    read: list[str] = []
    orig_getitem, orig_direct = h5py.Dataset.__getitem__, h5py.Dataset.read_direct

    selections: list[tuple[str, object]] = []

    def getitem(self, args, *a, **kw):
        read.append(self.name)
        selections.append((self.name, args))
        return orig_getitem(self, args, *a, **kw)

    def read_direct(self, *a, **kw):
        read.append(self.name)
        selections.append((self.name, "direct"))
        return orig_direct(self, *a, **kw)

    monkeypatch.setattr(h5py.Dataset, "__getitem__", getitem)
    monkeypatch.setattr(h5py.Dataset, "read_direct", read_direct)
    lazy = annscale.read_lazy(paths["h5ad"])
    assert any(name.startswith("/obs/") for name in read)  # the hook sees reads
    lazy_prefixes = ("/X/", "/layers/", "/obsm/X_pca", "/obsp/", "/varm/", "/varp/", "/raw/X/")
    # of a sparse group, only the first and last indptr entries (its number of nonzeros)
    ends = [(n, sel) for n, sel in selections if n.startswith(lazy_prefixes)]
    assert all(name.endswith("/indptr") for name, _ in ends), ends
    with h5py.File(paths["h5ad"], "r") as f:
        for name, sel in ends:
            n = f[name].shape[0]
            assert sel in (slice(0, 1), slice(n - 1, n)), (name, sel)
    read.clear()
    _ = lazy.X  # materialising reads indptr only
    assert set(read) == {"/X/indptr"}


@pytest.mark.parametrize("kind", ["zarr2", "zarr3"])
def test_opening_reads_no_chunk_of_zarr_arrays(files, monkeypatch, kind):
    _, paths = files
    cache.clear()
    keys: list[str] = []
    orig_get = zarr.storage.LocalStore.get

    async def get(self, key, *a, **kw):
        keys.append(key)
        return await orig_get(self, key, *a, **kw)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", get)
    annscale.read_lazy(paths[kind])
    meta = (".zarray", ".zattrs", ".zgroup", ".zmetadata", "zarr.json")
    chunk_keys = [k for k in keys if not k.endswith(meta)]
    assert any(k.startswith("obs/") for k in chunk_keys)  # obs was read
    lazy_prefixes = ("X/", "layers/", "obsm/X_pca", "obsp/", "varm/", "varp/", "raw/X/")
    assert not [k for k in chunk_keys if k.startswith(lazy_prefixes)], chunk_keys
    cache.clear()


def test_read_lazy_takes_open_handles_by_address(files):
    """anndata's read_lazy takes an open h5py.File or zarr.Group: they stand for their file
    or store, reopened by address in each task (so closing the handle does not matter)."""
    import zarr

    adata, paths = files
    with h5py.File(paths["h5ad"], "r") as f:
        lazy = annscale.read_lazy(f)
    _same_array(lazy.X.compute(), sp.csr_matrix(adata.X))
    lazy = annscale.read_lazy(zarr.open_group(paths["zarr3"], mode="r"))
    _same_array(lazy.X.compute(), sp.csr_matrix(adata.X))
    with pytest.raises(TypeError, match="cannot address"):
        annscale.read_lazy(zarr.open_group(zarr.storage.MemoryStore()))
    with h5py.File(paths["h5ad"], "r") as f, pytest.raises(TypeError, match="below the root"):
        annscale.read_lazy(f["obs"])
