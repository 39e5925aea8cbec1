"""Helpers for the I/O tests: a rich object built for both libraries, and deep comparison."""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from typing import Any

import anndata
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

FORMATS = ["h5ad", "zarr2", "zarr3"]


def rich_parts(seed: int = 0) -> dict[str, Any]:
    """Every encoding the format has, as constructor arguments (fresh objects each call)."""
    rng = np.random.default_rng(seed)
    n_obs, n_vars, n_raw = 6, 4, 5
    obs_names = [f"cell{i}" for i in range(n_obs)]
    var_names = [f"gene{j}" for j in range(n_vars)]
    obs = pd.DataFrame(
        {
            "cat": pd.Categorical(["a", "b", None, "a", "b", "a"]),
            "cat_ordered": pd.Categorical(
                ["lo", "hi", "lo", "mid", "hi", None], categories=["lo", "mid", "hi"], ordered=True
            ),
            "int32_nullable": pd.array([1, None, 3, 4, None, 6], dtype="Int32"),
            "bool_nullable": pd.array([True, None, False, True, True, None], dtype="boolean"),
            "str_nullable": pd.array(["p", None, "q", "r", "s", "t"], dtype="string"),
            "uint8": np.arange(n_obs, dtype=np.uint8),
            "float32": rng.random(n_obs).astype(np.float32),
            "int64": np.arange(n_obs, dtype=np.int64),
            "bool": np.array([True, False] * 3),
            "str_unique": np.array([f"u{i}" for i in range(n_obs)], dtype=object),
            "str_repeated": np.array(["x", "y", "x", "y", "x", "y"], dtype=object),
        },
        index=pd.Index(obs_names),
    )
    var = pd.DataFrame(
        {"gene_symbol": var_names, "mean": rng.random(n_vars)},
        index=pd.Index(var_names, name="gene_symbol"),
    )
    rec = np.rec.fromarrays(
        [np.arange(3), np.array(["a", "bb", "ccc"], dtype=object), rng.random(3)],
        names=["n", "names", "score"],
    )
    uns = {
        "int": 3,
        "float": 2.5,
        "bool": False,
        "string": "hello",
        "array": np.arange(5, dtype=np.float32),
        "strings": np.array(["a", "b", "c"], dtype=object),
        "recarray": rec,
        "frame": pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=["r1", "r2"]),
        "none": None,
        "nested": {"deeper": {"value": np.int64(7), "list": [1, 2, 3]}, "empty": {}},
    }
    raw_var = pd.DataFrame(
        {"kind": ["a", "b", "a", "b", "a"]}, index=[f"rawgene{j}" for j in range(n_raw)]
    )
    return {
        "X": sp.random(n_obs, n_vars, density=0.5, format="csr", random_state=1, dtype=np.float32),
        "obs": obs,
        "var": var,
        "uns": uns,
        "obsm": {
            "X_pca": rng.random((n_obs, 2)),
            "sparse": sp.random(n_obs, 3, density=0.5, format="csr", random_state=2),
            "df": pd.DataFrame(
                {"a": np.arange(n_obs), "c": pd.Categorical(list("ababab"))},
                index=pd.Index(obs_names),
            ),
        },
        "varm": {"PCs": rng.random((n_vars, 2))},
        "obsp": {
            "connectivities": sp.random(n_obs, n_obs, density=0.3, format="csr", random_state=3)
        },
        "varp": {"corr": rng.random((n_vars, n_vars))},
        "layers": {
            "counts_csc": sp.random(n_obs, n_vars, density=0.5, format="csc", random_state=4),
            "dense": rng.random((n_obs, n_vars)).astype(np.float32),
            "ints": rng.integers(0, 10, (n_obs, n_vars)).astype(np.int32),
        },
        "raw": {
            "X": sp.random(n_obs, n_raw, density=0.5, format="csr", random_state=5),
            "var": raw_var,
            "varm": {"loadings": rng.random((n_raw, 2))},
        },
    }


def build(lib: Any, parts: dict[str, Any]):
    """An AnnData of ``lib`` (annscale or anndata) from :func:`rich_parts`."""
    parts = dict(parts)
    raw = parts.pop("raw", None)
    adata = lib.AnnData(**parts)
    if raw is not None:
        adata.raw = lib.AnnData(
            X=raw["X"], obs=pd.DataFrame(index=adata.obs_names), var=raw["var"], varm=raw["varm"]
        )
    return adata


