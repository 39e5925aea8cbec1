"""Pure planning for parallel write-out: offsets, dtypes and zarr chunk ownership.

Nothing here does I/O; every function works on small integer arrays and is tested alone.

Sparse (CSR/CSC) write-out
--------------------------
A sparse dask array is cut into *blocks* along its major axis (rows for CSR, columns for
CSC). Block ``b`` holds ``nnz[b]`` stored values. :func:`block_offsets` turns the per-block
counts into prefix sums ``offsets`` (``offsets[b]`` is where block ``b``'s values start in
``data``/``indices``; ``offsets[-1]`` is the total). Block ``b`` also writes the ``indptr``
entries of its rows: block 0 writes positions ``[0, r_1 + 1)`` and block ``b > 0`` writes
``[r_b + 1, r_{b+1} + 1)`` (:func:`indptr_bounds`), adding ``offsets[b]`` to its local indptr.

Chunk ownership
---------------
Two tasks writing the same zarr chunk (or shard) race: each reads, modifies and writes
the whole chunk, and one write is lost. Given the ranges ``[bounds[b], bounds[b+1])`` each
block covers in a 1-d array, and the *unit* (chunk length, or shard length when sharded),
:func:`plan_ownership` assigns

* to each block the run of units lying entirely inside its range (it writes them itself), and
* every unit touched by two or more blocks to one *merge* task, which receives the pieces
  (at most two per block: its leading and trailing partial unit) and writes the unit once.

The last unit of an array counts as whole when a block covers it up to the array's end.
Dense arrays avoid merges altogether by rechunking dask blocks to whole units
(:func:`aligned_chunks`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "INT32_MAX",
    "block_offsets",
    "indptr_bounds",
    "indptr_dtype",
    "indices_dtype",
    "check_index_dtype",
    "Piece",
    "OwnershipPlan",
    "plan_ownership",
    "is_aligned",
    "aligned_chunks",
    "default_unit",
]

INT32_MAX = int(np.iinfo(np.int32).max)


def block_offsets(block_nnz: Sequence[int] | np.ndarray) -> np.ndarray:
    """Prefix sums of per-block nonzero counts: ``int64`` array of length ``n_blocks + 1``.

    ``offsets[b]`` is the position (in nonzeros) of block ``b``'s first value in ``data``.
    """
    nnz = np.asarray(block_nnz, dtype=np.int64).reshape(-1)
    if (nnz < 0).any():
        raise ValueError(f"negative nonzero count in {nnz.tolist()}")
    out = np.zeros(len(nnz) + 1, dtype=np.int64)
    np.cumsum(nnz, out=out[1:])
    return out


def indptr_bounds(block_lengths: Sequence[int] | np.ndarray) -> np.ndarray:
    """Which ``indptr`` positions each block writes: boundaries of length ``n_blocks + 1``.

    ``block_lengths`` are the blocks' extents along the major axis (rows for CSR). Block 0
    writes ``indptr[0 : r_1 + 1]`` (including the leading zero), block ``b`` writes
    ``indptr[r_b + 1 : r_{b+1} + 1]``; together they cover ``[0, n_major + 1)`` once.
    """
    lengths = np.asarray(block_lengths, dtype=np.int64).reshape(-1)
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    out[1:] += 1
    return out


def indptr_dtype(total_nnz: int) -> np.dtype:
    """``int64`` when ``total_nnz >= 2**31 - 1`` (as anndata's ``concat_on_disk``), else ``int32``."""
    return np.dtype(np.int64) if total_nnz >= INT32_MAX else np.dtype(np.int32)


def indices_dtype(minor_length: int) -> np.dtype:
    """``int32`` unless a minor-axis index (at most ``minor_length - 1``) overflows it."""
    return np.dtype(np.int64) if minor_length - 1 > INT32_MAX else np.dtype(np.int32)


def check_index_dtype(
    indptr: np.dtype, total_nnz: int, indices: np.dtype, minor_length: int
) -> None:
    """Raise ValueError when requested index dtypes cannot hold the values."""
    if np.dtype(indptr).kind not in "iu" or np.dtype(indices).kind not in "iu":
        raise ValueError(f"index dtypes must be integers, got {indptr} and {indices}")
    if total_nnz > np.iinfo(indptr).max or minor_length - 1 > np.iinfo(indices).max:
        raise ValueError(
            f"index dtypes {indptr}/{indices} cannot hold {total_nnz} nonzeros / "
            f"{minor_length} minor-axis positions"
        )


@dataclass(frozen=True)
class Piece:
    """Part ``[start, stop)`` (array positions) of unit ``unit`` contributed by one block."""

    unit: int
    start: int
    stop: int


@dataclass(frozen=True)
class OwnershipPlan:
    """Who writes which units of a 1-d array of ``length`` elements cut in units of ``unit``.

    ``owned[b]`` is the ``(start, stop)`` range (array positions, unit-aligned) block ``b``
    writes itself (``start == stop`` when none); ``pieces[b]`` are its partial units;
    ``merges`` maps each shared unit to the blocks whose pieces make it up, in order.
    """

    length: int
    unit: int
    bounds: np.ndarray
    owned: tuple[tuple[int, int], ...]
    pieces: tuple[tuple[Piece, ...], ...]
    merges: dict[int, tuple[int, ...]] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        return -(-self.length // self.unit)

    def unit_range(self, k: int) -> tuple[int, int]:
        """Array positions ``[start, stop)`` of unit ``k`` (the last one may be short)."""
        return k * self.unit, min((k + 1) * self.unit, self.length)


def plan_ownership(bounds: Sequence[int] | np.ndarray, unit: int) -> OwnershipPlan:
    """Assign every unit (zarr chunk or shard) of a 1-d array to exactly one writer.

    Parameters
    ----------
    bounds
        Non-decreasing block boundaries (array positions), ``bounds[0] == 0`` and
        ``bounds[-1] == length``; block ``b`` holds ``[bounds[b], bounds[b+1])``.
    unit
        Elements per zarr chunk, or per shard when the array is sharded.
    """
    b = np.asarray(bounds, dtype=np.int64).reshape(-1)
    if unit < 1:
        raise ValueError(f"unit must be a positive number of elements, got {unit}")
    if len(b) < 1 or b[0] != 0 or (np.diff(b) < 0).any():
        raise ValueError(f"block bounds must start at 0 and not decrease: {b.tolist()}")
    length = int(b[-1])
    owned: list[tuple[int, int]] = []
    pieces: list[tuple[Piece, ...]] = []
    merges: dict[int, list[int]] = {}
    for i in range(len(b) - 1):
        s, e = int(b[i]), int(b[i + 1])
        if s == e:
            owned.append((s, s))
            pieces.append(())
            continue
        first = -(-s // unit)  # first unit starting inside the block
        last = -(-length // unit) if e == length else e // unit  # units before this are whole
        mine: list[Piece] = []
        if first < last:
            o_start, o_stop = first * unit, min(last * unit, length)
            owned.append((o_start, o_stop))
            if s < o_start:
                mine.append(Piece(first - 1, s, o_start))
            if o_stop < e:
                mine.append(Piece(last, o_stop, e))
        else:
            owned.append((s, s))
            # no whole unit inside: at most two partial units
            cut = (s // unit + 1) * unit
            if cut < e:
                mine += [Piece(s // unit, s, cut), Piece(cut // unit, cut, e)]
            else:
                mine.append(Piece(s // unit, s, e))
        for p in mine:
            merges.setdefault(p.unit, []).append(i)
        pieces.append(tuple(mine))
    return OwnershipPlan(
        length=length,
        unit=int(unit),
        bounds=b,
        owned=tuple(owned),
        pieces=tuple(pieces),
        merges={k: tuple(v) for k, v in sorted(merges.items())},
    )


def is_aligned(chunks: Sequence[int], unit: int) -> bool:
    """Whether every inner boundary of dask ``chunks`` (one axis) is a multiple of ``unit``."""
    inner = np.cumsum(np.asarray(chunks, dtype=np.int64))[:-1]
    return bool((inner % unit == 0).all())


def aligned_chunks(chunks: Sequence[int], unit: int) -> tuple[int, ...]:
    """Dask chunks (one axis) whose inner boundaries fall on multiples of ``unit``.

    Returns ``chunks`` unchanged when already aligned; otherwise regular chunks of the
    multiple of ``unit`` nearest the largest current chunk (at least one unit), so a task
    still holds about as much as before and owns whole units.
    """
    chunks = tuple(int(c) for c in chunks)
    if is_aligned(chunks, unit):
        return chunks
    length = sum(chunks)
    size = max(1, round(max(chunks) / unit)) * unit
    n_full, rest = divmod(length, size)
    return (size,) * n_full + ((rest,) if rest else ())


def default_unit(length: int, target: int) -> int:
    """A 1-d chunk length: ``target`` elements, or the whole array when shorter (at least 1)."""
    return int(max(1, min(length, target)))
