"""A 10x h5 matrix as a dask array of CSR row (cell) blocks.

The graph carries the file's :class:`Location`, the group path and cell ranges; each task
opens the file itself and reads only ``indptr[start:stop + 1]`` and the nonzeros between,
so tasks pickle and run on remote workers. Row blocks are cut so that each holds about
``settings.chunk_target_bytes`` of stored values and indices.
"""

from __future__ import annotations

import itertools

import numpy as np
from dask.array import Array as DaskArray
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from scipy import sparse

from .._settings import settings
from ..storage.location import Location
from ..storage.open import open_root
from ._tenx_h5 import read_rows

__all__ = ["lazy_rows", "row_blocks"]


def row_blocks(indptr: np.ndarray, target_nnz: int) -> list[tuple[int, int]]:
    """Cut ``len(indptr) - 1`` rows into ranges of about ``target_nnz`` nonzeros each.

    Pure function. Every range holds at least one row; an empty matrix gives no ranges.
    """
    n_rows = len(indptr) - 1
    if n_rows <= 0:
        return []
    target_nnz = max(1, int(target_nnz))
    bounds = [0]
    while bounds[-1] < n_rows:
        start = bounds[-1]
        # first row whose end passes the target, taking at least one row
        stop = int(np.searchsorted(indptr, indptr[start] + target_nnz, side="right")) - 1
        bounds.append(min(n_rows, max(stop, start + 1)))
    return list(itertools.pairwise(bounds))


def _read_block(
    loc: Location,
    group: str,
    n_obs: int,
    n_vars: int,
    start: int,
    stop: int,
    columns: np.ndarray | None,
) -> sparse.csr_matrix:
    with open_root(loc, "r", kind="h5ad") as root:
        block = read_rows(root[group], n_obs, n_vars, start, stop)
    return block if columns is None else block[:, columns]


def lazy_rows(
    loc: Location,
    group: str,
    indptr: np.ndarray,
    n_vars: int,
    dtype: np.dtype,
    bytes_per_nonzero: int,
    columns: np.ndarray | None = None,
) -> DaskArray:
    """A ``(cells, len(columns) or n_vars)`` dask array of ``scipy.sparse.csr_matrix`` blocks.

    ``indptr`` is the full cell pointer (already read, one entry per cell plus one);
    ``columns`` optionally keeps only these feature positions (in every block).
    """
    n_obs = len(indptr) - 1
    target = settings.chunk_target_bytes // max(1, bytes_per_nonzero)
    blocks = row_blocks(indptr, target)
    n_out = n_vars if columns is None else len(columns)
    token = tokenize(loc.token, group, blocks, n_vars, columns)
    name = f"read-10x-h5-{token}"
    graph: dict = {}
    columns_key = None
    if columns is not None:  # stored once in the graph, shared by all tasks
        columns_key = f"10x-columns-{token}"
        graph[columns_key] = np.asarray(columns, dtype=np.int64)
    for i, (start, stop) in enumerate(blocks):
        graph[(name, i, 0)] = (_read_block, loc, group, n_obs, n_vars, start, stop, columns_key)
    chunks = (tuple(stop - start for start, stop in blocks) or (0,), (n_out,))
    if not blocks:
        graph[(name, 0, 0)] = sparse.csr_matrix((0, n_out), dtype=dtype)
    hlg = HighLevelGraph.from_collections(name, graph, dependencies=())
    meta = sparse.csr_matrix((0, 0), dtype=dtype)
    return DaskArray(hlg, name, chunks, meta=meta)
