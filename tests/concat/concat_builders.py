"""Random small AnnData parts for concat tests, built twice: as annscale and as anndata objects.

Objects are described by plain parts (X, obs, var, layers, obsm, ...) generated from a seed
and options, then turned into ``annscale.AnnData`` and ``anndata.AnnData`` separately, so
the two libraries never share an object.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from typing import Any

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import annscale

GENES = [f"g{i}" for i in range(7)]
CELLS = [f"c{i}" for i in range(9)]
CATS = ["a", "b", "c", "d10", "d2"]


def _obs_column(kind: str, n: int, rng: np.random.Generator) -> Any:
    if kind == "int":
        return rng.integers(-3, 4, n)
    if kind == "float":
        return rng.normal(size=n).round(2)
    if kind == "bool":
        return rng.random(n) > 0.5
    if kind == "str":
        return np.array([f"s{v}" for v in rng.integers(0, 3, n)], dtype=object)
    if kind == "cat":
        cats = list(rng.choice(CATS, size=rng.integers(1, 4), replace=False))
        return pd.Categorical(rng.choice(cats, n), categories=cats)
    if kind == "ordcat":
        # same categories and order everywhere, or a differing set (-> object in anndata)
        cats = ["lo", "mid", "hi"] if rng.random() < 0.6 else ["lo", "hi"]
        return pd.Categorical(rng.choice(cats, n), categories=cats, ordered=True)
    if kind == "nullint":
        vals = pd.array(rng.integers(0, 5, n), dtype="Int64")
        if n:
            vals[rng.integers(0, n)] = pd.NA
        return vals
    raise ValueError(kind)


OBS_KINDS = ["int", "float", "bool", "str", "cat", "ordcat", "nullint"]


def _matrix(shape: tuple[int, int], rng: np.random.Generator, kind: str, dtype: Any) -> Any:
    dense = (rng.random(shape) < 0.5) * rng.integers(1, 5, shape)
    dense = dense.astype(dtype)
    if kind == "dense":
        return dense
    return sp.csr_matrix(dense) if kind == "csr" else sp.csc_matrix(dense)


def gene_table() -> pd.DataFrame:
    """Per-gene values shared by all inputs, so that ``merge="same"`` keeps something."""
    return pd.DataFrame(
        {
            "gene_id": [f"ENSG{i}" for i in range(len(GENES))],
            "length": np.arange(len(GENES)) * 10,
            "hv": np.arange(len(GENES)) % 2 == 0,
        },
        index=GENES,
    )


def random_parts(seed: int, *, matrix_kinds: tuple[str, ...] = ("dense", "csr", "csc")) -> dict:
    """The parts of one random small AnnData (overlapping, shuffled names, mixed dtypes)."""
    rng = np.random.default_rng(seed)
    n_obs = int(rng.integers(1, 5))
    n_var = int(rng.integers(2, 6))
    genes = list(rng.choice(GENES, n_var, replace=False))
    cells = list(rng.choice(CELLS, n_obs, replace=False))
    kinds = [k for k in OBS_KINDS if rng.random() < 0.5]
    obs = pd.DataFrame({k: _obs_column(k, n_obs, rng) for k in kinds}, index=cells)
    table = gene_table().loc[genes]
    var_cols = [c for c in table.columns if rng.random() < 0.7]
    var = table[var_cols].copy()
    if rng.random() < 0.2 and "length" in var:
        var["length"] = var["length"] + 1  # disagree with the others
    x_kind = str(rng.choice(matrix_kinds))
    x_dtype = rng.choice([np.float32, np.int64, np.float64])
    parts: dict[str, Any] = {
        "X": _matrix((n_obs, n_var), rng, x_kind, x_dtype),
        "obs": obs,
        "var": var,
        "layers": {},
        "obsm": {},
        "varm": {},
        "obsp": {},
        "varp": {},
        "uns": {},
    }
    for key in ("counts", "spliced"):
        if rng.random() < 0.5:
            parts["layers"][key] = _matrix(
                (n_obs, n_var), rng, str(rng.choice(matrix_kinds)), np.float32
            )
    if rng.random() < 0.6:
        parts["obsm"]["X_pca"] = rng.normal(size=(n_obs, int(rng.integers(1, 4)))).round(2)
    if rng.random() < 0.4:
        parts["obsm"]["frame"] = pd.DataFrame(
            {"u": rng.integers(0, 3, n_obs), "v": rng.random(n_obs) > 0.5}, index=cells
        )
    if rng.random() < 0.6:
        load = np.arange(len(GENES) * 2, dtype=float).reshape(-1, 2)
        parts["varm"]["loadings"] = load[[GENES.index(g) for g in genes]]
    if rng.random() < 0.4:
        parts["varm"]["sparse_m"] = sp.csr_matrix(
            np.eye(len(GENES))[[GENES.index(g) for g in genes]][:, :3]
        )
    if rng.random() < 0.5:
        parts["obsp"]["distances"] = _matrix((n_obs, n_obs), rng, "csr", np.float64)
    if rng.random() < 0.4:
        full = np.add.outer(np.arange(len(GENES)), np.arange(len(GENES))).astype(float)
        idx = [GENES.index(g) for g in genes]
        parts["varp"]["corr"] = full[np.ix_(idx, idx)]
    uns_pool = {
        "a": 1,
        "b": int(rng.integers(1, 3)),
        "arr": np.array([1.0, np.nan, 3.0]),
        "nested": {"x": "same", "y": int(rng.integers(0, 2)), "z": {"deep": [1, 2]}},
        "s": str(rng.choice(["p", "q"])),
    }
    parts["uns"] = {k: v for k, v in uns_pool.items() if rng.random() < 0.7}
    if rng.random() < 0.3:
        parts["raw"] = {
            "X": _matrix((n_obs, n_var + 1), rng, "csr", np.float32),
            "var": pd.DataFrame(index=[*genes, "extra"]),
        }
    return parts


def _copy_parts(parts: dict) -> dict:
    return copy.deepcopy(parts)


def to_anndata(parts: dict) -> anndata.AnnData:
    p = _copy_parts(parts)
    raw = p.pop("raw", None)
    ad = anndata.AnnData(**p)
    if raw is not None:
        ad.raw = anndata.AnnData(X=raw["X"], obs=pd.DataFrame(index=ad.obs_names), var=raw["var"])
    return ad


def to_annscale(parts: dict, *, lazy: bool = False, chunk_rows: int = 2) -> annscale.AnnData:
    p = _copy_parts(parts)
    raw = p.pop("raw", None)
    if lazy:
        p["X"] = as_lazy(p["X"], chunk_rows)
        p["layers"] = {k: as_lazy(v, chunk_rows) for k, v in p["layers"].items()}
    ad = annscale.AnnData(**p)
    if raw is not None:
        ad.raw = annscale.AnnData(X=raw["X"], obs=pd.DataFrame(index=ad.obs_names), var=raw["var"])
    return ad


def as_lazy(x: Any, chunk_rows: int) -> da.Array:
    """A row-chunked dask array (scipy CSR chunks for sparse input) of ``x``."""
    if sp.issparse(x):
        x = sp.csr_matrix(x)
        return da.from_array(
            x, chunks=(chunk_rows, -1), asarray=False, meta=sp.csr_matrix((0, 0), dtype=x.dtype)
        )
    return da.from_array(x, chunks=(chunk_rows, -1))


# ---------------------------------------------------------------------------- comparison


def run_both(theirs: Callable[[], Any], ours: Callable[[], Any]) -> tuple[Any, Any]:
    """``(ours(), theirs())``, warnings silenced; when anndata raises, check that annscale
    raises the same exception type and return ``(None, None)``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            expected = theirs()
        except Exception as e:  # anndata refuses: so must we, with the same exception type
            with pytest.raises(type(e)):
                ours()
            return None, None
        return ours(), expected