@contextmanager
def anndata_settings(fmt: str):
    """anndata configured to write ``fmt`` and to allow nullable strings."""
    zarr_format = 3 if fmt == "zarr3" else 2
    with (
        anndata.settings.override(zarr_write_format=zarr_format, allow_write_nullable_strings=True),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        yield


def path_for(tmp_path, fmt: str, name: str):
    return tmp_path / (f"{name}.h5ad" if fmt == "h5ad" else f"{name}.zarr")


def write_with(lib: Any, adata: Any, path, fmt: str, **kwargs: Any) -> None:
    if fmt == "h5ad":
        adata.write_h5ad(path, **kwargs)
    elif lib is anndata:
        with anndata_settings(fmt):
            adata.write_zarr(path, **kwargs)
    else:
        adata.write_zarr(path, zarr_format=3 if fmt == "zarr3" else 2, **kwargs)


def read_with(lib: Any, path, fmt: str | None = None):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = str(path)
        if p.endswith(".h5ad"):
            return lib.read_h5ad(path)
        if lib is anndata and p.endswith(".zip"):
            import zarr

            return anndata.read_zarr(zarr.storage.ZipStore(p, mode="r"))
        return lib.read_zarr(path)


# ------------------------------------------------------------------------------ comparison


def assert_value_equal(got: Any, expected: Any, where: str) -> None:
    if sp.issparse(expected):
        assert sp.issparse(got), where
        assert got.format == expected.format and got.shape == expected.shape, where
        assert got.dtype == expected.dtype, where
        np.testing.assert_array_equal(got.toarray(), expected.toarray(), err_msg=where)
    elif isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, obj=where)
    elif isinstance(expected, (pd.Categorical, pd.api.extensions.ExtensionArray)):
        pd.testing.assert_extension_array_equal(got, expected)
    elif isinstance(expected, dict):
        assert isinstance(got, dict), where
        assert set(got) == set(expected), f"{where}: {sorted(got)} != {sorted(expected)}"
        for k in expected:
            assert_value_equal(got[k], expected[k], f"{where}/{k}")
    elif isinstance(expected, np.ndarray) and expected.dtype.names:
        assert got.dtype.names == expected.dtype.names, where
        for name in expected.dtype.names:
            assert got[name].tolist() == expected[name].tolist(), f"{where}.{name}"
    elif isinstance(expected, np.ndarray):
        got = np.asarray(got)
        assert got.shape == expected.shape, where
        if expected.dtype.kind in "OUT":  # anndata reads zarr strings as StringDType
            assert got.tolist() == expected.tolist(), where
        else:
            assert got.dtype == expected.dtype, where
            np.testing.assert_array_equal(got, expected, err_msg=where)
    else:
        assert got == expected, f"{where}: {got!r} != {expected!r}"
        assert type(got) is type(expected) or (
            isinstance(got, str) and isinstance(expected, str)
        ), f"{where}: {type(got)} != {type(expected)}"


def _mapping(m: Any) -> dict:
    return {k: m[k] for k in m.keys()}


def assert_adata_equal(got: Any, expected: Any) -> None:
    """Element by element: X, obs, var (with dtypes), uns, obsm, varm, obsp, varp, layers, raw."""
    assert got.shape == expected.shape
    if expected.X is None:
        assert got.X is None
    else:
        assert_value_equal(got.X, expected.X, "X")
    pd.testing.assert_frame_equal(got.obs, expected.obs, obj="obs")
    pd.testing.assert_frame_equal(got.var, expected.var, obj="var")
    assert_value_equal(dict(got.uns), dict(expected.uns), "uns")
    for name in ("obsm", "varm", "obsp", "varp", "layers"):
        assert_value_equal(_mapping(getattr(got, name)), _mapping(getattr(expected, name)), name)
    if expected.raw is None:
        assert got.raw is None
    else:
        assert got.raw is not None
        assert_value_equal(got.raw.X, expected.raw.X, "raw/X")
        pd.testing.assert_frame_equal(got.raw.var, expected.raw.var, obj="raw/var")
        assert_value_equal(_mapping(got.raw.varm), _mapping(expected.raw.varm), "raw/varm")


@pytest.fixture(params=FORMATS)
def fmt(request) -> str:
    return request.param


@pytest.fixture
def compat():
    """The helpers above, for test modules (conftest modules cannot be imported by name)."""
    import types

    return types.SimpleNamespace(
        rich_parts=rich_parts,
        build=build,
        anndata_settings=anndata_settings,
        path_for=path_for,
        write_with=write_with,
        read_with=read_with,
        assert_adata_equal=assert_adata_equal,
        assert_value_equal=assert_value_equal,
    )
