"""The fast paths of concat's planning: merged names, reindex maps and suffixed names.

``align_indices`` computes the other axis' names and every input's map from one
factorization when all names are unique strings; it must give exactly what pandas' pairwise
``reduce`` of ``union``/``intersection`` plus ``get_indexer`` give (values, order, dtype,
name), and fall back to them otherwise. ``_concat_keys_index`` must give what
``Series.str.cat`` gives. End to end, ``annscale.concat`` must still equal ``anndata.concat``.
"""

from __future__ import annotations

from functools import reduce
from types import SimpleNamespace

import anndata
import numpy as np
import pandas as pd
import pytest
from concat_builders import assert_same, run_both, to_anndata, to_annscale
from hypothesis import given, settings
from hypothesis import strategies as st

import annscale
from annscale.combine.api import _concat_keys_index
from annscale.combine.reindex import _align_unique_strings, align_indices, merge_indices

NAN = float("nan")


def _pandas_merge(indices: list[pd.Index], join: str) -> pd.Index:
    if join == "inner":
        return reduce(lambda x, y: x.intersection(y), indices)
    return reduce(lambda x, y: x.union(y), indices)


def _same_name(a, b) -> bool:
    return a is b or a == b or (pd.isna(a) and pd.isna(b) and type(a) is type(b))


def _check_alignment(indices: list[pd.Index], join: str) -> None:
    """align_indices / merge_indices equal pandas' reduce + get_indexer (or raise as they do)."""
    expected = _pandas_merge(indices, join)
    merged = merge_indices(indices, join)
    pd.testing.assert_index_equal(merged, expected, exact=True)
    assert _same_name(merged.name, expected.name)
    try:
        indexers = [idx.get_indexer(expected) for idx in indices]
    except Exception as e:  # duplicated names: the maps cannot be built, same error
        with pytest.raises(type(e)):
            align_indices(indices, join)
        return
    merged, plans = align_indices(indices, join)
    pd.testing.assert_index_equal(merged, expected, exact=True)
    assert _same_name(merged.name, expected.name)
    assert len(plans) == len(indices)
    for idx, plan, indexer in zip(indices, plans, indexers):
        np.testing.assert_array_equal(plan.take, indexer)
        assert plan.take.dtype == np.intp
        assert plan.old_len == len(idx)
        assert plan.no_change == expected.equals(idx)


def _idx(values, name=None) -> pd.Index:
    return pd.Index(list(values), dtype=object, name=name)


FAST_CASES = {
    "equal-unsorted": [_idx("dbca"), _idx("dbca"), _idx("dbca")],
    "equal-names-differ": [_idx("dbca", "x"), _idx("dbca", "y"), _idx("dbca", "x")],
    "first-empty": [_idx(""), _idx("cab", "g"), _idx("cab", "g")],
    "middle-empty": [_idx("cab"), _idx("", "e"), _idx("cab")],
    "last-empty": [_idx("cab", "g"), _idx("cab", "g"), _idx("", "g")],
    "all-empty": [_idx("", "a"), _idx("", "b")],
    "only-last-differs": [_idx("cab"), _idx("cab"), _idx("cabd")],
    "only-last-differs-subset": [_idx("cab"), _idx("cab"), _idx("ca")],
    "single-unsorted": [_idx("dbca", "g")],
    "sorted-subset": [_idx("abc"), _idx("ab")],
    "shuffled": [_idx("abc"), _idx("cba"), _idx("bx")],
    "disjoint": [_idx("ba"), _idx("dc")],
    "nan-names": [_idx("ab", NAN), _idx("bc", NAN)],
    "none-then-named": [_idx("ab"), _idx("bc", "n")],
    "numpy-str": [pd.Index([np.str_("b"), np.str_("a")], dtype=object), _idx("ac")],
    "shifted-windows": [_idx(f"g{j:03d}" for j in range(k, k + 20)) for k in range(0, 50, 5)],
}

