"""Pure planning: offsets, dtypes, chunk ownership and dense alignment (no I/O)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annscale.writeout.plan import (
    INT32_MAX,
    Piece,
    aligned_chunks,
    block_offsets,
    indices_dtype,
    indptr_bounds,
    indptr_dtype,
    is_aligned,
    plan_ownership,
)


def check_plan(bounds, unit):
    """Every unit written exactly once: by one owner, or by one merge of whole coverage."""
    p = plan_ownership(bounds, unit)
    length = int(bounds[-1])
    assert p.length == length
    writers = np.zeros(p.n_units, dtype=int)
    for b, (s, e) in enumerate(p.owned):
        if s == e:
            continue
        # owned ranges lie inside the block and are unit-aligned
        assert bounds[b] <= s < e <= bounds[b + 1]
        assert s % unit == 0
        assert e % unit == 0 or e == length
        writers[s // unit : -(-e // unit)] += 1
    for k, blocks in p.merges.items():
        writers[k] += 1
        assert len(blocks) >= 2, "a unit touched by one block only must be owned"
        pieces = [q for b in blocks for q in p.pieces[b] if q.unit == k]
        start, stop = p.unit_range(k)
        covered = sorted((q.start, q.stop) for q in pieces)
        assert covered[0][0] == start and covered[-1][1] == stop
        for (_, e1), (s2, _) in itertools.pairwise(covered):
            assert e1 == s2
    assert (writers == 1).all(), writers
    # owned + pieces of each block are exactly the block
    for b in range(len(bounds) - 1):
        parts = sorted([p.owned[b], *((q.start, q.stop) for q in p.pieces[b])])
        parts = [r for r in parts if r[0] < r[1]]
        total = sum(e - s for s, e in parts)
        assert total == bounds[b + 1] - bounds[b]
        assert len(p.pieces[b]) <= 2
    return p


def test_offsets_and_indptr_bounds():
    np.testing.assert_array_equal(block_offsets([3, 0, 5]), [0, 3, 3, 8])
    assert block_offsets([]).tolist() == [0]
    assert block_offsets([2**40, 2**40]).dtype == np.int64
    # block 0 writes indptr[0:r1+1], block b writes indptr[r_b+1 : r_{b+1}+1]
    np.testing.assert_array_equal(indptr_bounds([4, 0, 3]), [0, 5, 5, 8])
    with pytest.raises(ValueError, match="negative"):
        block_offsets([1, -1])


def test_dtypes():
    assert indptr_dtype(0) == np.int32
    assert indptr_dtype(INT32_MAX - 1) == np.int32
    assert indptr_dtype(INT32_MAX) == np.int64  # as anndata's concat_on_disk
    assert indptr_dtype(2**40) == np.int64
    assert indices_dtype(20_000) == np.int32
    assert indices_dtype(INT32_MAX + 1) == np.int32  # largest index is INT32_MAX
    assert indices_dtype(INT32_MAX + 2) == np.int64


def test_blocks_aligned_with_units_need_no_merge():
    p = check_plan([0, 10, 20, 25], 10)
    assert p.owned == ((0, 10), (10, 20), (20, 25))
    assert p.merges == {}


def test_partial_units_go_to_one_merge():
    p = check_plan([0, 15, 30], 10)
    assert p.owned == ((0, 10), (20, 30))
    assert p.pieces == ((Piece(1, 10, 15),), (Piece(1, 15, 20),))
    assert p.merges == {1: (0, 1)}


def test_blocks_smaller_than_a_unit():
    p = check_plan([0, 3, 6, 9, 12, 14], 10)
    assert all(s == e for s, e in p.owned)
    assert p.merges == {0: (0, 1, 2, 3), 1: (3, 4)}


def test_one_huge_block_owns_everything():
    p = check_plan([0, 1_000_003], 1000)
    assert p.owned == ((0, 1_000_003),)
    assert p.merges == {}


def test_empty_blocks_and_zero_nnz():
    p = check_plan([0, 0, 7, 7, 7, 20, 20], 5)
    assert p.owned[0] == (0, 0) and p.pieces[0] == ()
    assert p.owned[3] == (7, 7) and p.pieces[3] == ()
    p = check_plan([0, 0, 0, 0], 8)
    assert p.n_units == 0 and p.merges == {}
    p = check_plan([0], 8)  # no blocks at all
    assert p.owned == ()


def test_last_short_unit_is_whole():
    p = check_plan([0, 12, 23], 10)
    # units: [0,10) owned by 0, [10,20) merged, [20,23) owned by 1 up to the end
    assert p.owned == ((0, 10), (20, 23))
    assert p.merges == {1: (0, 1)}


def test_invalid_bounds():
    with pytest.raises(ValueError, match="start at 0"):
        plan_ownership([1, 5], 2)
    with pytest.raises(ValueError, match="not decrease"):
        plan_ownership([0, 5, 3], 2)
    with pytest.raises(ValueError, match="positive"):
        plan_ownership([0, 5], 0)


@settings(max_examples=300, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 40), min_size=0, max_size=12),
    unit=st.integers(1, 25),
)
def test_ownership_property(sizes, unit):
    check_plan(np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]), unit)


def test_aligned_chunks():
    assert is_aligned((10, 10, 5), 5)
    assert aligned_chunks((10, 10, 5), 5) == (10, 10, 5)
    assert not is_aligned((7, 7, 7), 5)
    # nearest multiple of the unit to the largest chunk
    assert aligned_chunks((7, 7, 7), 5) == (5, 5, 5, 5, 1)
    assert aligned_chunks((9, 9, 2), 5) == (10, 10)
    # a chunk smaller than a unit becomes one unit
    assert aligned_chunks((3, 3, 3, 3), 8) == (8, 4)
    assert aligned_chunks((0,), 8) == (0,)


@given(
    chunks=st.lists(st.integers(1, 50), min_size=1, max_size=10),
    unit=st.integers(1, 30),
)
def test_aligned_chunks_property(chunks, unit):
    out = aligned_chunks(chunks, unit)
    assert sum(out) == sum(chunks)
    assert is_aligned(out, unit)
    assert all(c > 0 for c in out)
