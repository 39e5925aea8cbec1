"""The public writers on lazy objects: read_lazy results, subsets and lazy concatenations
are written by the write-out engine and read back by anndata equal to the in-memory data."""

from __future__ import annotations

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import zarr

import annscale
import annscale.writeout.session as session_mod
from annscale.errors import WriteConflictError


def make_adata(n_obs: int = 60, n_vars: int = 24, seed: int = 0) -> anndata.AnnData:
    """An in-memory anndata object with every kind of lazily read array element."""
    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, n_vars, density=0.2, format="csr", random_state=seed, dtype=np.float32)
    obs = pd.DataFrame(
        {"cell_type": rng.choice(["B", "T", "NK"], n_obs), "n": np.arange(n_obs)},
        index=[f"c{seed}_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(
        {"gene": [f"g{i}" for i in range(n_vars)]}, index=[f"g{i}" for i in range(n_vars)]
    )
    adata = anndata.AnnData(
        X=X,
        obs=obs,
        var=var,
        layers={
            "dense": rng.random((n_obs, n_vars)),
            "csc": sp.random(n_obs, n_vars, density=0.3, format="csc", random_state=seed + 1),
        },
        obsm={"pca": rng.random((n_obs, 5)).astype(np.float32)},
        varm={"loadings": rng.random((n_vars, 3))},
        obsp={
            "distances": sp.random(n_obs, n_obs, density=0.1, format="csr", random_state=seed + 2)
        },
        varp={"corr": rng.random((n_vars, n_vars))},
        uns={"note": "hello", "values": np.arange(3)},
    )
    adata.raw = adata.copy()
    return adata


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """``(path of an .h5ad file, the in-memory object it holds)``."""
    adata = make_adata()
    path = str(tmp_path_factory.mktemp("src") / "source.h5ad")
    adata.write_h5ad(path)
    return path, adata


def read_any(path: str) -> anndata.AnnData:
    return anndata.read_h5ad(path) if path.endswith(".h5ad") else anndata.read_zarr(path)


def assert_equal_adata(got: anndata.AnnData, expected: anndata.AnnData) -> None:
    def same(a, b, what):
        assert sp.issparse(a) == sp.issparse(b), what
        if sp.issparse(b):
            assert a.format == b.format and a.shape == b.shape and a.dtype == b.dtype, what
            assert (a != b).nnz == 0, what
        else:
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b), err_msg=what)
            assert np.asarray(a).dtype == np.asarray(b).dtype, what

    same(got.X, expected.X, "X")
    pd.testing.assert_frame_equal(got.obs, expected.obs)
    pd.testing.assert_frame_equal(got.var, expected.var)
    for name in ("layers", "obsm", "varm", "obsp", "varp"):
        assert set(getattr(got, name)) == set(getattr(expected, name)), name
        for k in getattr(expected, name):
            same(getattr(got, name)[k], getattr(expected, name)[k], f"{name}/{k}")
    assert (got.raw is None) == (expected.raw is None)
    if expected.raw is not None:
        same(got.raw.X, expected.raw.X, "raw/X")
        pd.testing.assert_frame_equal(got.raw.var, expected.raw.var)


def encoding_attrs(path: str) -> dict[str, dict]:
    """``{element path: encoding attributes (and shape)}`` of every node of a store."""
    out: dict[str, dict] = {}
    keys = ("encoding-type", "encoding-version", "shape")

    def pick(attrs) -> dict:
        return {
            k: (list(np.asarray(attrs[k]).tolist()) if k == "shape" else str(attrs[k]))
            for k in keys
            if k in attrs
        }

    if path.endswith(".h5ad"):
        with h5py.File(path, "r") as f:
            f.visititems(lambda name, node: out.__setitem__(name, pick(node.attrs)))
            out["/"] = pick(f.attrs)
        return out
    root = zarr.open_group(path, mode="r")
    out["/"] = pick(root.attrs)
    for name, node in root.members(max_depth=None):
        out[name] = pick(node.attrs)
    return out


