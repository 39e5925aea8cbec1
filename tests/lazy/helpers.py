"""Test data for the lazy engine: small AnnData objects written by the real anndata package."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def make_adata(n_obs: int = 240, n_vars: int = 60, seed: int = 0) -> ad.AnnData:
    """An anndata.AnnData with one of every lazily read element (and some eager ones)."""
    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, n_vars, density=0.1, format="csr", dtype=np.float32, random_state=seed)
    obs_names = [f"cell{i}" for i in range(n_obs)]
    var_names = [f"gene{j}" for j in range(n_vars)]
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(rng.choice(["a", "b", "c"], n_obs)),
            "n": rng.integers(0, 100, n_obs),
            "f": rng.random(n_obs),
        },
        index=obs_names,
    )
    var = pd.DataFrame({"hv": rng.random(n_vars) > 0.5}, index=var_names)
    adata = ad.AnnData(
        X=X,
        obs=obs,
        var=var,
        layers={
            "counts": sp.random(
                n_obs, n_vars, density=0.2, format="csc", dtype=np.int32, random_state=seed + 1
            ),
            "dense": rng.random((n_obs, n_vars)).astype(np.float64),
        },
        obsm={
            "X_pca": rng.random((n_obs, 5)).astype(np.float32),
            "frame": pd.DataFrame({"x": rng.random(n_obs)}, index=obs_names),
        },
        varm={"loadings": rng.random((n_vars, 5))},
        obsp={
            "connectivities": sp.random(
                n_obs, n_obs, density=0.02, format="csr", random_state=seed + 2
            )
        },
        varp={"corr": rng.random((n_vars, n_vars))},
        uns={"note": "hello", "params": {"k": 3}},
    )
    adata.raw = adata.copy()
    return adata


def write_all(adata: ad.AnnData, tmp_path) -> dict[str, str]:
    """Write ``adata`` with anndata as h5ad, zarr v2 (consolidated), zarr v3 and zarr zip."""
    paths = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = str(tmp_path / "a.h5ad")
        adata.write_h5ad(p)
        paths["h5ad"] = p
        with ad.settings.override(zarr_write_format=2):
            p = str(tmp_path / "a2.zarr")
            adata.write_zarr(p)
            paths["zarr2"] = p
        with ad.settings.override(zarr_write_format=3):
            p = str(tmp_path / "a3.zarr")
            adata.write_zarr(p)
            import zarr

            zarr.consolidate_metadata(p)
            paths["zarr3"] = p
        with ad.settings.override(zarr_write_format=3, auto_shard_zarr_v3=True):
            p = str(tmp_path / "sharded.zarr")
            adata.write_zarr(p)
            paths["zarr3-sharded"] = p
        with ad.settings.override(zarr_write_format=2):
            p = str(tmp_path / "a.zarr.zip")
            store = zarr.storage.ZipStore(p, mode="w")
            adata.write_zarr(store)
            store.close()
            paths["zip"] = p
    return paths
