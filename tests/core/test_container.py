"""The AnnData container compared with anndata 0.12.19: construction, elements, repr."""

from __future__ import annotations

import warnings

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import pytest
from _core_helpers import assert_same, both, make_parts
from scipy import sparse

import annscale as ad
from annscale.errors import ImplicitModificationWarning, ShapeMismatchError

# ------------------------------------------------------------------ construction


def test_constructor_full_matches_anndata():
    ours, theirs = both()
    assert_same(ours, theirs)
    assert repr(ours) == repr(theirs)
    assert not ours.is_view and not ours.isbacked and ours.filename is None
    assert len(ours) == 6


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"shape": (3, 2)},
        {"obs": pd.DataFrame(index=["a", "b"])},
        {"obs": {"x": [1, 2, 3]}},
        {"obs": {"obs_names": ["p", "q"], "x": [1, 2]}},
        {"var": pd.DataFrame({"v": [1.0, 2.0]}, index=["g1", "g2"])},
        {"layers": {"L": np.ones((3, 5))}},
        {"obsm": {"e": np.ones((4, 2))}, "varm": {"f": np.ones((2, 3))}},
    ],
)
def test_constructor_without_x(kwargs):
    ours, theirs = ad.AnnData(**kwargs), anndata.AnnData(**kwargs)
    assert ours.shape == theirs.shape
    assert ours.X is None
    assert ours.obs_names.tolist() == theirs.obs_names.tolist()
    assert ours.var_names.tolist() == theirs.var_names.tolist()
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize(
    "X",
    [
        np.ones((3, 2)),
        sparse.csr_matrix(np.ones((3, 2))),
        sparse.csc_matrix(np.ones((3, 2))),
        sparse.csr_array(np.ones((3, 2))),
        sparse.csc_array(np.ones((3, 2))),
    ],
)
def test_constructor_x_types_kept(X):
    a = ad.AnnData(X)
    assert type(a.X) is type(X) and a.X is X
    assert a.obs_names.tolist() == ["0", "1", "2"] and a.var_names.tolist() == ["0", "1"]


def test_dask_x_stays_lazy():
    def boom(block):
        raise AssertionError("computed")

    X = da.ones((6, 4), chunks=2).map_blocks(boom, dtype=float)
    a = ad.AnnData(X, obsm={"d": da.ones((6, 3), chunks=2)})
    assert a.X is X
    v = a[[0, 2], 1:3]
    assert isinstance(v.X, da.Array) and v.X.shape == (2, 2)
    assert isinstance(v.obsm["d"], da.Array)
    assert isinstance(v.copy().X, da.Array)
    assert isinstance(a.T.X, da.Array)


def test_x_dataframe_gives_names():
    df = pd.DataFrame(np.ones((2, 3)), index=["a", "b"], columns=["x", "y", "z"])
    ours, theirs = ad.AnnData(df), anndata.AnnData(df)
    assert ours.obs_names.tolist() == theirs.obs_names.tolist()
    assert ours.var_names.tolist() == theirs.var_names.tolist()
    np.testing.assert_array_equal(ours.X, theirs.X)


def test_constructor_errors():
    with pytest.raises(ValueError, match="as many rows as `X`"):
        ad.AnnData(np.ones((3, 2)), obs=pd.DataFrame(index=list("ab")))
    with pytest.raises(ValueError, match="2-dimensional"):
        ad.AnnData(np.ones(3))
    with pytest.raises(ValueError, match="`shape` needs to be `None`"):
        ad.AnnData(np.ones((3, 2)), shape=(3, 2))
    with pytest.raises(ValueError, match="Only CSR and CSC"):
        ad.AnnData(sparse.coo_matrix(np.ones((2, 2))))
    with pytest.raises(ShapeMismatchError, match="'bad'"):
        ad.AnnData(np.ones((3, 2)), obsm={"bad": np.ones((2, 2))})


def test_dtype_argument_deprecated():
    with pytest.warns(FutureWarning, match="dtype argument is deprecated"):
        a = ad.AnnData(np.ones((2, 2)), dtype=np.float32)
    assert a.X.dtype == np.float32


def test_non_string_index_converted_with_warning():
    obs = pd.DataFrame({"a": [1, 2]}, index=[10, 20])
    with pytest.warns(ImplicitModificationWarning, match="Transforming to str index"):
        a = ad.AnnData(np.ones((2, 1)), obs=obs)
    assert a.obs_names.tolist() == ["10", "20"]
    with pytest.warns(anndata.ImplicitModificationWarning):
        b = anndata.AnnData(np.ones((2, 1)), obs=obs)
    assert a.obs_names.dtype == b.obs_names.dtype


def test_duplicate_names_warn():
    with pytest.warns(UserWarning, match="Observation names are not unique"):
        ad.AnnData(np.ones((2, 1)), obs=pd.DataFrame(index=["a", "a"]))


def test_from_anndata_copy_constructor():
    ours = ad.AnnData(**make_parts())
    again = ad.AnnData(ours)
    assert_same(again, ours)


