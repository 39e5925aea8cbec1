"""anndata's older or extension API on the container, compared with anndata 0.12.19:
``AnnData.concatenate`` (deprecated), ``rename_categories``, ``register_anndata_namespace``."""

from __future__ import annotations

import warnings

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import annscale as ad


def _parts(i: int, names: list[str], extra: dict):
    rng = np.random.default_rng(i)
    X = sparse.random(3, len(names), density=0.6, format="csr", random_state=i, dtype=np.float32)
    obs = pd.DataFrame(
        {f"o{i}": list("abc"), "shared": [1.0, 2.0, 3.0]},
        index=[f"c{j}" for j in range(3)],
    )
    var = pd.DataFrame(
        {"symbol": [n.upper() for n in names], "batch_value": [i] * len(names), **extra},
        index=names,
    )
    return dict(X=X, obs=obs, var=var, uns={"u": 1, f"only{i}": i}, obsm={"e": rng.random((3, 2))})


INPUTS = [(list("abcd"), {}), (list("bcde"), {"extra": 1.5}), (list("dcbf"), {})]


def _both():
    ours = [ad.AnnData(**_parts(i, n, e)) for i, (n, e) in enumerate(INPUTS)]
    theirs = [anndata.AnnData(**_parts(i, n, e)) for i, (n, e) in enumerate(INPUTS)]
    return ours, theirs


def _quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


def _assert_concatenated_equal(o, t):
    assert o.obs_names.tolist() == t.obs_names.tolist()
    assert o.var_names.tolist() == t.var_names.tolist()
    pd.testing.assert_frame_equal(o.obs, t.obs)
    # anndata orders the per-batch columns of one batch by set iteration: compare sorted
    pd.testing.assert_frame_equal(o.var[sorted(o.var)], t.var[sorted(t.var)])
    assert [c.rsplit("-", 1)[-1] for c in o.var] == [c.rsplit("-", 1)[-1] for c in t.var]
    assert type(o.X) is type(t.X)
    np.testing.assert_array_equal(o.X.toarray(), t.X.toarray())
    assert dict(o.uns) == dict(t.uns)
    assert list(o.obsm) == list(t.obsm) and list(o.varm) == list(t.varm) == []


@pytest.mark.filterwarnings("ignore:Observation names are not unique")
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"join": "outer"},
        {"join": "outer", "fill_value": 0},
        {"batch_key": "sample", "batch_categories": ["x", "y", "z"]},
        {"index_unique": None, "uns_merge": "same"},
        {"uns_merge": "unique"},
    ],
)
def test_concatenate_matches_anndata(kwargs):
    ours, theirs = _both()
    with pytest.warns(FutureWarning, match="The method concatenate is deprecated"):
        o = ours[0].concatenate(*ours[1:], **kwargs)
    t = _quiet(theirs[0].concatenate, *theirs[1:], **kwargs)
    assert isinstance(o, ad.AnnData)
    _assert_concatenated_equal(o, t)


def test_concatenate_old_calling_conventions():
    ours, theirs = _both()
    o = _quiet(ours[0].concatenate, ours[1:])  # one list of objects
    t = _quiet(theirs[0].concatenate, theirs[1:])
    _assert_concatenated_equal(o, t)
    alone = _quiet(ours[0].concatenate)
    assert alone is not ours[0] and alone.shape == ours[0].shape


def test_concatenate_of_lazy_objects_stays_lazy(tmp_path):
    ours, _ = _both()
    for i, a in enumerate(ours):
        a.write_h5ad(tmp_path / f"{i}.h5ad")
    lazy = [ad.read_h5ad(tmp_path / f"{i}.h5ad", backed="r") for i in range(len(ours))]
    o = _quiet(lazy[0].concatenate, *lazy[1:], join="outer")
    assert isinstance(o.X, da.Array)
    expected = _quiet(ours[0].concatenate, *ours[1:], join="outer")
    pd.testing.assert_frame_equal(o.var, expected.var)
    np.testing.assert_array_equal(o.X.compute().toarray(), expected.X.toarray())


