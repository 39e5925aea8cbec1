"""Reading one fetch group: its row ranges of the matrix and of the requested obsm values.

A fetch group is a few row ranges (blocks) read together. :func:`read_group` builds the
group's small dask graph — one piece per block (a chunk of the matrix, or the block's rows
pushed down to storage through :func:`annscale.core.index.subset_array`) and the same
rows of each obsm value — and computes it with dask's synchronous scheduler, in the
thread (or dask worker) that runs it, so any planning I/O (sparse ``indptr``) happens off
the training loop too. :func:`group_task` wraps it as one delayed task per group. The
result is a :class:`Rows`: the group's rows in ascending position order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import dask
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.index import subset_array
from ..lazy.sparse_chunks import as_plain
from .source import LoaderSource

__all__ = ["Rows", "read_group", "group_task", "take_rows", "stack_rows"]


@dataclass(frozen=True)
class Rows:
    """Rows of the loaded object held in memory: the matrix (scipy CSR or numpy), the
    obsm values, and their positions (int64) along obs of the loaded object."""

    X: Any
    obsm: dict[str, Any]
    positions: np.ndarray

    @property
    def n(self) -> int:
        return int(self.positions.shape[0])


def _plain(x: Any) -> Any:
    x = as_plain(x)
    return sp.csr_matrix(x) if sp.issparse(x) and x.format != "csr" else x


def _vstack(parts: list[Any]) -> Any:
    if len(parts) == 1:
        return parts[0]
    if isinstance(parts[0], pd.DataFrame):
        return pd.concat(parts)
    if sp.issparse(parts[0]):
        return sp.vstack(parts, format="csr")
    return np.concatenate(parts, axis=0)


def _assemble(parts: list[Any], obsm: dict[str, list[Any]], positions: np.ndarray) -> Rows:
    X = _vstack([_plain(p) for p in parts])
    return Rows(X, {k: _vstack([_plain(p) for p in v]) for k, v in obsm.items()}, positions)


def read_group(src: LoaderSource, starts: np.ndarray, stops: np.ndarray) -> Rows:
    """Read rows ``[starts[i], stops[i])`` (each inside one chunk of the matrix) in
    ascending order: only those rows of the matrix and of the obsm values are read."""
    order = np.argsort(starts, kind="stable")
    ranges = list(zip(np.asarray(starts)[order].tolist(), np.asarray(stops)[order].tolist()))
    positions = np.concatenate(
        [np.arange(a, b, dtype=np.int64) for a, b in ranges] or [np.zeros(0, np.int64)]
    )
    parts = [src.piece(a, b) for a, b in ranges]
    obsm = {k: [src.obsm_piece(k, a, b) for a, b in ranges] for k in src.obsm}
    parts, obsm = dask.compute(parts, obsm, scheduler="sync")
    return _assemble(parts, obsm, positions)


def group_task(src: LoaderSource, starts: np.ndarray, stops: np.ndarray) -> Any:
    """:func:`read_group` as one delayed task (building it reads nothing)."""
    # the source goes in through partial, so dask does not look for collections inside it
    return dask.delayed(partial(read_group, src), pure=False)(starts, stops)


def take_rows(rows: Rows, idx: np.ndarray) -> Rows:
    """``rows`` at positions ``idx`` (within ``rows``), in that order (a copy)."""
    all_cols = slice(None)
    return Rows(
        subset_array(rows.X, idx, all_cols),
        {k: subset_array(v, idx, all_cols) for k, v in rows.obsm.items()},
        rows.positions[idx],
    )


def stack_rows(a: Rows, b: Rows) -> Rows:
    """The rows of ``a`` followed by those of ``b``."""
    return Rows(
        _vstack([a.X, b.X]),
        {k: _vstack([v, b.obsm[k]]) for k, v in a.obsm.items()},
        np.concatenate([a.positions, b.positions]),
    )