def test_eq_and_contains_raise():
    a = ad.AnnData(np.ones((2, 2)))
    with pytest.raises(NotImplementedError, match="Equality comparisons are not supported"):
        a == a  # noqa: B015
    with pytest.raises(AttributeError):
        "x" in a  # noqa: B015


# ------------------------------------------------------------------ names & frames


def test_obs_var_names_setters():
    a = ad.AnnData(**make_parts())
    a.obs_names = [f"o{i}" for i in range(6)]
    assert a.obs_names.tolist()[0] == "o0"
    assert a.obsm["df"].index.tolist() == a.obs_names.tolist()
    with pytest.raises(ValueError, match="Length of passed value for var_names is 2"):
        a.var_names = ["a", "b"]
    a.var = pd.DataFrame({"z": range(4)}, index=list("abcd"))
    assert a.var_names.tolist() == list("abcd")
    with pytest.raises(ValueError):
        a.obs = pd.DataFrame(index=["x"])
    del a.obs
    assert a.obs.columns.tolist() == [] and a.n_obs == 6


@pytest.mark.parametrize("join", ["-", "_"])
def test_make_unique_matches_anndata(join):
    names = ["a", "a", "b", "a-1", "a", "b", "c", "a_1"]
    X = np.zeros((len(names), 2))
    with warnings.catch_warnings(record=True) as ours_w:
        warnings.simplefilter("always")
        ours = ad.AnnData(X, obs=pd.DataFrame(index=names))
        ours.obs_names_make_unique(join)
    with warnings.catch_warnings(record=True) as theirs_w:
        warnings.simplefilter("always")
        theirs = anndata.AnnData(X, obs=pd.DataFrame(index=names))
        theirs.obs_names_make_unique(join)
    assert ours.obs_names.tolist() == theirs.obs_names.tolist()
    assert [str(w.message) for w in ours_w] == [str(w.message) for w in theirs_w]
    with pytest.warns(UserWarning, match="Variable names are not unique"):
        ours_v = ad.AnnData(X.T, var=pd.DataFrame(index=names))
    with pytest.warns(UserWarning, match="Example key collisions"):
        ours_v.var_names_make_unique()
    assert ours_v.var_names.is_unique


def test_strings_to_categoricals_matches_anndata():
    obs = pd.DataFrame(
        {
            "few": ["b10", "b2", "b10", "b1"],  # natsorted: b1, b2, b10
            "unique": ["u1", "u2", "u3", "u4"],  # as many categories as rows: unchanged
            "num": [1, 2, 3, 4],
        },
        index=list("abcd"),
    )
    var = pd.DataFrame({"s": ["x", "x"]}, index=["g1", "g2"])
    ours = ad.AnnData(np.ones((4, 2)), obs=obs, var=var)
    theirs = anndata.AnnData(np.ones((4, 2)), obs=obs, var=var)
    ours.strings_to_categoricals()
    theirs.strings_to_categoricals()
    pd.testing.assert_frame_equal(ours.obs, theirs.obs)
    pd.testing.assert_frame_equal(ours.var, theirs.var)
    assert ours.obs["few"].cat.categories.tolist() == ["b1", "b2", "b10"]
    df = obs.copy()
    ours.strings_to_categoricals(df)
    assert isinstance(df["few"].dtype, pd.CategoricalDtype)


def test_strings_to_categoricals_on_view_actualises():
    a = ad.AnnData(np.ones((4, 1)), obs=pd.DataFrame({"s": list("xxyy")}, index=list("abcd")))
    v = a[:3]
    with pytest.warns(ImplicitModificationWarning):
        v.strings_to_categoricals()
    assert not v.is_view and isinstance(v.obs["s"].dtype, pd.CategoricalDtype)
    assert a.obs["s"].dtype == object


# ------------------------------------------------------------------ X


def test_x_setter():
    a = ad.AnnData(np.ones((3, 2)))
    a.X = sparse.csr_matrix(np.eye(3, 2))
    assert sparse.isspmatrix_csr(a.X)
    with pytest.raises(ShapeMismatchError, match=r"wrong shape \(2, 2\), need to be \(3, 2\)"):
        a.X = np.ones((2, 2))
    a.X = [[1, 2], [3, 4], [5, 6]]
    assert a.X.dtype.kind == "i"
    b = ad.AnnData(np.ones((3, 1)))
    b.X = np.arange(3)
    assert b.X.shape == (3, 1)
    del a.X
    assert a.X is None


def test_setitem_writes_x():
    a = ad.AnnData(np.zeros((3, 2)), obs=pd.DataFrame(index=list("abc")))
    a[["a", "c"], 1] = 5
    np.testing.assert_array_equal(a.X[:, 1], [5, 0, 5])


# ------------------------------------------------------------------ aligned mappings


def test_aligned_mapping_errors_name_key_and_shape():
    a = ad.AnnData(np.ones((3, 2)))
    with pytest.raises(ShapeMismatchError) as e:
        a.obsm["emb"] = np.ones((4, 2))
    msg = str(e.value)
    assert "'emb'" in msg and "obsm" in msg and "(3,)" in msg
    with pytest.raises(ValueError, match=r"layers .*\(3, 2\)"):
        a.layers["L"] = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        a.varp["p"] = np.ones((3, 3))
    with pytest.raises(ValueError, match=r"\(3, 3\)"):
        a.obsp["p"] = np.ones((3, 2))
    with pytest.raises(ValueError, match=r"value\.index does not match"):
        a.obsm["df"] = pd.DataFrame({"x": [1, 2, 3]}, index=list("xyz"))


