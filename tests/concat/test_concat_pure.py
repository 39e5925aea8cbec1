"""The pure planning parts of concat (no AnnData, no I/O), checked against anndata's own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata._core import merge as ad_merge
from hypothesis import given, settings
from hypothesis import strategies as st

from annscale.combine.frames import unified_dtype, unify_dtypes
from annscale.combine.merge import (
    intersect_keys,
    merge_first,
    merge_only,
    merge_same,
    merge_unique,
    resolve_merge_strategy,
    union_keys,
)
from annscale.combine.reindex import (
    Reindex,
    merge_indices,
    plan_gather,
    reindex_dense,
    reindex_sparse,
    uniform_chunks,
)

OLD = pd.Index(list("abcdef"))
NEWS = [pd.Index(list("fxbazc")), pd.Index(list("abcdef")), pd.Index(list("dc")), pd.Index([])]


def _matrix(fmt: str, dtype, *, array: bool = False):
    rng = np.random.default_rng(1)
    dense = ((rng.random((4, 6)) < 0.5) * rng.integers(1, 9, (4, 6))).astype(dtype)
    if fmt == "dense":
        return dense
    cls = (
        {"csr": sp.csr_array, "csc": sp.csc_array}
        if array
        else {"csr": sp.csr_matrix, "csc": sp.csc_matrix}
    )
    return cls[fmt](dense)


@pytest.mark.parametrize("new", NEWS, ids=["shuffled", "same", "subset", "empty"])
@pytest.mark.parametrize("fill", [0, 7, np.nan, 1.5])
@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
@pytest.mark.parametrize("dtype", [np.float32, np.int64, np.bool_])
@pytest.mark.parametrize("axis", [0, 1])
def test_reindex_matches_anndata(new, fill, fmt, dtype, axis):
    m = _matrix(fmt, dtype)
    if axis == 0:
        m = m.T if fmt == "dense" else m.T.asformat(fmt)
    theirs = ad_merge.Reindexer(OLD, new).apply(m, axis=axis, fill_value=fill)
    plan = Reindex.between(OLD, new)
    if fmt == "dense":
        ours = reindex_dense(m, plan, axis=axis, fill_value=fill)
    else:
        ours = reindex_sparse(m, plan, axis=axis, fill_value=fill)
        assert ours.format == theirs.format
        assert ours.has_sorted_indices
        ours, theirs = ours.toarray(), theirs.toarray()
    assert ours.dtype == theirs.dtype
    if theirs.dtype == object:  # bool + NaN fill
        assert pd.DataFrame(ours).equals(pd.DataFrame(theirs))
    else:
        np.testing.assert_array_equal(ours, theirs)


def test_reindex_sparse_array_class_kept():
    m = _matrix("csr", np.float32, array=True)
    out = reindex_sparse(m, Reindex.between(OLD, NEWS[0]), axis=1, fill_value=0)
    assert isinstance(out, sp.csr_array)


def test_reindex_sparse_zero_width_gives_fill():
    empty = sp.csr_matrix((3, 0), dtype=bool)
    out = reindex_sparse(empty, Reindex.prefix(0, 4), axis=1, fill_value=0)
    assert out.shape == (3, 4) and out.nnz == 0 and out.dtype == np.float64
    out = reindex_sparse(empty, Reindex.prefix(0, 4), axis=1, fill_value=2)
    assert out.nnz == 12 and (out.toarray() == 2).all()


def test_reindex_sparse_outer_fill_zero_stores_nothing():
    m = _matrix("csr", np.float32)
    out = reindex_sparse(m, Reindex.between(OLD, pd.Index(list("abcdefxyz"))), axis=1)
    assert out.nnz == m.nnz


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.integers(0, 6), min_size=1, max_size=6),
    st.data(),
)
def test_plan_gather_reproduces_take(in_chunks, data):
    n_in = sum(in_chunks)
    new_len = data.draw(st.integers(0, 12))
    take = np.array(
        data.draw(st.lists(st.integers(-1, n_in - 1), min_size=new_len, max_size=new_len)),
        dtype=np.intp,
    )
    out_chunks = uniform_chunks(new_len, data.draw(st.integers(1, 5)))
    values = np.arange(n_in) * 10
    bounds = np.concatenate([[0], np.cumsum(in_chunks)])
    got = []
    for step, length in zip(plan_gather(take, in_chunks, out_chunks), out_chunks):
        joined = np.concatenate([values[bounds[b] : bounds[b + 1]] for b in step.blocks] or [[]])
        if step.take is None:
            got.append(joined)
        else:
            got.append(
                np.where(
                    step.take >= 0, joined[np.maximum(step.take, 0)] if len(joined) else -1, -1
                )
            )
        assert len(got[-1]) == length
    expected = np.where(take >= 0, values[np.maximum(take, 0)] if n_in else -1, -1)
    np.testing.assert_array_equal(np.concatenate(got) if got else [], expected[: sum(out_chunks)])


def test_merge_indices_matches_anndata():
    idx = [pd.Index(list("dbca")), pd.Index(list("xcab")), pd.Index(list("bcay"))]
    for join in ("inner", "outer"):
        assert merge_indices(idx, join).equals(ad_merge.merge_indices(idx, join))
    with pytest.raises(ValueError, match="join"):
        merge_indices(idx, "left")


CAT_DTYPES = [
    pd.CategoricalDtype(["a", "b"]),
    pd.CategoricalDtype(["b", "c10", "c2"]),
    pd.CategoricalDtype([]),
    pd.CategoricalDtype(["lo", "hi"], ordered=True),
    pd.CategoricalDtype(["lo", "mid", "hi"], ordered=True),
    pd.CategoricalDtype(["hi", "lo"], ordered=True),
    np.dtype(bool),
    np.dtype(np.int64),
    pd.BooleanDtype(),
]


@pytest.mark.parametrize("has_missing", [False, True])
@pytest.mark.parametrize("i", range(len(CAT_DTYPES)))
@pytest.mark.parametrize("j", range(len(CAT_DTYPES)))
def test_unified_dtype_matches_anndata(i, j, has_missing):
    dts = [CAT_DTYPES[i], CAT_DTYPES[j]]
    theirs = ad_merge.try_unifying_dtype(dts, has_missing=has_missing)
    ours = unified_dtype(dts, has_missing=has_missing)
    assert ours == theirs
    if isinstance(theirs, pd.CategoricalDtype):
        assert list(ours.categories) == list(theirs.categories)
        assert ours.ordered == theirs.ordered


def test_unify_dtypes_frames():
    a = pd.DataFrame({"c": pd.Categorical(["x2", "x10"]), "b": [True, False]})
    b = pd.DataFrame({"c": pd.Categorical(["x1"])})
    ours, theirs = unify_dtypes([a, b]), ad_merge.unify_dtypes([a, b])
    for o, t in zip(ours, theirs):
        pd.testing.assert_frame_equal(o, t)


# ---------------------------------------------------------------------------- merge strategies

_leaf = st.one_of(
    st.integers(0, 2),
    st.sampled_from(["p", "q"]),
    st.builds(np.array, st.sampled_from([[1.0, np.nan], [1.0, 2.0], [1, 2]])),
    st.builds(lambda v: sp.csr_matrix(np.array([[v, 0.0]])), st.sampled_from([1.0, np.nan])),
    st.builds(lambda v: pd.Series([v, 2]), st.sampled_from([1, 1.0])),
)
_uns = st.recursive(
    _leaf, lambda inner: st.dictionaries(st.sampled_from("abcd"), inner, max_size=3), max_leaves=8
)
_mappings = st.lists(
    st.dictionaries(st.sampled_from("abcd"), _uns, max_size=4), min_size=1, max_size=3
)


def _same_structure(ours, theirs):
    assert list(ours) == list(theirs)
    for k in theirs:
        if isinstance(theirs[k], dict):
            _same_structure(ours[k], theirs[k])
        else:
            assert ours[k] is theirs[k]  # the chosen value is the input object itself


@settings(max_examples=150, deadline=None)
@given(_mappings)
def test_merge_strategies_match_anndata(mappings):
    pairs = [
        (merge_same, ad_merge.merge_same),
        (merge_unique, ad_merge.merge_unique),
        (merge_first, ad_merge.merge_first),
        (merge_only, ad_merge.merge_only),
    ]
    for ours, theirs in pairs:
        try:
            expected = theirs(mappings)
        except Exception as e:  # values anndata cannot compare: we refuse them the same way
            with pytest.raises(type(e)):
                ours(mappings)
            continue
        _same_structure(ours(mappings), expected)


def test_key_orders_match_anndata():
    ms = [{"a": 1, "b": 2, "c": 3}, {"c": 1, "b": 2, "a": 3}, {"b": 1, "a": 1}]
    assert intersect_keys(ms) == list(ad_merge.intersect_keys(ms))
    assert union_keys(ms) == list(ad_merge.union_keys(ms))


def test_resolve_merge_strategy():
    assert resolve_merge_strategy(None)([{"a": 1}]) == {}
    f = lambda ms: {"n": len(ms)}  # noqa: E731
    assert resolve_merge_strategy(f) is f
    with pytest.raises(ValueError, match="merge strategy"):
        resolve_merge_strategy("bogus")