def test_concatenate_without_var_columns():
    o = _quiet(ad.AnnData(np.ones((2, 2))).concatenate, ad.AnnData(np.zeros((1, 2))))
    t = _quiet(anndata.AnnData(np.ones((2, 2))).concatenate, anndata.AnnData(np.zeros((1, 2))))
    pd.testing.assert_frame_equal(o.obs, t.obs)
    assert o.var.shape == t.var.shape == (2, 0)


# ------------------------------------------------------------------ rename_categories


def _with_groups(lib):
    obs = pd.DataFrame(
        {"louvain": pd.Categorical(["0", "1", "0", "2"])}, index=[f"c{i}" for i in range(4)]
    )
    var = pd.DataFrame({"kind": pd.Categorical(["x", "y", "x"])}, index=list("abc"))
    names = np.rec.fromarrays([["g1", "g2"], ["g3", "g4"], ["g5", "g6"]], names=["0", "1", "2"])
    other = np.rec.fromarrays([["g1"], ["g2"]], names=["p", "q"])
    uns = {"rank_genes_groups": {"params": {"groupby": "louvain"}, "names": names, "x": other}}
    return lib.AnnData(np.ones((4, 3)), obs=obs, var=var, uns=uns)


def test_rename_categories_matches_anndata():
    ours, theirs = _with_groups(ad), _with_groups(anndata)
    new = ["T cells", "B cells", "NK"]
    ours.rename_categories("louvain", new)
    theirs.rename_categories("louvain", new)
    pd.testing.assert_frame_equal(ours.obs, theirs.obs)
    assert list(ours.uns["rank_genes_groups"]["names"].dtype.names) == new
    assert ours.uns["rank_genes_groups"]["x"].dtype.names == ("p", "q")  # not matching: kept
    ours.rename_categories("kind", ["X", "Y"])
    theirs.rename_categories("kind", ["X", "Y"])
    pd.testing.assert_frame_equal(ours.var, theirs.var)


def test_rename_categories_errors():
    ours = _with_groups(ad)
    with pytest.raises(ValueError, match="Only list-like"):
        ours.rename_categories("louvain", {"0": "a"})
    with pytest.raises(ValueError, match=r"neither in `\.obs` nor in `\.var`"):
        ours.rename_categories("nope", ["a"])


def test_rename_categories_on_a_view_actualises_it():
    parent = _with_groups(ad)
    view = parent[:2]
    with pytest.warns(ad.ImplicitModificationWarning):
        view.rename_categories("louvain", ["a", "b"])
    assert not view.is_view and view.obs["louvain"].cat.categories.tolist() == ["a", "b"]
    assert parent.obs["louvain"].cat.categories.tolist() == ["0", "1", "2"]


# ------------------------------------------------------------------ namespaces


def test_register_anndata_namespace():
    @ad.register_anndata_namespace("annscale_test_ns")
    class Summary:
        def __init__(self, adata: ad.AnnData):
            self._adata = adata

        def n_cells(self) -> int:
            return self._adata.n_obs

    try:
        adata = ad.AnnData(np.ones((3, 2)))
        assert adata.annscale_test_ns.n_cells() == 3
        assert adata.annscale_test_ns is adata.annscale_test_ns  # cached on the object
        assert ad.AnnData.annscale_test_ns is Summary
        with pytest.warns(UserWarning, match="Overriding existing custom namespace"):
            ad.register_anndata_namespace("annscale_test_ns")(Summary)
    finally:
        del ad.AnnData.annscale_test_ns


def test_register_anndata_namespace_rejects_bad_classes():
    with pytest.raises(AttributeError, match="cannot override reserved attribute 'obs'"):

        @ad.register_anndata_namespace("obs")
        class Obs:
            def __init__(self, adata: ad.AnnData):
                pass

    with pytest.raises(TypeError, match="must be named 'adata'"):

        @ad.register_anndata_namespace("bad_name")
        class BadName:
            def __init__(self, data: ad.AnnData):
                pass

    with pytest.raises(AttributeError, match="empty annotation"):

        @ad.register_anndata_namespace("no_annotation")
        class NoAnnotation:
            def __init__(self, adata):
                pass

    with pytest.raises(TypeError, match="annotated as the 'AnnData' class"):

        @ad.register_anndata_namespace("wrong_type")
        class WrongType:
            def __init__(self, adata: int):
                pass

    assert not hasattr(ad.AnnData, "bad_name")
