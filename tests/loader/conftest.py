"""Small stores written by anndata for the loader tests (module-scoped, a few hundred rows)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp


def make_sample(i: int, n_obs: int, n_vars: int = 40) -> ad.AnnData:
    """A CSR float32 sample with a categorical, a numeric, a boolean obs column and obsm."""
    rng = np.random.default_rng(i)
    X = sp.random(n_obs, n_vars, density=0.2, format="csr", dtype=np.float32, random_state=rng)
    X.data[:] = rng.integers(1, 9, X.nnz)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(["B", "NK", "T"], n_obs), ["B", "NK", "T", "x"]),
            "score": rng.normal(size=n_obs),
            "flag": rng.random(n_obs) < 0.5,
            "label": rng.choice(["p", "q"], n_obs),
        },
        index=[f"s{i}-cell{j}" for j in range(n_obs)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_vars)])
    a = ad.AnnData(X, obs=obs, var=var)
    a.obsm["emb"] = rng.normal(size=(n_obs, 3)).astype(np.float32)
    a.layers["dense"] = X.toarray()
    return a


@pytest.fixture(scope="package")
def stores(tmp_path_factory):
    """Three samples as h5ad, and the first one also as zarr v2/v3; with their in-memory data."""
    tmp = tmp_path_factory.mktemp("loader")
    samples = [make_sample(i, n) for i, n in enumerate((230, 170, 301))]
    paths = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i, a in enumerate(samples):
            a.write_h5ad(tmp / f"s{i}.h5ad")
            paths.append(tmp / f"s{i}.h5ad")
        with ad.settings.override(zarr_write_format=3):
            samples[0].write_zarr(tmp / "s0-v3.zarr")
        with ad.settings.override(zarr_write_format=2):
            samples[0].write_zarr(tmp / "s0-v2.zarr")
    return {"tmp": tmp, "samples": samples, "h5ad": paths}
