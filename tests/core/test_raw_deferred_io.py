# ruff: noqa: RUF001  (the repr text of anndata uses a unicode multiplication sign)
"""raw, the deferred-value hook and the write delegation of the container."""

from __future__ import annotations

import sys
import threading
import types

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from _core_helpers import assert_same, make_parts
from scipy import sparse

import annscale as ad
from annscale.core.arrays import to_memory
from annscale.core.index import subset_array

# ------------------------------------------------------------------ raw


@pytest.fixture
def pair():
    ours, theirs = ad.AnnData(**make_parts()), anndata.AnnData(**make_parts())
    ours.raw = ours
    theirs.raw = theirs
    return ours, theirs


def test_raw_snapshot(pair):
    ours, theirs = pair
    raw = ours.raw
    assert raw.shape == theirs.raw.shape == (6, 4)
    assert raw.obs_names.tolist() == ours.obs_names.tolist()
    assert raw.var_names.tolist() == theirs.raw.var_names.tolist()
    np.testing.assert_array_equal(raw.X, theirs.raw.X)
    assert list(raw.varm) == ["loadings"]
    assert str(raw) == str(theirs.raw)
    ours.X[0, 0] = 1000  # a snapshot: later in-place changes of X do not reach raw
    assert raw.X[0, 0] != 1000
    ours._inplace_subset_var(["g1", "g2"])
    assert ours.raw.shape == (6, 4)


def test_raw_follows_obs_subsetting(pair):
    ours, theirs = pair
    for index in (np.s_[[4, 1]], np.s_[1:5:2, "g2"], np.s_[::-1, :2]):
        v_ours, v_theirs = ours[index], theirs[index]
        assert v_ours.raw.shape == v_theirs.raw.shape
        assert v_ours.raw.obs_names.tolist() == v_theirs.raw.obs_names.tolist()
        np.testing.assert_array_equal(v_ours.raw.X, v_theirs.raw.X)
        c = v_ours.copy()
        np.testing.assert_array_equal(c.raw.X, v_theirs.raw.X)
    v = ours[1:3]
    v.raw.X[0, 0] = -1  # the view's raw never writes into the parent's raw
    assert ours.raw.X[1, 0] != -1


def test_raw_indexing_and_to_adata(pair):
    ours, theirs = pair
    sub_o, sub_t = ours.raw[:, ["g3", "g1"]], theirs.raw[:, ["g3", "g1"]]
    assert sub_o.var_names.tolist() == ["g3", "g1"]
    np.testing.assert_array_equal(sub_o.X, sub_t.X)
    assert sub_o.varm["loadings"].shape == (2, 2)
    rows = ours.raw[[0, 2], 1]
    assert rows.shape == (2, 1)
    full_o, full_t = ours.raw.to_adata(), theirs.raw.to_adata()
    assert isinstance(full_o, ad.AnnData)
    np.testing.assert_array_equal(full_o.X, full_t.X)
    assert full_o.obs_names.tolist() == full_t.obs_names.tolist()
    np.testing.assert_array_equal(ours.raw.obs_vector("g2"), theirs.raw.obs_vector("g2"))
    np.testing.assert_array_equal(ours.raw.var_vector("cell_1"), theirs.raw.var_vector("cell_1"))


def test_raw_delete_and_none(pair):
    ours, _ = pair
    del ours.raw
    assert ours.raw is None
    ours.raw = ours
    ours.raw = None
    assert ours.raw is None
    with pytest.raises(ValueError, match="Can only init raw"):
        ours.raw = np.ones((6, 4))


def test_raw_mapping_in_constructor():
    var = pd.DataFrame(index=["r1", "r2", "r3"])
    a = ad.AnnData(np.ones((2, 1)), raw={"X": sparse.csr_matrix(np.ones((2, 3))), "var": var})
    assert a.raw.shape == (2, 3) and a.raw.var_names.tolist() == ["r1", "r2", "r3"]
    with pytest.raises(ValueError, match="rows"):
        ad.AnnData(np.ones((2, 1)), raw={"X": np.ones((3, 3))})


# ------------------------------------------------------------------ deferred values


class FakeDeferred:
    """A deferred value (the protocol of annscale.core.deferred), counting materialisations."""

    __annscale_deferred__ = True

    def __init__(self, array):
        self._array = array
        self.calls = 0

    shape = property(lambda self: self._array.shape)
    dtype = property(lambda self: self._array.dtype)
    ndim = property(lambda self: self._array.ndim)

    def materialize(self):
        self.calls += 1
        return da.from_array(self._array, chunks=2)


class PushdownDeferred(FakeDeferred):
    """A deferred value with a registered subset (no materialisation when subsetting)."""


@subset_array.register(PushdownDeferred)
def _(x, rows, cols):
    return PushdownDeferred(subset_array(x._array, rows, cols))


def test_deferred_values_validated_without_materialising():
    X = FakeDeferred(np.arange(12.0).reshape(4, 3))
    layer = FakeDeferred(np.ones((4, 3)))
    a = ad.AnnData(X, layers={"l": layer}, obsm={"o": FakeDeferred(np.ones((4, 2)))})
    assert (X.calls, layer.calls) == (0, 0)
    assert a.shape == (4, 3)
    with pytest.raises(ValueError, match="'bad'"):
        a.obsm["bad"] = FakeDeferred(np.ones((5, 2)))
    repr(a)
    assert X.calls == 0


