"""Index normalisation, composition and subset_array: pure functions, no I/O."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from annscale.core.index import (
    as_positions,
    compose,
    indexer_length,
    normalize_axis_index,
    normalize_indices,
    subset_array,
    unpack_index,
)
from annscale.errors import NamesNotFoundError

NAMES = pd.Index([f"n{i}" for i in range(6)])


def norm(idx):
    return normalize_axis_index(idx, NAMES)


def positions(idx):
    return as_positions(norm(idx), len(NAMES)).tolist()


@pytest.mark.parametrize(
    ("idx", "expected"),
    [
        (slice(None), [0, 1, 2, 3, 4, 5]),
        (slice(1, 4), [1, 2, 3]),
        (slice(None, None, 2), [0, 2, 4]),
        (slice(None, None, -1), [5, 4, 3, 2, 1, 0]),
        (slice(-2, None), [4, 5]),
        (slice("n1", "n3"), [1, 2, 3]),  # inclusive, like .loc
        (slice("n4", None), [4, 5]),
        (slice(None, "n0"), [0]),
        (slice("n4", "n1", -1), [4, 3, 2, 1]),
        (2, [2]),
        (-1, [5]),
        (np.int64(3), [3]),
        ("n2", [2]),
        ([True, False, True, False, False, True], [0, 2, 5]),
        (np.array([0, 0, 1, 0, 0, 1], dtype=bool), [2, 5]),
        (pd.Series([False, True, False, False, False, True]), [1, 5]),
        ([4, -1, 0, 0], [4, 5, 0, 0]),
        (np.array([3, 1], dtype=np.uint8), [3, 1]),
        (np.array([2.0, 1.0]), [2, 1]),
        (["n5", "n0"], [5, 0]),
        (pd.Index(["n3"]), [3]),
        (np.array(["n1", "n1"]), [1, 1]),
        ([], []),
        (range(1, 3), [1, 2]),
        (pd.array([True, False, False, False, False, True], dtype="boolean"), [0, 5]),
        (np.array([[True, False, True, False, False, False]]), [0, 2]),
        (sparse.csr_matrix(np.array([[1], [0], [0], [0], [0], [1]], dtype=bool)), [0, 5]),
    ],
)
def test_normalize_axis_index(idx, expected):
    assert positions(idx) == expected


def test_normal_forms():
    s = norm(slice(1, 100))
    assert s == slice(1, 6, 1)
    assert norm(3) == slice(3, 4, 1)
    arr = norm([1, -1])
    assert arr.dtype == np.int64 and arr.tolist() == [1, 5]
    assert isinstance(norm(slice(None, None, -2)), np.ndarray)
    assert norm(slice(5, 2)) == slice(5, 5, 1)  # empty, bounds still ordered


def test_series_mask_is_positional_like_anndata():
    mask = pd.Series([True, False, False, False, False, False], index=NAMES[::-1])
    assert positions(mask) == [0]


@pytest.mark.parametrize(
    ("idx", "exc"),
    [
        (6, IndexError),
        (-7, IndexError),
        ([0, 6], IndexError),
        ([True, False], IndexError),
        (np.array([0.5, 1.5]), IndexError),
        (np.array([1.0, 1.5]), IndexError),
        (True, IndexError),
        (np.zeros((2, 2), dtype=int), IndexError),
        (object(), IndexError),
        (pd.array([True, None, False, False, False, False], dtype="boolean"), IndexError),
    ],
)
def test_normalize_errors(idx, exc):
    with pytest.raises(exc):
        norm(idx)


def test_missing_names_are_listed():
    with pytest.raises(NamesNotFoundError) as e:
        norm(["n1", "zz", "yy", "zz"])
    assert isinstance(e.value, KeyError)
    msg = str(e.value)
    assert "'zz'" in msg and "'yy'" in msg and "n1" not in msg.split("are not")[0]
    with pytest.raises(KeyError, match="'nope'"):
        norm("nope")
    with pytest.raises(KeyError, match="'nope'"):
        norm(slice("n1", "nope"))


def test_duplicate_names():
    dup = pd.Index(["a", "b", "a"])
    assert normalize_axis_index(["b"], dup).tolist() == [1]
    with pytest.raises(KeyError, match="more than once"):
        normalize_axis_index(["a"], dup)


def test_unpack_index():
    full = slice(None)
    assert unpack_index(...) == (full, full)
    assert unpack_index((..., 3)) == (full, 3)
    assert unpack_index((3, ...)) == (3, full)
    assert unpack_index((1, ..., 2)) == (1, 2)
    assert unpack_index(([1],)) == ([1], full)
    with pytest.raises(IndexError):
        unpack_index((..., ...))
    with pytest.raises(IndexError):
        unpack_index((1, 2, 3))


def test_normalize_indices_two_axes():
    rows, cols = normalize_indices((slice(None), "b"), NAMES, pd.Index(["a", "b"]))
    assert rows == slice(0, 6, 1) and cols == slice(1, 2, 1)


@pytest.mark.parametrize("outer", [slice(1, 6, 2), slice(0, 6, 1), np.array([5, 1, 1, 3])])
@pytest.mark.parametrize(
    "inner", [slice(0, 2, 1), slice(1, 3, 1), slice(0, 3, 2), np.array([1, 0]), np.array([], int)]
)
def test_compose_matches_numpy(outer, inner):
    base = np.arange(6)
    step1 = base[outer]
    inner_n = inner if isinstance(inner, np.ndarray) else slice(*inner.indices(len(step1)))
    expected = step1[inner_n]
    got = compose(outer, inner_n, 6)
    assert as_positions(got, 6).tolist() == expected.tolist()
    assert indexer_length(got, 6) == len(expected)
    if isinstance(outer, slice) and isinstance(inner, slice):
        assert isinstance(got, slice)


ROWS = [slice(1, 4, 1), slice(0, 5, 2), np.array([3, 0, 3]), np.array([], dtype=np.int64)]
COLS = [slice(0, 3, 1), np.array([2, 0]), slice(None)]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", COLS)
@pytest.mark.parametrize(
    "cls",
    [np.asarray, sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array, sparse.csc_array],
)
def test_subset_array_in_memory(rows, cols, cls):
    dense = np.arange(20, dtype=float).reshape(5, 4)
    x = cls(dense)
    out = subset_array(x, rows, cols)
    expected = dense[rows][:, cols]
    assert type(out) is type(x)
    if sparse.issparse(out):
        assert out.format == x.format
        out = out.toarray()
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("cols", COLS)
def test_subset_array_dask_stays_lazy(rows, cols):
    dense = np.arange(20, dtype=float).reshape(5, 4)

    def boom(block):
        raise AssertionError("computed while subsetting")

    x = da.from_array(dense, chunks=2).map_blocks(boom, dtype=float)
    out = subset_array(x, rows, cols)  # building the graph must not compute
    assert isinstance(out, da.Array)
    good = subset_array(da.from_array(dense, chunks=2), rows, cols).compute()
    np.testing.assert_array_equal(good, dense[rows][:, cols])


def test_subset_array_dataframe_and_1d():
    df = pd.DataFrame({"a": range(5), "b": list("vwxyz")}, index=list("abcde"))
    out = subset_array(df, np.array([4, 0]), slice(None))
    assert out.index.tolist() == ["e", "a"] and out.columns.tolist() == ["a", "b"]
    np.testing.assert_array_equal(subset_array(np.arange(5), slice(1, 3, 1), slice(None)), [1, 2])


def test_subset_array_3d_obsm():
    x = np.arange(60).reshape(5, 4, 3)
    out = subset_array(x, np.array([1, 3]), slice(None))
    np.testing.assert_array_equal(out, x[[1, 3]])