def test_aligned_mapping_values():
    a = ad.AnnData(np.ones((3, 2)))
    a.obsm["v"] = np.arange(3)  # 1-d becomes a column, as in anndata
    assert a.obsm["v"].shape == (3, 1)
    a.obsm["df"] = pd.DataFrame({"x": [1, 2, 3]}, index=a.obs_names)
    a.obsm["sp"] = sparse.csr_matrix(np.ones((3, 5)))
    a.varm["d"] = da.ones((2, 4))
    a.layers["L"] = sparse.csc_array(np.ones((3, 2)))
    assert set(a.obsm) == {"v", "df", "sp"} and "d" in a.varm
    assert repr(a.obsm) == "AxisArrays with keys: v, df, sp"
    assert repr(a.layers) == repr(
        anndata.AnnData(np.ones((3, 2)), layers={"L": np.ones((3, 2))}).layers
    )
    del a.obsm["v"]
    assert list(a.obsm.keys()) == ["df", "sp"]
    a.obsm = {"n": np.ones((3, 1))}
    assert list(a.obsm) == ["n"]
    del a.layers
    assert len(a.layers) == 0
    copied = a.obsm.copy()
    copied["n"][0, 0] = 7
    assert a.obsm["n"][0, 0] == 1
    with pytest.raises(ValueError, match="Only CSR and CSC"):
        a.obsm["coo"] = sparse.coo_matrix(np.ones((3, 1)))
    assert a.obsm.to_df().columns.tolist() == ["n1"]


def test_keys_helpers():
    ours, theirs = both()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in ("obs_keys", "var_keys", "obsm_keys", "varm_keys", "uns_keys"):
            assert getattr(ours, name)() == getattr(theirs, name)(), name


# ------------------------------------------------------------------ conversions


def test_to_df_and_layers():
    ours, theirs = both()
    pd.testing.assert_frame_equal(ours.to_df(), theirs.to_df())
    pd.testing.assert_frame_equal(ours.to_df("counts"), theirs.to_df("counts"))
    with pytest.raises(ValueError, match="X is None"):
        ad.AnnData(shape=(2, 2)).to_df()


def test_transpose_matches_anndata():
    ours, theirs = both()
    t_ours, t_theirs = ours.T, theirs.transpose()
    assert_same(t_ours, t_theirs)
    assert repr(t_ours) == repr(t_theirs)
    assert sparse.isspmatrix_csc(t_ours.layers["counts"])
    with pytest.raises(ValueError, match="view"):
        ours[:2].transpose()


def test_chunked_x():
    ours, theirs = both(n_obs=7)
    got = list(ours.chunked_X(3))
    want = list(theirs.chunked_X(3))
    assert [(s, e) for _, s, e in got] == [(s, e) for _, s, e in want] == [(0, 3), (3, 6), (6, 7)]
    for (a, _, _), (b, _, _) in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert [(s, e) for _, s, e in ours.chunked_X()] == [(0, 7)]


def test_obs_var_vector():
    ours, theirs = both()
    np.testing.assert_array_equal(ours.obs_vector("g1"), theirs.obs_vector("g1"))
    np.testing.assert_array_equal(ours.obs_vector("score"), theirs.obs_vector("score"))
    np.testing.assert_array_equal(ours.var_vector("cell_2"), theirs.var_vector("cell_2"))
    np.testing.assert_array_equal(
        ours.obs_vector("g2", layer="counts"), theirs.obs_vector("g2", layer="counts")
    )
    with pytest.raises(KeyError):
        ours.obs_vector("nope")


def test_to_memory_in_memory_object():
    ours = ad.AnnData(**make_parts())
    mem = ours.to_memory()
    assert mem is not ours and mem.X is ours.X
    copied = ours.to_memory(copy=True)
    assert copied.X is not ours.X
    np.testing.assert_array_equal(copied.X, ours.X)


def test_to_memory_computes_dask_once(monkeypatch):
    import dask

    calls = []
    real = dask.compute

    def counting(*args, **kw):
        calls.append(len(args))
        return real(*args, **kw)

    monkeypatch.setattr(dask, "compute", counting)
    X = da.from_array(np.arange(12.0).reshape(4, 3), chunks=2)
    a = ad.AnnData(
        X,
        layers={"l": X * 2},
        obsm={"o": da.ones((4, 2))},
        varp={"p": da.eye(3)},
    )
    a.raw = a
    mem = a[1:].to_memory()
    assert calls == [5]  # X, layers['l'], obsm['o'], varp['p'] and raw.X: one call
    assert isinstance(mem.X, np.ndarray) and isinstance(mem.raw.X, np.ndarray)
    np.testing.assert_array_equal(mem.layers["l"], np.arange(3.0, 12.0).reshape(3, 3) * 2)