TARGETS = [
    pytest.param("out.h5ad", None, id="h5ad"),
    pytest.param("out.zarr", 2, id="zarr-v2"),
    pytest.param("out.zarr", 3, id="zarr-v3"),
]


def write(adata, path: str, zarr_format: int | None, **kw) -> None:
    if path.endswith(".h5ad"):
        adata.write_h5ad(path, **kw)
    else:
        adata.write_zarr(path, zarr_format=zarr_format, **kw)


@pytest.mark.parametrize(("name", "zarr_format"), TARGETS)
def test_lazy_object_reads_back_in_anndata(tmp_path, source, name, zarr_format):
    path, expected = source
    lazy = annscale.read_lazy(path, chunks=13)
    assert all(
        hasattr(v, "__dask_graph__") for v in (lazy.X, lazy.layers["csc"], lazy.obsp["distances"])
    )
    out = str(tmp_path / name)
    write(lazy, out, zarr_format)
    assert_equal_adata(read_any(out), expected)
    # encoding attributes exactly as anndata writes the same data
    theirs = str(tmp_path / ("theirs-" + name))
    if name.endswith(".h5ad"):
        expected.write_h5ad(theirs)
    else:
        with anndata.settings.override(zarr_write_format=zarr_format):
            expected.write_zarr(theirs)
    assert encoding_attrs(out) == encoding_attrs(theirs)


@pytest.mark.parametrize(("name", "zarr_format"), TARGETS)
def test_subset_of_lazy_object(tmp_path, source, name, zarr_format):
    path, expected = source
    rows = np.r_[3:40:2, 41, 50:55]
    cols = slice(2, 20)
    sub = annscale.read_lazy(path, chunks=7)[rows, cols]
    out = str(tmp_path / name)
    write(sub, out, zarr_format)
    assert_equal_adata(read_any(out), expected[rows, cols].copy())


@pytest.mark.parametrize(("name", "zarr_format"), TARGETS)
def test_lazy_concat_of_several_files(tmp_path, name, zarr_format):
    parts = [make_adata(20 + 5 * i, 24, seed=i) for i in range(3)]
    for p in parts:
        p.raw = None
    paths = []
    for i, p in enumerate(parts):
        paths.append(str(tmp_path / f"in{i}.h5ad"))
        p.write_h5ad(paths[-1])
    lazy = annscale.concat([annscale.read_lazy(p, chunks=9) for p in paths])
    out = str(tmp_path / name)
    write(lazy, out, zarr_format)
    assert_equal_adata(read_any(out), anndata.concat(parts))
    # writing over any input the lazy concatenation reads is refused, the input untouched
    for target in (paths[0], paths[2]):
        with pytest.raises(WriteConflictError, match="reading from lazily"):
            lazy.write_h5ad(target)
    with pytest.raises(WriteConflictError):
        lazy.write_zarr(paths[1])
    assert_equal_adata(anndata.read_h5ad(paths[1]), parts[1])


def test_zarr_elements_are_one_graph(tmp_path, source, monkeypatch):
    """Every dask element of the store is written by one compute (after one counting pass)."""
    calls: list[int] = []
    counts: list[int] = []
    real_compute, real_count = session_mod.compute, session_mod.count_nonzeros

    def spy_compute(*graphs, **kw):
        calls.append(len(graphs))
        return real_compute(*graphs, **kw)

    def spy_count(*items):
        counts.append(len(items))
        return real_count(*items)

    monkeypatch.setattr(session_mod, "compute", spy_compute)
    monkeypatch.setattr(session_mod, "count_nonzeros", spy_count)
    path, expected = source
    out = str(tmp_path / "one.zarr")
    annscale.write_zarr(out, annscale.read_lazy(path, chunks=11), zarr_format=3)
    # X, layers/dense, layers/csc, obsm/pca, varm/loadings, obsp/distances, varp/corr, raw/X
    assert calls == [8]
    # the sparse ones (X, layers/csc, obsp/distances, raw/X) are plain reads: their stored
    # indptr gives the nonzeros per block, so the counting pass computes nothing
    assert counts == [0]
    assert_equal_adata(read_any(out), expected)
    # blocks computed from the stored ones are counted, in one pass
    counts.clear()
    lazy = annscale.read_lazy(path, chunks=11)
    lazy.X = lazy.X.map_blocks(lambda b: b * 2, dtype=lazy.X.dtype, meta=lazy.X._meta)
    lazy.layers["csc"] = lazy.layers["csc"].map_blocks(
        lambda b: b, dtype=lazy.layers["csc"].dtype, meta=lazy.layers["csc"]._meta
    )
    annscale.write_zarr(str(tmp_path / "two.zarr"), lazy, zarr_format=3)
    assert counts == [2]