def test_deferred_materialised_once_and_cached():
    X = FakeDeferred(np.arange(12.0).reshape(4, 3))
    a = ad.AnnData(X, layers={"l": FakeDeferred(np.ones((4, 3)))})
    assert isinstance(a.X, da.Array)
    assert a.X is a.X
    assert X.calls == 1
    threads = [threading.Thread(target=lambda: a.layers["l"]) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert a._layers["l"].calls == 1
    v = a[[0, 2]]
    np.testing.assert_array_equal(v.X.compute(), [[0, 1, 2], [6, 7, 8]])
    assert X.calls == 1  # the view reused the parent's materialisation
    np.testing.assert_array_equal(a.to_memory().X, np.arange(12.0).reshape(4, 3))


def test_deferred_pushdown_through_views():
    X = PushdownDeferred(np.arange(20.0).reshape(5, 4))
    a = ad.AnnData(X)
    a.raw = ad.AnnData(PushdownDeferred(np.arange(20.0).reshape(5, 4)))
    v = a[1:][[0, 2], ["1", "3"]]
    np.testing.assert_array_equal(v.X.compute(), [[5, 7], [13, 15]])
    assert X.calls == 0  # never materialised in full: the subset was pushed down
    c = v.copy()
    assert isinstance(c._X, PushdownDeferred) and c.X.shape == (2, 2)
    np.testing.assert_array_equal(v.raw.X.compute(), [[4, 5, 6, 7], [12, 13, 14, 15]])
    mem = v.to_memory()
    assert isinstance(mem.X, np.ndarray) and isinstance(mem.raw.X, np.ndarray)


def test_to_memory_dispatch():
    x = np.ones(2)
    assert to_memory(x) is x
    s = sparse.csr_matrix(np.ones((2, 2)))
    assert to_memory(s) is s
    np.testing.assert_array_equal(to_memory(da.ones(3)), np.ones(3))
    np.testing.assert_array_equal(to_memory(FakeDeferred(np.ones((2, 2)))), np.ones((2, 2)))
    df = pd.DataFrame({"a": [1]})
    assert to_memory(df) is df


def test_from_parts_and_backing():
    class Backing:
        filename = "/data/x.h5ad"
        closed = False

        def close(self):
            self.closed = True

    obs, var = pd.DataFrame(index=["a", "b"]), pd.DataFrame(index=["x"])
    X = FakeDeferred(np.ones((2, 1)))
    backing = Backing()
    a = ad.AnnData._from_parts(X=X, obs=obs, var=var, obsm={"o": np.ones((2, 1))}, backing=backing)
    assert a._X is X and a.obs is obs and a.isbacked and str(a.filename) == "/data/x.h5ad"
    assert X.calls == 0
    assert repr(a).startswith("AnnData object with n_obs × n_vars = 2 × 1 backed at '/data/x.h5ad'")
    v = a[:1]
    assert v.isbacked and repr(v).startswith(
        "View of AnnData object with n_obs × n_vars = 1 × 1 backed"
    )
    mem = v.to_memory()
    assert not mem.isbacked and isinstance(mem.X, np.ndarray)


# ------------------------------------------------------------------ write delegation


@pytest.fixture
def fake_writers(monkeypatch):
    calls = {}

    def recorder(name):
        def write(target, adata, **kw):
            calls[name] = (target, adata, kw)

        return write

    for mod, func in [
        ("annscale.io.h5ad", "write_h5ad"),
        ("annscale.io.zarr", "write_zarr"),
        ("annscale.genomics.text", "write_csvs"),
        ("annscale.genomics.loom", "write_loom"),
    ]:
        module = types.ModuleType(mod)
        setattr(module, func, recorder(func))
        monkeypatch.setitem(sys.modules, mod, module)
    return calls


def test_write_methods_delegate(fake_writers, tmp_path):
    a = ad.AnnData(np.ones((2, 2)))
    a.write_h5ad(str(tmp_path / "a.h5ad"), compression="gzip", as_dense=("X",))
    target, obj, kw = fake_writers["write_h5ad"]
    # the target is passed on as given (a str may be a URL, so it is not made a Path)
    assert obj is a and target == str(tmp_path / "a.h5ad")
    assert kw["compression"] == "gzip" and kw["as_dense"] == ("X",)
    assert kw["convert_strings_to_categoricals"] is True
    a.write(tmp_path / "b.h5ad")
    assert fake_writers["write_h5ad"][0] == tmp_path / "b.h5ad"
    a.write_zarr(tmp_path / "a.zarr", chunks=(1, 1), zarr_format=2)
    assert fake_writers["write_zarr"][2] == {
        "chunks": (1, 1),
        "convert_strings_to_categoricals": True,
        "zarr_format": 2,
    }
    a.write_csvs(tmp_path / "csv", skip_data=False)
    assert fake_writers["write_csvs"][2] == {"skip_data": False, "sep": ","}
    a.write_loom(tmp_path / "a.loom")
    assert fake_writers["write_loom"][2] == {"write_obsm_varm": False}
    with pytest.raises(ValueError, match="Provide a filename"):
        a.write_h5ad()
    with pytest.raises(ValueError, match="no longer supported"):
        a.write_zarr(tmp_path / "b.zarr", chunks=True)


def test_transpose_of_object_with_raw_drops_raw():
    a = ad.AnnData(**make_parts())
    a.raw = a
    assert a.T.raw is None
    assert_same(a.T.T, a)
