"""The epoch plan: pure functions, no I/O."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from annscale.minibatch import plan


def test_block_bounds_split_chunks_without_crossing():
    assert plan.block_bounds((10, 0, 7)).tolist() == [0, 10, 17]
    bounds = plan.block_bounds((10, 7), block_size=4)
    assert bounds.tolist() == [0, 3, 6, 10, 13, 17]  # near-equal pieces, chunk edge kept
    assert plan.block_bounds(()).tolist() == [0]
    with pytest.raises(ValueError, match="block_size"):
        plan.block_bounds((3,), block_size=0)


def test_epoch_order_reproducible_and_different_per_epoch():
    a = plan.epoch_order(50, seed=7, epoch=0)
    assert np.array_equal(a, plan.epoch_order(50, seed=7, epoch=0))
    assert not np.array_equal(a, plan.epoch_order(50, seed=7, epoch=1))
    assert not np.array_equal(a, plan.epoch_order(50, seed=8, epoch=0))
    assert sorted(a.tolist()) == list(range(50))
    assert plan.epoch_order(5, seed=7, epoch=3, shuffle=False).tolist() == [0, 1, 2, 3, 4]


chunks_st = st.lists(st.integers(0, 40), min_size=0, max_size=12)


@settings(max_examples=150, deadline=None)
@given(
    chunks=chunks_st,
    block_size=st.one_of(st.none(), st.integers(1, 15)),
    n_shards=st.integers(1, 7),
    seed=st.integers(0, 2**32),
    fetch_blocks=st.integers(1, 5),
)
def test_shards_cover_every_row_once(chunks, block_size, n_shards, seed, fetch_blocks):
    bounds = plan.block_bounds(chunks, block_size)
    n = int(sum(chunks))
    chunk_edges = np.cumsum([0, *chunks])
    order = plan.epoch_order(len(bounds) - 1, seed=seed, epoch=2)
    seen, lengths = [], []
    for shard in range(n_shards):
        starts, stops = plan.shard_ranges(bounds, order, shard, n_shards)
        assert np.all(stops > starts)
        for a, b in zip(starts.tolist(), stops.tolist()):
            # a range never crosses a chunk edge
            k = np.searchsorted(chunk_edges, a, side="right")
            assert b <= chunk_edges[k]
        groups = plan.fetch_groups(starts, stops, fetch_blocks)
        assert all(len(g[0]) <= fetch_blocks for g in groups)
        rows = [np.arange(a, b) for g in groups for a, b in zip(*g)]
        rows = np.concatenate(rows) if rows else np.zeros(0, int)
        lengths.append(rows.size)
        seen.append(rows)
    allrows = np.concatenate(seen) if seen else np.zeros(0, int)
    assert sorted(allrows.tolist()) == list(range(n))  # every row exactly once
    assert max(lengths) - min(lengths) <= 1  # balanced shards


def test_group_permutation_and_n_batches():
    p = plan.group_permutation(10, seed=1, epoch=0, shard=0, n_shards=1, group=0, shuffle=True)
    assert sorted(p.tolist()) == list(range(10))
    q = plan.group_permutation(10, seed=1, epoch=0, shard=0, n_shards=1, group=1, shuffle=True)
    assert not np.array_equal(p, q)
    assert plan.group_permutation(
        4, seed=1, epoch=0, shard=0, n_shards=1, group=0, shuffle=False
    ).tolist() == [0, 1, 2, 3]
    assert plan.n_batches(10, 4, drop_last=False) == 3
    assert plan.n_batches(10, 4, drop_last=True) == 2
    with pytest.raises(ValueError, match="shard"):
        plan.shard_ranges(np.array([0, 5]), np.array([0]), 2, 2)
