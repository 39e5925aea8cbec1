"""Lazy concatenation: same values as in memory, sparse stays sparse, small linear graphs."""

from __future__ import annotations

import warnings

import dask
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from concat_builders import assert_array_same, assert_same, random_parts, to_anndata, to_annscale
from hypothesis import given, settings
from hypothesis import strategies as st

import annscale


def _csr_dask(m: sp.csr_matrix, rows: int, name: str | None = None) -> da.Array:
    meta = sp.csr_matrix((0, 0), dtype=m.dtype)
    kw = {"name": name} if name else {}
    return da.from_array(m, chunks=(rows, -1), asarray=False, meta=meta, **kw)


def _lazy_adata(m: sp.csr_matrix, genes: list[str], prefix: str, rows: int = 2, **kw):
    return annscale.AnnData(
        X=_csr_dask(m, rows),
        obs=pd.DataFrame(index=[f"{prefix}{i}" for i in range(m.shape[0])]),
        var=pd.DataFrame(index=genes),
        **kw,
    )


def _blocks(x: da.Array) -> list:
    return list(dask.compute(*x.to_delayed().ravel(), scheduler="sync"))


@settings(max_examples=40, deadline=None)
@given(
    seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
    axis=st.sampled_from([0, 1]),
    fill=st.sampled_from([None, 3]),
    chunk_rows=st.integers(1, 3),
)
def test_sparse_outer_join_never_builds_dense_blocks(seeds, axis, fill, chunk_rows):
    parts = [random_parts(s, matrix_kinds=("csr", "csc")) for s in seeds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = annscale.concat(
            [to_annscale(p, lazy=True, chunk_rows=chunk_rows) for p in parts],
            axis=axis,
            join="outer",
            fill_value=fill,
        )
        theirs = annscale.concat(
            [to_annscale(p) for p in parts], axis=axis, join="outer", fill_value=fill
        )
    for key, x in [("X", ours.X), *ours.layers.items()]:
        assert isinstance(x, da.Array), key
        assert sp.issparse(x._meta), (key, type(x._meta))
        for block in _blocks(x):
            assert sp.issparse(block) and block.format == "csr", (key, type(block))
        expected = theirs.X if key == "X" else theirs.layers[key]
        assert_array_same(x, expected, key)


def test_outer_join_fill_zero_stores_no_entries():
    a = sp.csr_matrix(np.eye(4, dtype=np.float32))
    b = sp.csr_matrix(np.ones((3, 2), dtype=np.float32))
    res = annscale.concat(
        [_lazy_adata(a, list("abcd"), "x"), _lazy_adata(b, list("yz"), "y")], join="outer"
    )
    computed = res.X.compute()
    assert computed.nnz == a.nnz + b.nnz
    assert res.X.shape == (7, 6)


def test_dense_inputs_stay_dense_and_mixed_become_sparse():
    dense = da.from_array(np.arange(12.0).reshape(4, 3), chunks=(2, 3))
    sparse = _csr_dask(sp.csr_matrix(np.eye(3)), 2)
    a = annscale.AnnData(
        X=dense, obs=pd.DataFrame(index=list("pqrs")), var=pd.DataFrame(index=list("abc"))
    )
    b = annscale.AnnData(
        X=sparse, obs=pd.DataFrame(index=list("tuv")), var=pd.DataFrame(index=list("cba"))
    )
    only_dense = annscale.concat([a, a], join="outer", index_unique="-")
    assert isinstance(only_dense.X._meta, np.ndarray)
    mixed = annscale.concat([a, b], join="outer")
    assert sp.issparse(mixed.X._meta)
    assert all(sp.issparse(blk) for blk in _blocks(mixed.X))
    eager = annscale.concat(
        [
            annscale.AnnData(X=dense.compute(), obs=a.obs, var=a.var),
            annscale.AnnData(X=sparse.compute(), obs=b.obs, var=b.var),
        ],
        join="outer",
    )
    assert_array_same(mixed.X, eager.X, "X")


def test_inputs_built_with_map_blocks():
    def make_block(block_info=None):
        (r0, r1), (c0, c1) = block_info[None]["array-location"]
        dense = np.add.outer(np.arange(r0, r1), np.arange(c0, c1)) % 3
        return sp.csr_matrix(dense.astype(np.float32))

    x = da.map_blocks(
        make_block,
        chunks=((3, 3), (5,)),
        dtype=np.float32,
        meta=sp.csr_matrix((0, 0), dtype=np.float32),
    )
    genes = [f"g{i}" for i in range(5)]
    a = annscale.AnnData(
        X=x, obs=pd.DataFrame(index=[f"a{i}" for i in range(6)]), var=pd.DataFrame(index=genes)
    )
    b = annscale.AnnData(
        X=x,
        obs=pd.DataFrame(index=[f"b{i}" for i in range(6)]),
        var=pd.DataFrame(index=genes[::-1]),
    )
    res = annscale.concat([a, b], join="inner", label="batch")
    full = x.compute().toarray()
    np.testing.assert_array_equal(res.X.compute().toarray(), np.vstack([full, full[:, ::-1]]))


class _Deferred:
    """A container deferred value (the protocol annscale.core.deferred describes)."""

    __annscale_deferred__ = True

    def __init__(self, arr: da.Array) -> None:
        self._arr = arr
        self.shape, self.dtype, self.ndim = arr.shape, arr.dtype, arr.ndim
        self.materialized = 0

    def materialize(self) -> da.Array:
        self.materialized += 1
        return self._arr


def test_deferred_inputs_give_lazy_result():
    m = sp.csr_matrix(np.arange(8.0).reshape(4, 2))
    deferred = _Deferred(_csr_dask(m, 2))
    a = annscale.AnnData(
        X=deferred, obs=pd.DataFrame(index=list("pqrs")), var=pd.DataFrame(index=["a", "b"])
    )
    b = annscale.AnnData(
        X=m.copy(), obs=pd.DataFrame(index=list("tuvw")), var=pd.DataFrame(index=["b", "c"])
    )
    res = annscale.concat([a, b], join="outer")
    assert isinstance(res.X, da.Array)
    theirs = annscale.concat(
        [
            annscale.AnnData(X=m, obs=a.obs, var=a.var),
            annscale.AnnData(X=m.copy(), obs=b.obs, var=b.var),
        ],
        join="outer",
    )
    assert_array_same(res.X, theirs.X, "X")


def test_axis_var_reindexes_rows_across_chunks():
    rng = np.random.default_rng(0)
    cells = [f"c{i}" for i in range(10)]
    m1 = sp.csr_matrix(rng.integers(0, 3, (10, 3)).astype(np.float64))
    m2 = sp.csr_matrix(rng.integers(0, 3, (8, 2)).astype(np.float64))
    order2 = list(rng.permutation(cells)[:8])
    parts = []
    for m, obs_names, genes in [(m1, cells, ["a", "b", "c"]), (m2, order2, ["d", "e"])]:
        parts.append(
            {
                "X": m,
                "obs": pd.DataFrame(index=obs_names),
                "var": pd.DataFrame(index=genes),
                "layers": {},
                "obsm": {},
                "varm": {},
                "obsp": {},
                "varp": {},
                "uns": {},
            }
        )
    import anndata

    for join in ("inner", "outer"):
        theirs = anndata.concat([to_anndata(p) for p in parts], axis=1, join=join)
        ours = annscale.concat(
            [to_annscale(p, lazy=True, chunk_rows=3) for p in parts], axis=1, join=join
        )
        assert_same(ours, theirs)


def _many_inputs(n: int, genes: int = 50, cells: int = 20):
    out = []
    for i in range(n):
        m = sp.random(cells, genes, density=0.1, format="csr", random_state=i, dtype=np.float32)
        x = _csr_dask(m, 10, name=f"input-{i}")
        var = pd.DataFrame(index=[f"g{j + (i % 5)}" for j in range(genes)])
        obs = pd.DataFrame(index=[f"c{k}" for k in range(cells)])
        out.append(annscale.AnnData(X=x, obs=obs, var=var))
    return out


def test_graph_is_linear_in_chunks_and_deterministic():
    adatas = _many_inputs(200)
    res = annscale.concat(adatas, join="outer", label="s", index_unique="-")
    again = annscale.concat(adatas, join="outer", label="s", index_unique="-")
    assert res.X.name == again.X.name  # deterministic names, no random tokens
    layer = res.X.dask.layers[res.X.name]
    # one task per output chunk (2 per input) plus one reindex map per input
    assert len(layer) == 200 * 2 + 200
    assert res.X.numblocks == (400, 1)


def test_equal_shortcut_on_identical_lazy_arrays_in_merge():
    m = sp.csr_matrix(np.eye(3))
    load = _csr_dask(m, 3, name="same-loadings")
    a = _lazy_adata(m, list("abc"), "x", varm={"L": load})
    b = _lazy_adata(m, list("abc"), "y", varm={"L": load})
    res = annscale.concat([a, b], merge="same")
    assert list(res.varm.keys()) == ["L"]


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_lazy_pairwise_block_diagonal_is_row_chunked(join):
    m = sp.csr_matrix(np.eye(4))
    a = _lazy_adata(m, list("abcd"), "x", obsp={"d": _csr_dask(sp.csr_matrix(np.ones((4, 4))), 2)})
    b = _lazy_adata(m, list("abcd"), "y")
    res = annscale.concat([a, b], join=join, pairwise=True)
    if join == "inner":
        assert "d" not in res.obsp
        return
    d = res.obsp["d"]
    assert isinstance(d, da.Array) and d.numblocks == (3, 1)
    expected = sp.block_diag([np.ones((4, 4)), np.zeros((4, 4))]).toarray()
    np.testing.assert_array_equal(d.compute().toarray(), expected)
