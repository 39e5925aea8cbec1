"""Property: any chain of 1-3 indexing operations equals numpy/pandas indexing (and anndata)."""

from __future__ import annotations

import warnings

import anndata
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

import annscale as ad


@st.composite
def axis_index(draw, names: list[str]):
    """One axis indexer in a random form, and the positions it selects."""
    n = len(names)
    kinds = ["mask", "mask_list", "ints", "neg_ints", "slice", "int", "all"]
    if len(set(names)) == n:  # names select unambiguously only when unique
        kinds += ["names", "name_slice", "name"]
    kind = draw(st.sampled_from(kinds))
    if kind in ("mask", "mask_list"):
        mask = draw(st.lists(st.booleans(), min_size=n, max_size=n))
        return (np.array(mask) if kind == "mask" else mask), np.flatnonzero(mask)
    if kind in ("ints", "neg_ints"):
        pos = draw(st.lists(st.integers(0, n - 1), max_size=6))
        if kind == "neg_ints":
            return [p - n for p in pos], np.array(pos, dtype=int)
        return np.array(pos, dtype=int), np.array(pos, dtype=int)
    if kind == "names":
        pos = draw(st.lists(st.integers(0, n - 1), max_size=6, unique=True))
        return [names[p] for p in pos], np.array(pos, dtype=int)
    if kind == "slice":
        start = draw(st.none() | st.integers(-n - 1, n + 1))
        stop = draw(st.none() | st.integers(-n - 1, n + 1))
        step = draw(st.none() | st.sampled_from([1, 2, 3, -1, -2]))
        s = slice(start, stop, step)
        return s, np.arange(n)[s]
    if kind == "name_slice":
        a, b = sorted(draw(st.lists(st.integers(0, n - 1), min_size=2, max_size=2)))
        return slice(names[a], names[b]), np.arange(a, b + 1)
    if kind == "int":
        i = draw(st.integers(-n, n - 1))
        return i, np.array([i % n])
    if kind == "name":
        i = draw(st.integers(0, n - 1))
        return names[i], np.array([i])
    return slice(None), np.arange(n)


@st.composite
def index_chain(draw, n_obs: int, n_vars: int):
    obs = np.array([f"o{i}" for i in range(n_obs)])
    var = np.array([f"v{j}" for j in range(n_vars)])
    steps = []
    for _ in range(draw(st.integers(1, 3))):
        if len(obs) == 0 or len(var) == 0:
            break
        rows, rpos = draw(axis_index(list(obs)))
        form = draw(st.sampled_from(["rows", "both", "cols"]))
        if form == "rows":
            steps.append(rows)
            obs = obs[rpos]
            continue
        cols, cpos = draw(axis_index(list(var)))
        if form == "cols":
            steps.append((Ellipsis, cols))
            var = var[cpos]
        else:
            steps.append((rows, cols))
            obs, var = obs[rpos], var[cpos]
    return steps, obs, var


@st.composite
def case(draw):
    n_obs = draw(st.integers(1, 7))
    n_vars = draw(st.integers(1, 6))
    chain = draw(index_chain(n_obs, n_vars))
    return n_obs, n_vars, chain


def _dense(x):
    return x.toarray() if sparse.issparse(x) else np.asarray(x)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case(), st.booleans())
def test_index_chains_match_numpy_pandas_and_anndata(data, use_sparse):
    n_obs, n_vars, (steps, exp_obs, exp_var) = data
    X = np.arange(n_obs * n_vars, dtype=float).reshape(n_obs, n_vars)
    obs = pd.DataFrame({"r": np.arange(n_obs)}, index=[f"o{i}" for i in range(n_obs)])
    var = pd.DataFrame({"c": np.arange(n_vars)}, index=[f"v{j}" for j in range(n_vars)])
    stored = sparse.csr_matrix(X) if use_sparse else X
    ours = ad.AnnData(stored, obs=obs, var=var, layers={"l": X * 2})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.AnnData(stored, obs=obs, var=var)
        for step in steps:
            ours = ours[step]
            theirs = theirs[step]
    # numpy/pandas: the same positions selected directly from the original data
    rpos = np.array([int(o[1:]) for o in exp_obs], dtype=int)
    cpos = np.array([int(v[1:]) for v in exp_var], dtype=int)
    assert ours.obs_names.tolist() == list(exp_obs)
    assert ours.var_names.tolist() == list(exp_var)
    assert ours.obs["r"].tolist() == rpos.tolist()
    np.testing.assert_array_equal(_dense(ours.X), X[np.ix_(rpos, cpos)])
    np.testing.assert_array_equal(_dense(ours.layers["l"]), 2 * X[np.ix_(rpos, cpos)])
    assert sparse.issparse(ours.X) == use_sparse
    # anndata agrees
    assert ours.obs_names.tolist() == theirs.obs_names.tolist()
    assert ours.var_names.tolist() == theirs.var_names.tolist()
    np.testing.assert_array_equal(_dense(ours.X), _dense(theirs.X))
    # and copying gives the same values
    np.testing.assert_array_equal(_dense(ours.copy().X), X[np.ix_(rpos, cpos)])
