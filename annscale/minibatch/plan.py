"""The order in which an epoch visits the rows: pure functions on small arrays, no I/O.

Units are *rows* (positions along obs of the loaded object). A *block* is a range of
contiguous rows read with one request per stored array; blocks never straddle a chunk of
the dask array they are read from. An epoch:

1. orders the blocks at random (:func:`epoch_order`, reproducible from ``(seed, epoch)``);
2. lays the ordered blocks end to end and cuts that sequence into ``n_shards`` contiguous
   parts whose lengths differ by at most one row (:func:`shard_ranges`) — one part per
   DataLoader worker and DDP rank, so together they cover every row exactly once;
3. groups each part's ranges into *fetch groups* of ``fetch_blocks`` ranges
   (:func:`fetch_groups`), read together and shuffled in memory (:func:`group_permutation`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "block_bounds",
    "epoch_order",
    "shard_ranges",
    "fetch_groups",
    "group_permutation",
    "n_batches",
]


def block_bounds(chunk_rows: Sequence[int], block_size: int | None = None) -> np.ndarray:
    """Row offsets ``[0, b1, ..., n]`` of the blocks of an axis chunked as ``chunk_rows``.

    With ``block_size=None`` every chunk is one block; otherwise each chunk is split into
    ``ceil(rows / block_size)`` blocks of near-equal length (at most ``block_size`` rows),
    so no block crosses a chunk boundary. Empty chunks give no block.
    """
    if block_size is not None and block_size < 1:
        raise ValueError(f"block_size must be a positive number of rows, got {block_size}")
    bounds = [0]
    for rows in chunk_rows:
        rows = int(rows)
        if rows == 0:
            continue
        pieces = 1 if block_size is None else -(-rows // block_size)
        start = bounds[-1]
        bounds.extend(start + (rows * k) // pieces for k in range(1, pieces + 1))
    return np.asarray(bounds, dtype=np.int64)


def _rng(*entropy: int) -> np.random.Generator:
    return np.random.default_rng([int(e) for e in entropy])


def epoch_order(n_blocks: int, *, seed: int, epoch: int, shuffle: bool = True) -> np.ndarray:
    """The order of the blocks in ``epoch``: a permutation drawn from ``(seed, epoch)``.

    The same arguments give the same order in every process (workers and ranks agree
    without communicating); ``shuffle=False`` keeps the stored order.
    """
    if not shuffle:
        return np.arange(n_blocks, dtype=np.int64)
    return _rng(seed, epoch).permutation(n_blocks).astype(np.int64)


def shard_ranges(
    bounds: np.ndarray, order: np.ndarray, shard: int = 0, n_shards: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Row ranges ``[starts[i], stops[i])`` of part ``shard`` of ``n_shards``.

    The blocks (``bounds`` from :func:`block_bounds`) are laid end to end in ``order``;
    part ``k`` is rows ``[k * n // n_shards, (k + 1) * n // n_shards)`` of that sequence, so
    parts are disjoint, cover every row once, and differ in length by at most one row. A
    block cut by a part boundary contributes a partial range to each side.
    """
    if not 0 <= shard < n_shards:
        raise ValueError(f"shard {shard} is not in [0, {n_shards})")
    starts = bounds[:-1][order]
    lengths = np.diff(bounds)[order]
    ends = np.cumsum(lengths)  # end of each block in the laid-out sequence
    n = int(ends[-1]) if ends.size else 0
    lo, hi = shard * n // n_shards, (shard + 1) * n // n_shards
    if lo == hi:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    first = int(np.searchsorted(ends, lo, side="right"))
    last = int(np.searchsorted(ends, hi, side="left"))
    seq_start = ends[first : last + 1] - lengths[first : last + 1]
    cut_lo = np.maximum(seq_start, lo) - seq_start
    cut_hi = np.minimum(ends[first : last + 1], hi) - seq_start
    block_start = starts[first : last + 1]
    return (block_start + cut_lo).astype(np.int64), (block_start + cut_hi).astype(np.int64)


def fetch_groups(
    starts: np.ndarray, stops: np.ndarray, fetch_blocks: int
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Consecutive runs of ``fetch_blocks`` ranges: what is read and shuffled together."""
    if fetch_blocks < 1:
        raise ValueError(f"fetch_blocks must be at least 1, got {fetch_blocks}")
    return [
        (starts[i : i + fetch_blocks], stops[i : i + fetch_blocks])
        for i in range(0, len(starts), fetch_blocks)
    ]


def group_permutation(
    n_rows: int, *, seed: int, epoch: int, shard: int, n_shards: int, group: int, shuffle: bool
) -> np.ndarray:
    """The in-memory order of the ``n_rows`` rows of one fetch group (identity unshuffled)."""
    if not shuffle:
        return np.arange(n_rows, dtype=np.int64)
    return _rng(seed, epoch, n_shards, shard, group).permutation(n_rows).astype(np.int64)


def n_batches(n_rows: int, batch_size: int, drop_last: bool) -> int:
    """Minibatches made from ``n_rows`` rows (the last one partial unless ``drop_last``)."""
    return n_rows // batch_size if drop_last else -(-n_rows // batch_size)