def test_write_zarr_options(tmp_path, source):
    path, expected = source
    lazy = annscale.read_lazy(path, chunks=16)
    out = str(tmp_path / "opts.zarr")
    annscale.write_zarr(
        out, lazy, zarr_format=3, chunks=64, shards=256, compressor=zarr.codecs.ZstdCodec(level=3)
    )
    g = zarr.open_group(out, mode="r")
    assert g["X/data"].chunks == (64,) and g["X/data"].shards == (256,)
    assert g["X/indptr"].dtype == np.int64 and g["X/indices"].dtype == np.int64
    assert any(isinstance(c, zarr.codecs.ZstdCodec) for c in g["layers/dense"].compressors)
    assert_equal_adata(read_any(out), expected)

    dense = annscale.read_lazy(path, chunks=16)
    dense.X = dense.layers["dense"]
    out2 = str(tmp_path / "dense.zarr")
    annscale.write_zarr(
        out2, dense, zarr_format=3, chunks=(8, 12), shards=(16, 24), compressor=None
    )
    x = zarr.open_group(out2, mode="r")["X"]
    assert x.chunks == (8, 12) and x.shards == (16, 24) and x.compressors == ()
    np.testing.assert_array_equal(anndata.read_zarr(out2).X, expected.layers["dense"])
    # the positional anndata call form
    annscale.write_zarr(str(tmp_path / "pos.zarr"), lazy)
    assert_equal_adata(read_any(str(tmp_path / "pos.zarr")), expected)
    with pytest.raises(ValueError, match="shards need"):
        annscale.write_zarr(str(tmp_path / "bad.zarr"), lazy, zarr_format=2, shards=256)


def test_overwrite_previous_output_and_as_dense(tmp_path, source):
    path, expected = source
    out = str(tmp_path / "o.h5ad")
    anndata.AnnData(np.ones((2, 2))).write_h5ad(out)
    annscale.read_lazy(path, chunks=10).write_h5ad(out, as_dense=["X"], compression="gzip")
    with h5py.File(out, "r") as f:
        assert isinstance(f["X"], h5py.Dataset) and f["X"].compression == "gzip"
        assert dict(f["X"].attrs) == {"encoding-type": "array", "encoding-version": "0.2.0"}
    back = anndata.read_h5ad(out)
    np.testing.assert_array_equal(back.X, expected.X.toarray())
    assert [p for p in tmp_path.iterdir() if ".annscale-" in p.name] == []


def test_progress_bar_setting(tmp_path, source, capsys, monkeypatch):
    import annscale.progress as progress

    monkeypatch.setattr(progress, "MINIMUM_SECONDS", 0.0)
    path, _ = source
    with annscale.settings.override(progress=True, scheduler="threads"):
        annscale.read_lazy(path, chunks=10).write_zarr(str(tmp_path / "p.zarr"))
        annscale.read_lazy(path, chunks=10).write_h5ad(str(tmp_path / "p.h5ad"))
    out = capsys.readouterr()
    text = out.out + out.err
    assert "100%" in text and "/X" in text  # dask's bar (zarr) and the block bar (h5ad)
    with annscale.settings.override(progress=False):
        annscale.read_lazy(path, chunks=10).write_zarr(str(tmp_path / "q.zarr"))
        annscale.read_lazy(path, chunks=10).write_h5ad(str(tmp_path / "q.h5ad"))
    out = capsys.readouterr()
    assert "100%" not in out.out + out.err
