"""annscale.concat gives what anndata.concat gives, for in-memory and lazy inputs."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from concat_builders import assert_same, random_parts, run_both, to_anndata, to_annscale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import annscale

_options = st.fixed_dictionaries(
    {
        "axis": st.sampled_from([0, 1, "obs", "var"]),
        "join": st.sampled_from(["inner", "outer"]),
        "merge": st.sampled_from([None, "same", "unique", "first", "only"]),
        "uns_merge": st.sampled_from([None, "same", "unique", "first", "only"]),
        "label": st.sampled_from([None, "batch", "float"]),  # "float" clashes with a column
        "index_unique": st.sampled_from([None, "-", "_"]),
        "fill_value": st.sampled_from([None, 0, 9, np.nan, 2.5]),
        "pairwise": st.booleans(),
    }
)


def _run_both(parts: list[dict], kwargs: dict, *, lazy: bool, as_dict: bool = False):
    """(ours, theirs) or, when anndata raises, check we raise the same type."""
    theirs_in = [to_anndata(p) for p in parts]
    ours_in = [to_annscale(p, lazy=lazy) for p in parts]
    if as_dict:
        keys = [f"k{i}" for i in range(len(parts))]
        theirs_in, ours_in = dict(zip(keys, theirs_in)), dict(zip(keys, ours_in))
    return run_both(
        lambda: anndata.concat(theirs_in, **kwargs), lambda: annscale.concat(ours_in, **kwargs)
    )


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
    options=_options,
    keys_kind=st.sampled_from(["default", "list", "dict"]),
)
def test_concat_matches_anndata(lazy, seeds, options, keys_kind):
    parts = [random_parts(s) for s in seeds]
    if keys_kind == "list":
        options = {**options, "keys": [f"key{i}" for i in range(len(parts))]}
    ours, theirs = _run_both(parts, options, lazy=lazy, as_dict=keys_kind == "dict")
    if theirs is not None:
        if lazy:
            assert ours.X is None or isinstance(ours.X, annscale_dask_array())
        assert_same(ours, theirs)


def annscale_dask_array():
    import dask.array as da

    return da.Array


# ---------------------------------------------------------------------------- targeted cases


def _simple(n_obs: int, genes: list[str], *, cells_prefix: str, X=None, **kw) -> dict:
    X = (
        np.arange(n_obs * len(genes), dtype=np.float32).reshape(n_obs, len(genes))
        if X is None
        else X
    )
    return {
        "X": X,
        "obs": kw.pop("obs", pd.DataFrame(index=[f"{cells_prefix}{i}" for i in range(n_obs)])),
        "var": pd.DataFrame(index=genes),
        "layers": kw.pop("layers", {}),
        "obsm": kw.pop("obsm", {}),
        "varm": {},
        "obsp": kw.pop("obsp", {}),
        "varp": {},
        "uns": kw.pop("uns", {}),
    }


def test_seed_example_batches():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame(
        {"cell_type": ["T cell", "B cell"] * 50, "sample": ["A", "B"] * 50, "q": rng.random(100)},
        index=[f"cell_{i}" for i in range(100)],
    )
    var = pd.DataFrame(
        {"gene_name": [f"Gene_{j}" for j in range(50)]}, index=[f"ENSG{j:05d}" for j in range(50)]
    )
    X = sp.csr_matrix(rng.poisson(1.0, size=(100, 50)).astype(np.float32))
    results = []
    for lib in (annscale, anndata):
        adata = lib.AnnData(X=X.copy(), obs=obs.copy(), var=var.copy())
        adata.strings_to_categoricals()
        a = adata[adata.obs["sample"] == "A", :].copy()
        b = adata[adata.obs["sample"] == "B", :].copy()
        combined = lib.concat([a, b], axis=0, join="inner", label="batch", keys=["A", "B"])
        results.append(combined)
    assert results[0].obs["batch"].value_counts().to_dict() == {"A": 50, "B": 50}
    assert_same(*results)


# lazy sparse chunks are scipy matrices (the lazy engine's chunk type), so sparse *arrays*
# are compared in memory only
@pytest.mark.parametrize(
    ("kinds", "lazy"),
    [
        *[
            (k, lazy)
            for k in [("dense", "csr"), ("csc", "dense"), ("csr", "csc")]
            for lazy in (False, True)
        ],
        (("csr_array", "dense"), False),
    ],
)
@pytest.mark.parametrize("join", ["inner", "outer"])
def test_mixed_sparse_dense_result_type(kinds, join, lazy):
    def make(kind, n, genes, prefix):
        X = np.arange(1, n * len(genes) + 1, dtype=np.int64).reshape(n, len(genes)) % 3
        X = {
            "dense": X,
            "csr": sp.csr_matrix(X),
            "csc": sp.csc_matrix(X),
            "csr_array": sp.csr_array(X),
        }[kind]
        return _simple(n, genes, cells_prefix=prefix, X=X)

    parts = [make(kinds[0], 3, ["a", "b", "c"], "x"), make(kinds[1], 2, ["c", "d", "a"], "y")]
    ours, theirs = _run_both(parts, {"join": join}, lazy=lazy)
    assert_same(ours, theirs)


@pytest.mark.parametrize("lazy", [False, True], ids=["eager", "lazy"])
def test_layers_and_obsm_present_in_some(lazy):
    a = _simple(
        2,
        ["a", "b"],
        cells_prefix="x",
        layers={"l": sp.csr_matrix(np.ones((2, 2)))},
        obsm={"p": np.ones((2, 3)), "only_a": np.ones((2, 1))},
    )
    b = _simple(
        3,
        ["b", "c"],
        cells_prefix="y",
        layers={"l": np.full((3, 2), 2.0), "m": np.ones((3, 2))},
        obsm={"p": np.zeros((3, 1))},
    )
    for join in ("inner", "outer"):
        for fill in (None, -1):
            ours, theirs = _run_both([a, b], {"join": join, "fill_value": fill}, lazy=lazy)
            assert_same(ours, theirs)


def test_categorical_unions_and_nullable_columns():
    a = _simple(
        2,
        ["a"],
        cells_prefix="x",
        obs=pd.DataFrame(
            {
                "cat": pd.Categorical(["v10", "v2"]),
                "ord": pd.Categorical(["lo", "hi"], categories=["lo", "hi"], ordered=True),
                "flag": [True, False],
                "n": pd.array([1, None], dtype="Int64"),
                "i": [1, 2],
            },
            index=["x0", "x1"],
        ),
    )
    b = _simple(
        2,
        ["a"],
        cells_prefix="y",
        obs=pd.DataFrame(
            {
                "cat": pd.Categorical(["v1", "v2"]),
                "ord": pd.Categorical(["hi", "lo"], categories=["hi", "lo"], ordered=True),
                "s": ["p", "q"],
            },
            index=["y0", "y1"],
        ),
    )
    for join in ("inner", "outer"):
        ours, theirs = _run_both([a, b], {"join": join, "label": "batch"}, lazy=False)
        assert_same(ours, theirs)
    assert list(ours.obs["cat"].cat.categories) == ["v1", "v2", "v10"]  # natural order
    assert ours.obs["flag"].dtype == "boolean"
    assert ours.obs["ord"].dtype == object


def test_x_none_handling():
    a = _simple(2, ["a"], cells_prefix="x")
    b = _simple(2, ["a"], cells_prefix="y")
    a["X"] = b["X"] = None
    ours, theirs = _run_both([a, b], {}, lazy=False)
    assert ours.X is None
    assert_same(ours, theirs)
    c = _simple(2, ["a"], cells_prefix="z")
    with pytest.raises(NotImplementedError, match=r"no \.X"):
        annscale.concat([to_annscale(a), to_annscale(c)])


def test_dict_input_and_keys_conflict():
    a, b = _simple(1, ["a"], cells_prefix="x"), _simple(1, ["a"], cells_prefix="y")
    ours, theirs = _run_both(
        [a, b], {"label": "src", "index_unique": "-"}, lazy=False, as_dict=True
    )
    assert list(ours.obs_names) == ["x0-k0", "y0-k1"]
    assert_same(ours, theirs)
    with pytest.raises(TypeError, match="keys"):
        annscale.concat({"a": to_annscale(a)}, keys=["z"])


def test_raw_only_when_all_have_it():
    a, b = random_parts(3), random_parts(4)
    a["raw"] = {
        "X": sp.csr_matrix(np.ones((a["X"].shape[0], 2))),
        "var": pd.DataFrame(index=["r1", "r2"]),
    }
    b.pop("raw", None)
    with pytest.warns(UserWarning, match="Only some AnnData"):
        ours = annscale.concat([to_annscale(a), to_annscale(b)])
    assert ours.raw is None
    b["raw"] = {
        "X": sp.csr_matrix(np.ones((b["X"].shape[0], 3))),
        "var": pd.DataFrame(index=["r2", "r3", "r1"]),
    }
    for join in ("inner", "outer"):
        ours, theirs = _run_both([a, b], {"join": join}, lazy=False)
        assert_same(ours, theirs)


def test_pairwise_block_diagonal():
    a = _simple(2, ["a"], cells_prefix="x", obsp={"d": sp.csr_matrix(np.array([[0, 1.0], [1, 0]]))})
    b = _simple(
        3, ["a"], cells_prefix="y", obsp={"d": np.eye(3), "e": sp.csr_matrix(np.ones((3, 3)))}
    )
    for join in ("inner", "outer"):
        for lazy in (False, True):
            ours, theirs = _run_both([a, b], {"join": join, "pairwise": True}, lazy=lazy)
            assert_same(ours, theirs)


def test_errors_like_anndata():
    a = _simple(1, ["a"], cells_prefix="x")
    with pytest.raises(ValueError, match="axis"):
        annscale.concat([to_annscale(a)], axis=2)
    with pytest.raises(ValueError, match="join"):
        annscale.concat([to_annscale(a)], join="left")
    dup = _simple(
        1, ["a"], cells_prefix="x", obs=pd.DataFrame([[1, 2]], columns=["c", "c"], index=["x0"])
    )
    with pytest.raises(pd.errors.InvalidIndexError):
        annscale.concat([to_annscale(dup), to_annscale(dup)])


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_force_lazy_gives_lazy_matrices_equal_to_eager(join):
    """anndata's ``force_lazy`` flag: in-memory inputs, a lazy X and layers, the same values."""
    import dask.array as da

    a = _simple(
        2, ["a", "b"], cells_prefix="x", X=sp.csr_matrix(np.eye(2)), layers={"d": np.ones((2, 2))}
    )
    b = _simple(
        3, ["b", "c"], cells_prefix="y", X=sp.csr_matrix(np.ones((3, 2))),
        layers={"d": np.full((3, 2), 2.0)},
    )  # fmt: skip
    lazy = annscale.concat([to_annscale(a), to_annscale(b)], join=join, force_lazy=True)
    assert isinstance(lazy.X, da.Array) and isinstance(lazy.layers["d"], da.Array)
    ours, theirs = run_both(
        lambda: anndata.concat([to_anndata(a), to_anndata(b)], join=join, force_lazy=True),
        lambda: lazy,
    )
    assert_same(ours, theirs)