def _to_plain(x: Any) -> Any:
    if isinstance(x, da.Array):
        return _to_plain(x.compute())
    return x


def assert_array_same(ours: Any, theirs: Any, what: str) -> None:
    ours = _to_plain(ours)
    if isinstance(theirs, pd.DataFrame):
        pd.testing.assert_frame_equal(ours, theirs, obj=what)
        return
    assert sp.issparse(ours) == sp.issparse(theirs), (what, type(ours), type(theirs))
    if sp.issparse(theirs):
        assert ours.format == theirs.format, (what, ours.format, theirs.format)
        assert isinstance(ours, sp.sparray) == isinstance(theirs, sp.sparray), what
        ours_d, theirs_d = ours.toarray(), theirs.toarray()
    else:
        assert isinstance(ours, np.ndarray), (what, type(ours))
        ours_d, theirs_d = ours, np.asarray(theirs)
    assert ours.dtype == theirs.dtype, (what, ours.dtype, theirs.dtype)
    assert ours.shape == theirs.shape, (what, ours.shape, theirs.shape)
    if theirs_d.dtype == object:
        assert pd.DataFrame(ours_d).equals(pd.DataFrame(theirs_d)), what
    else:
        np.testing.assert_array_equal(ours_d, theirs_d, err_msg=what)


def assert_mapping_same(ours: Any, theirs: Any, what: str) -> None:
    assert list(ours.keys()) == list(theirs.keys()), (what, list(ours.keys()), list(theirs.keys()))
    for k in theirs:
        assert_array_same(ours[k], theirs[k], f"{what}[{k!r}]")


def assert_uns_same(ours: Any, theirs: Any, what: str = "uns") -> None:
    assert list(ours.keys()) == list(theirs.keys()), (what, list(ours), list(theirs))
    for k, v in theirs.items():
        o = ours[k]
        if isinstance(v, dict):
            assert_uns_same(o, v, f"{what}[{k!r}]")
        elif isinstance(v, np.ndarray):
            np.testing.assert_array_equal(o, v, err_msg=f"{what}[{k!r}]")
        else:
            assert o == v, (what, k, o, v)


def assert_same(ours: Any, theirs: anndata.AnnData) -> None:
    """Everything anndata exposes about ``theirs`` equals ``ours`` (lazy parts computed)."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    pd.testing.assert_frame_equal(ours.obs, theirs.obs, obj="obs")
    pd.testing.assert_frame_equal(ours.var, theirs.var, obj="var")
    if theirs.X is None:
        assert ours.X is None
    else:
        assert_array_same(ours.X, theirs.X, "X")
    for attr in ("layers", "obsm", "varm", "obsp", "varp"):
        assert_mapping_same(getattr(ours, attr), getattr(theirs, attr), attr)
    assert_uns_same(ours.uns, theirs.uns)
    if theirs.raw is None:
        assert ours.raw is None
    else:
        assert ours.raw is not None
        assert_array_same(ours.raw.X, theirs.raw.X, "raw.X")
        pd.testing.assert_frame_equal(ours.raw.var, theirs.raw.var, obj="raw.var")
