"""Reductions on dask arrays with scipy sparse chunks, against numpy on the dense equivalent."""

from __future__ import annotations

import itertools

import dask
import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from annscale.lazy import count_nonzero
from annscale.lazy.sparse_chunks import CSCChunk, CSRChunk, as_chunk, as_plain

DTYPES = [np.float32, np.float64, np.int32, np.int64, np.uint16, np.bool_]


def _random_sparse(draw, fmt):
    n = draw(st.integers(1, 25))
    m = draw(st.integers(1, 25))
    density = draw(st.floats(0, 1))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    dense = rng.integers(-5, 6, size=(n, m)).astype(np.float64) * (rng.random((n, m)) < density)
    if np.issubdtype(dtype, np.floating):
        dense = dense * rng.random((n, m))
    if dtype == np.uint16:
        dense = np.abs(dense)
    dense = dense.astype(dtype)
    mat = sp.csr_matrix(dense) if fmt == "csr" else sp.csc_matrix(dense)
    return mat, dense


def _split(draw, length):
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, length - 1)), max_size=4))))
    cuts = [c for c in cuts if 0 < c < length]
    return [0, *cuts, length]


def _to_dask(mat, bounds, fmt):
    meta = (CSRChunk if fmt == "csr" else CSCChunk)((0, 0), dtype=mat.dtype)
    blocks = []
    for a, b in itertools.pairwise(bounds):
        part = mat[a:b] if fmt == "csr" else mat[:, a:b]
        part = as_chunk(part)
        blocks.append(
            da.from_delayed(dask.delayed(part), shape=part.shape, dtype=part.dtype, meta=meta)
        )
    return da.concatenate(blocks, axis=0 if fmt == "csr" else 1)


@st.composite
def lazy_sparse(draw):
    fmt = draw(st.sampled_from(["csr", "csc"]))
    mat, dense = _random_sparse(draw, fmt)
    bounds = _split(draw, mat.shape[0] if fmt == "csr" else mat.shape[1])
    return _to_dask(mat, bounds, fmt), mat, dense


def _assert_same(got, expected, what):
    got = np.asarray(got)
    assert got.shape == np.shape(expected), what
    assert got.dtype == np.asarray(expected).dtype, (what, got.dtype, np.asarray(expected).dtype)
    if got.dtype.kind in "iub":
        np.testing.assert_array_equal(got, expected, err_msg=what)
    else:
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-5, err_msg=what)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lazy_sparse(), st.sampled_from([None, 0, 1]))
def test_reductions_match_numpy(case, axis):
    x, _, dense = case
    with dask.config.set(scheduler="synchronous"):
        _assert_same(x.sum(axis=axis).compute(), dense.sum(axis=axis), f"sum {axis}")
        _assert_same(x.mean(axis=axis).compute(), dense.mean(axis=axis), f"mean {axis}")
        _assert_same(x.min(axis=axis).compute(), dense.min(axis=axis), f"min {axis}")
        _assert_same(x.max(axis=axis).compute(), dense.max(axis=axis), f"max {axis}")
        if dense.dtype != np.bool_:
            _assert_same(x.var(axis=axis).compute(), dense.var(axis=axis), f"var {axis}")
            _assert_same(x.std(axis=axis).compute(), dense.std(axis=axis), f"std {axis}")
            _assert_same(
                x.var(axis=axis, ddof=1).compute() if dense.size > 1 else dense.var(axis=axis),
                dense.var(axis=axis, ddof=1) if dense.size > 1 else dense.var(axis=axis),
                f"var ddof {axis}",
            )
        expected = np.count_nonzero(dense, axis=axis)
        got = count_nonzero(x, axis=axis).compute()
        assert np.array_equal(got, expected) and np.shape(got) == np.shape(expected)
        assert np.array_equal(da.count_nonzero(x, axis=axis).compute(), expected)


def test_sum_keepdims_and_dtype():
    mat = sp.random(6, 4, density=0.5, format="csr", dtype=np.float32, random_state=1)
    x = _to_dask(mat, [0, 3, 6], "csr")
    dense = mat.toarray()
    _assert_same(x.sum(axis=0, keepdims=True).compute(), dense.sum(0, keepdims=True), "keep")
    _assert_same(x.sum(axis=1, dtype=np.float64).compute(), dense.sum(1, dtype=np.float64), "dt")


def test_explicit_zeros_are_not_counted():
    mat = sp.csr_matrix((np.array([0.0, 2.0]), np.array([0, 1]), np.array([0, 2])), shape=(1, 3))
    x = _to_dask(mat, [0, 1], "csr")
    assert count_nonzero(x, axis=None).compute() == 1
    assert count_nonzero(x, axis=0).compute().tolist() == [0, 1, 0]
    assert count_nonzero(mat, axis=None) == 1


def test_chunk_keeps_scipy_semantics_outside_numpy_protocol():
    mat = sp.random(5, 4, density=0.5, format="csr", random_state=2)
    chunk = as_chunk(mat)
    # called the scipy way: numpy.matrix results, like csr_matrix
    assert isinstance(chunk.sum(axis=0), np.matrix)
    np.testing.assert_allclose(chunk.sum(axis=0), mat.sum(axis=0))
    assert isinstance(np.sum(chunk, axis=0), np.matrix)  # what numpy gives for csr_matrix
    assert chunk.size == 20 and chunk.nnz == mat.nnz  # size as numpy counts it
    # numpy's protocol (keepdims / tuple axis, as dask passes): dense ndarray, numpy shapes
    assert type(np.sum(chunk, axis=0, keepdims=True)) is np.ndarray
    assert np.sum(chunk, axis=(0,), keepdims=False).shape == (4,)
    # conversions keep the chunk types
    assert isinstance(chunk.T, CSCChunk) and isinstance(chunk.tocsc().tocsr(), CSRChunk)
    assert isinstance(chunk[[0, 2]], CSRChunk) and isinstance(chunk * 2, CSRChunk)
    plain = as_plain(chunk)
    assert type(plain) is sp.csr_matrix and np.shares_memory(plain.data, chunk.data)


def test_rechunked_and_transposed_arrays_still_reduce():
    mat = sp.random(20, 7, density=0.3, format="csr", random_state=3)
    x = _to_dask(mat, [0, 5, 9, 20], "csr").rechunk((10, 7))
    dense = mat.toarray()
    _assert_same(x.sum(axis=0).compute(), dense.sum(0), "rechunk")
    _assert_same(x.T.max(axis=1).compute(), dense.T.max(1), "transpose")
    assert isinstance(x.compute(), sp.csr_matrix)


def test_min_of_empty_axis_raises_like_numpy():
    chunk = as_chunk(sp.csr_matrix((0, 3)))
    with pytest.raises(ValueError, match="zero-size"):
        np.min(chunk, axis=0, keepdims=True)