FALLBACK_CASES = {
    "duplicates": [_idx("abca"), _idx("ab")],
    "duplicates-equal": [_idx("aab"), _idx("aab")],
    "duplicates-single": [_idx("aab")],
    "ints": [pd.Index([3, 1, 2]), pd.Index([2, 5])],
    "mixed-object": [pd.Index(["a", 1], dtype=object), _idx("ab")],
    "with-nan": [pd.Index(["a", NAN], dtype=object), _idx("ab")],
    "with-none": [pd.Index(["a", None], dtype=object), _idx("ab")],
    "string-dtype": [pd.Index(["b", "a"], dtype="string"), pd.Index(["a", "c"], dtype="string")],
    "categorical": [pd.CategoricalIndex(["b", "a"]), pd.CategoricalIndex(["a", "c"])],
    "str-and-ints": [_idx("ba"), pd.Index([1, 2])],
    "range-empty": [pd.RangeIndex(0), _idx("ba")],
}


@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("case", list(FAST_CASES))
def test_fast_alignment_matches_pandas(case, join):
    indices = FAST_CASES[case]
    assert _align_unique_strings(indices, join) is not None  # the fast path is what is tested
    _check_alignment(indices, join)


@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("case", list(FALLBACK_CASES))
def test_other_indexes_fall_back_to_pandas(case, join):
    indices = FALLBACK_CASES[case]
    assert _align_unique_strings(indices, join) is None
    _check_alignment(indices, join)


def test_union_of_equal_indexes_is_the_first_unsorted():
    first = _idx("dbca", "g")
    merged, plans = align_indices([first, _idx("dbca", "g"), _idx("", "g")], "outer")
    assert merged is first  # as pandas: unchanged, not sorted
    assert [p.no_change for p in plans] == [True, True, False]
    np.testing.assert_array_equal(plans[2].take, [-1, -1, -1, -1])


def test_align_refuses_unknown_join():
    with pytest.raises(ValueError, match="join"):
        align_indices([_idx("ab")], "left")
    with pytest.raises(ValueError, match="join"):
        merge_indices([_idx("ab")], "left")


ALPHABET = list("abcdefgh")
NAMES = [None, "n", "m", NAN]


@st.composite
def _index_lists(draw, *, duplicates: bool) -> list[pd.Index]:
    base = draw(st.lists(st.sampled_from(ALPHABET), unique=True, max_size=len(ALPHABET)))
    kinds = ["base", "shuffled", "sorted", "random", "empty", "subset"]
    out = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from([*kinds, "dups"] if duplicates else kinds))
        if kind == "base":
            values = base
        elif kind == "shuffled":
            values = draw(st.permutations(base))
        elif kind == "sorted":
            values = sorted(base)
        elif kind == "random":
            values = draw(st.lists(st.sampled_from(ALPHABET), unique=True, max_size=6))
        elif kind == "subset":
            values = [v for v in base if draw(st.booleans())]
        elif kind == "dups":
            values = draw(st.lists(st.sampled_from(ALPHABET[:3]), min_size=2, max_size=5))
        else:
            values = []
        out.append(_idx(values, draw(st.sampled_from(NAMES))))
    return out


@settings(max_examples=400, deadline=None)
@given(indices=_index_lists(duplicates=False), join=st.sampled_from(["inner", "outer"]))
def test_alignment_matches_pandas_reduce(indices, join):
    assert _align_unique_strings(indices, join) is not None
    _check_alignment(indices, join)


@settings(max_examples=200, deadline=None)
@given(indices=_index_lists(duplicates=True), join=st.sampled_from(["inner", "outer"]))
def test_alignment_with_duplicates_matches_pandas_reduce(indices, join):
    _check_alignment(indices, join)


# ---------------------------------------------------------------------------- suffixed names


def _reference_keys_index(indices, keys, index_unique):
    """The general path: pandas' concat + ``Series.str.cat``."""
    sizes = [len(i) for i in indices]
    label_col = pd.Categorical.from_codes(np.repeat(np.arange(len(indices)), sizes), keys)
    names = pd.concat([i.to_series() for i in indices], ignore_index=True)
    if index_unique is not None:
        names = names.str.cat(label_col.map(str, na_action="ignore"), sep=index_unique)
    return pd.Index(names), label_col


