"""Pure chunk-planning functions (no I/O)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from annscale.lazy.planning import (
    balance_by_nnz,
    dense_axis_chunks,
    dense_chunks,
    merge_rows,
    plan_row_groups,
)


def test_balance_by_nnz_small():
    indptr = np.array([0, 5, 10, 10, 30, 31])
    bounds = balance_by_nnz(indptr, bytes_per_nnz=1, target_bytes=10)
    # rows 0-2 hold 10 nonzeros; row 3 alone exceeds the target; row 4 is the rest
    assert bounds.tolist() == [0, 3, 4, 5]


def test_balance_by_nnz_bytes_per_nnz_and_max_rows():
    indptr = np.arange(0, 101)  # one nonzero per row
    assert np.diff(balance_by_nnz(indptr, bytes_per_nnz=12, target_bytes=120)).tolist() == [10] * 10
    empty_rows = np.zeros(101, dtype=np.int64)
    assert np.diff(
        balance_by_nnz(empty_rows, bytes_per_nnz=12, target_bytes=10**6, max_rows=30)
    ).tolist() == [30, 30, 30, 10]


def test_balance_by_nnz_empty_axis():
    assert balance_by_nnz(np.array([0]), bytes_per_nnz=8, target_bytes=10).tolist() == [0]


def test_balance_by_nnz_relative_to_partial_indptr():
    # a partial indptr starting mid-matrix: bounds are relative to its first row
    indptr = np.array([100, 110, 120, 130])
    assert balance_by_nnz(indptr, bytes_per_nnz=1, target_bytes=20).tolist() == [0, 2, 3]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 50), min_size=0, max_size=200),
    st.integers(1, 400),
    st.sampled_from([1, 4, 12]),
)
def test_balance_by_nnz_properties(row_nnz, target, bpn):
    indptr = np.concatenate([[0], np.cumsum(row_nnz)]).astype(np.int64)
    bounds = balance_by_nnz(indptr, bytes_per_nnz=bpn, target_bytes=target)
    n = len(row_nnz)
    assert bounds[0] == 0 and bounds[-1] == n
    assert np.all(np.diff(bounds) > 0)
    for a, b in itertools.pairwise(bounds):
        nbytes = (indptr[b] - indptr[a]) * bpn
        # within target, or a single row larger than the target
        assert nbytes <= max(target, bpn) or b - a == 1
        # greedy: the next row would not have fitted
        if b < n:
            assert (indptr[b + 1] - indptr[a]) * bpn > max(target, bpn)


def test_dense_axis_chunks():
    assert dense_axis_chunks(10, 3, 1) == (3, 3, 3, 1)
    assert dense_axis_chunks(0, 3, 2) == (0,)


def test_dense_chunks_merge_whole_storage_chunks():
    chunks = dense_chunks((1000, 50), (100, 10), itemsize=8, target_bytes=100 * 50 * 8 * 3)
    # columns grow to the full extent first, then 3 storage chunks of rows per dask chunk
    assert chunks == ((300, 300, 300, 100), (50,))


def test_dense_chunks_never_finer_than_storage():
    chunks = dense_chunks((1000, 50), (200, 50), itemsize=8, target_bytes=8)
    assert chunks == ((200,) * 5, (50,))


def test_dense_chunks_contiguous():
    chunks = dense_chunks((100, 5), None, itemsize=8, target_bytes=400)
    assert chunks == ((10,) * 10, (5,))


def test_merge_rows():
    starts, stops = merge_rows(np.array([1, 2, 3, 7, 8, 20]), max_gap=2)
    assert starts.tolist() == [1, 7, 20] and stops.tolist() == [4, 9, 21]
    starts, stops = merge_rows(np.array([1, 2, 3, 7, 8, 20]), max_gap=3)
    assert starts.tolist() == [1, 20] and stops.tolist() == [9, 21]
    assert [a.tolist() for a in merge_rows(np.array([], dtype=int), max_gap=1)] == [[], []]


def test_merge_rows_custom_gap_units():
    rows = np.array([0, 5, 6])
    # gap between 0 and 5 is huge in nonzeros, small between 5 and 6
    starts, stops = merge_rows(rows, max_gap=10, gaps=np.array([1000, 0]))
    assert starts.tolist() == [0, 5] and stops.tolist() == [1, 7]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 99), min_size=0, max_size=60),
    st.integers(0, 10),
    st.integers(1, 20),
)
def test_plan_row_groups_reproduces_request(rows, gap, target):
    rows = np.asarray(rows, dtype=np.int64)
    groups = plan_row_groups(rows, np.ones(rows.shape, np.int64), target_bytes=target, max_gap=gap)
    got = []
    covered = 0
    for g in groups:
        assert g.positions.start == covered
        covered = g.positions.stop
        assert g.n_rows <= max(target, 1)
        # ranges cover every needed row, are sorted and disjoint
        assert np.all(g.starts[1:] > g.stops[:-1])
        stored = np.concatenate([np.arange(a, b) for a, b in zip(g.starts, g.stops)])
        assert set(g.unique.tolist()) <= set(stored.tolist())
        got.extend(g.unique[g.inverse].tolist())
    assert covered == len(rows)
    assert got == rows.tolist()
