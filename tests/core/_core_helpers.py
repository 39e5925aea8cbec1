"""Shared builders for tests/core: the same small object for annscale and anndata."""

from __future__ import annotations

import anndata
import numpy as np
import pandas as pd
from scipy import sparse

import annscale as ad


def make_parts(n_obs=6, n_vars=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.poisson(1.0, size=(n_obs, n_vars)).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": (["T", "B", "NK"] * n_obs)[:n_obs],
            "score": rng.random(n_obs),
        },
        index=[f"cell_{i}" for i in range(n_obs)],
    )
    var = pd.DataFrame(
        {"gene": [f"G{j}" for j in range(n_vars)]}, index=[f"g{j}" for j in range(n_vars)]
    )
    return dict(
        X=X,
        obs=obs,
        var=var,
        uns={"a": 1, "nested": {"b": np.arange(3)}},
        obsm={
            "pca": rng.random((n_obs, 2)),
            "df": pd.DataFrame({"u": range(n_obs)}, index=obs.index),
        },
        varm={"loadings": rng.random((n_vars, 2))},
        layers={"counts": sparse.csr_matrix(X), "dense": X * 2},
        obsp={"conn": sparse.csr_matrix(np.eye(n_obs))},
        varp={"corr": np.eye(n_vars)},
    )


def both(**kw):
    parts = make_parts(**kw)
    return ad.AnnData(**parts), anndata.AnnData(**make_parts(**kw))


def assert_same(ours, theirs):
    assert ours.shape == theirs.shape
    assert ours.obs_names.tolist() == theirs.obs_names.tolist()
    assert ours.var_names.tolist() == theirs.var_names.tolist()
    pd.testing.assert_frame_equal(pd.DataFrame(ours.obs), pd.DataFrame(theirs.obs))
    pd.testing.assert_frame_equal(pd.DataFrame(ours.var), pd.DataFrame(theirs.var))
    for a, b in [(ours.X, theirs.X)] + [
        (getattr(ours, m)[k], getattr(theirs, m)[k])
        for m in ("layers", "obsm", "varm", "obsp", "varp")
        for k in getattr(theirs, m)
    ]:
        if isinstance(b, pd.DataFrame):
            pd.testing.assert_frame_equal(pd.DataFrame(a), pd.DataFrame(b))
            continue
        assert sparse.issparse(a) == sparse.issparse(b)
        if sparse.issparse(b):
            assert a.format == b.format
            a, b = a.toarray(), b.toarray()
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