KEY_CASES = {
    "plain": ([_idx("ab"), _idx("ba")], ["k0", "k1"]),
    "same-names": ([_idx("ab", "cell"), _idx("c", "cell")], ["x", "y"]),
    "names-differ": ([_idx("ab", "cell"), _idx("c", "other")], ["x", "y"]),
    "nan-names": ([_idx("ab", NAN), _idx("c", NAN)], ["x", "y"]),
    "single-nan-name": ([_idx("ab", NAN)], ["x"]),
    "some-empty": ([_idx(""), _idx("ab"), _idx("")], ["e0", "k", "e1"]),
    "all-empty": ([_idx(""), _idx("")], ["e0", "e1"]),
    "int-keys": ([_idx("ab"), _idx("ab")], [10, 20]),
    "float-keys": ([_idx("ab"), _idx("ab")], [1.0, 2.5]),
}


@pytest.mark.parametrize("index_unique", [None, "-", ""])
@pytest.mark.parametrize("case", list(KEY_CASES))
def test_suffixed_names_match_str_cat(case, index_unique):
    indices, keys = KEY_CASES[case]
    expected, label_col = _reference_keys_index(indices, keys, index_unique)
    adatas = [SimpleNamespace(obs=pd.DataFrame(index=i)) for i in indices]
    got = _concat_keys_index(adatas, 0, label_col, index_unique)
    pd.testing.assert_index_equal(got, expected, exact=True)
    assert _same_name(got.name, expected.name)
    assert all(type(v) is str for v in got)


# ---------------------------------------------------------------------------- end to end


def _parts(cells: list[str], genes: list[str], *, var_name=None) -> dict:
    X = np.arange(len(cells) * len(genes), dtype=np.float32).reshape(len(cells), len(genes))
    var = pd.DataFrame({"g": [f"G{g}" for g in genes]}, index=pd.Index(genes, name=var_name))
    return {
        "X": X,
        "obs": pd.DataFrame(index=cells),
        "var": var,
        "layers": {},
        "obsm": {},
        "varm": {"m": np.arange(len(genes) * 2, dtype=float).reshape(-1, 2)},
        "obsp": {},
        "varp": {},
        "uns": {},
    }


E2E_CASES = {
    "equal-unsorted-genes": [_parts(["c0", "c1"], list("dbca")), _parts(["c2"], list("dbca"))],
    "empty-input": [_parts(["c0"], list("ba")), _parts([], list("ba")), _parts(["c1"], list("bc"))],
    "all-empty": [_parts([], list("ba")), _parts([], list("ab"))],
    "no-genes": [_parts(["c0"], []), _parts(["c1"], list("ba"))],
    "only-last-differs": [_parts(["c0"], list("cab")), _parts(["c0"], list("cabd"))],
    "var-names-named": [
        _parts(["c0"], list("ba"), var_name="gene"),
        _parts(["c1"], list("bc"), var_name="gene"),
    ],
    "var-names-differ": [
        _parts(["c0"], list("ba"), var_name="gene"),
        _parts(["c1"], list("ba"), var_name="id"),
    ],
}


@pytest.mark.parametrize("merge", [None, "same"])
@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("case", list(E2E_CASES))
def test_concat_edge_cases_match_anndata(case, join, merge):
    parts = E2E_CASES[case]
    keys = [f"s{i}" for i in range(len(parts))]
    kwargs = {"join": join, "merge": merge, "label": "sample", "keys": keys, "index_unique": "-"}
    theirs_in = [to_anndata(p) for p in parts]
    ours_in = [to_annscale(p) for p in parts]
    ours, theirs = run_both(
        lambda: anndata.concat(theirs_in, **kwargs), lambda: annscale.concat(ours_in, **kwargs)
    )
    if theirs is not None:
        assert_same(ours, theirs)
        pd.testing.assert_index_equal(ours.var_names, theirs.var_names, exact=True)
        pd.testing.assert_index_equal(ours.obs_names, theirs.obs_names, exact=True)
