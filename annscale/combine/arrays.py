"""Concatenating in-memory arrays and aligned mappings (``X``, ``layers``, ``obsm``, ``obsp``).

Result types follow anndata: if any input is sparse the result is a CSR matrix (a CSR
*array* if any input is a scipy sparse array) with dense inputs converted; otherwise a
numpy array. Values missing after an outer join are 0 for sparse results (left implicit)
and NaN for dense ones unless ``fill_value`` says otherwise. Nothing here reads storage.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .frames import unify_dtypes
from .merge import MISSING, intersect_keys, union_keys
from .reindex import Reindex, default_fill_value, reindex_dense, reindex_sparse

__all__ = [
    "Missing",
    "concat_arrays",
    "concat_mapping",
    "concat_pairwise",
    "missing_placeholder",
]


def _as_sparse(x: Any, *, use_array: bool) -> Any:
    if isinstance(x, (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.csc_array)):
        return x
    return (sp.csr_array if use_array else sp.csr_matrix)(x)


class Missing:
    """An element some input lacks (outer join): ``length`` positions along the concat axis."""

    __slots__ = ("length",)

    def __init__(self, length: int) -> None:
        self.length = length


def missing_placeholder(n: int, concat_axis: int) -> np.ndarray:
    """An empty stand-in for an element some input lacks: ``n`` long along the concat axis
    and 0 wide, so reindexing it yields pure fill."""
    shape = (n, 0) if concat_axis == 0 else (0, n)
    return np.zeros(shape, dtype=bool)


def concat_arrays(
    arrays: Sequence[Any],
    plans: Sequence[Reindex],
    *,
    axis: int,
    fill_value: Any = None,
) -> Any:
    """Concatenate ``arrays`` along ``axis`` after aligning axis ``1 - axis`` by ``plans``."""
    arrays = [missing_placeholder(a.length, axis) if isinstance(a, Missing) else a for a in arrays]
    if fill_value is None:
        fill_value = default_fill_value(any(sp.issparse(a) for a in arrays))
    if any(isinstance(a, pd.DataFrame) for a in arrays):
        msg = "Cannot concatenate a dataframe with other array types."
        raise NotImplementedError(msg)
    other = 1 - axis
    if any(sp.issparse(a) for a in arrays):
        use_array = any(isinstance(a, sp.sparray) for a in arrays)
        pieces = [
            reindex_sparse(_as_sparse(a, use_array=use_array), p, axis=other, fill_value=fill_value)
            for a, p in zip(arrays, plans)
        ]
        stack = sp.vstack if axis == 0 else sp.hstack
        return stack(pieces, format="csr")
    pieces = [
        reindex_dense(np.asarray(a), p, axis=other, fill_value=fill_value)
        for a, p in zip(arrays, plans)
    ]
    return np.concatenate(pieces, axis=axis)


def _concat_dataframes(
    frames: Sequence[Any], sizes: Sequence[int], *, join: str, index: pd.Index
) -> pd.DataFrame:
    """Dataframe elements of ``obsm``/``varm`` stacked by rows (their columns aligned)."""
    if join == "inner":
        common = frames[0].columns
        for df in frames[1:]:
            common = common.intersection(df.columns)
        frames = [df if df.columns.equals(common) else df.reindex(columns=common) for df in frames]
    else:
        frames = [
            pd.DataFrame(index=range(n)) if df is MISSING else df for df, n in zip(frames, sizes)
        ]
    df = pd.concat(unify_dtypes(frames), axis=0, ignore_index=True)
    df.index = index
    return df


def _element_plans(els: Sequence[Any], *, join: str) -> list[Reindex]:
    """Alignment of the columns of ``obsm``-like arrays: truncate (inner) or pad (outer)."""
    widths = [0 if e is MISSING else e.shape[1] for e in els]
    target = (
        min(widths) if join == "inner" else max(w for e, w in zip(els, widths) if e is not MISSING)
    )
    return [Reindex.prefix(w, target) for w in widths]


def concat_mapping(
    mappings: Sequence[Mapping],
    sizes: Sequence[int],
    *,
    join: str,
    axis: int,
    plans: Sequence[Reindex] | None = None,
    index: pd.Index | None = None,
    fill_value: Any = None,
    concat_arrays=concat_arrays,
) -> dict:
    """Concatenate the elements of aligned mappings (``layers`` or ``obsm``/``varm``).

    ``sizes`` are the inputs' lengths along the concatenated axis. With ``plans`` (layers)
    elements are aligned like ``X`` and stacked along ``axis``; without (``obsm``) they are
    stacked by rows and their columns truncated (inner) or padded (outer). Under an inner join
    only keys present in every input are kept; under an outer join an element missing from
    some input is filled (``fill_value``, by default 0 if sparse else NaN).
    """
    inner = join == "inner"
    keys = intersect_keys(mappings) if inner else union_keys(mappings)
    concat_axis = axis if plans is not None else 0
    result = {}
    for k in keys:
        els = [m[k] if k in m else MISSING for m in mappings]
        present = [e for e in els if e is not MISSING]
        if plans is None and all(isinstance(e, pd.DataFrame) for e in present):
            result[k] = _concat_dataframes(els, sizes, join=join, index=index)
            continue
        cur_plans = plans if plans is not None else _element_plans(els, join=join)
        filled = [Missing(n) if e is MISSING else e for e, n in zip(els, sizes)]
        result[k] = concat_arrays(
            filled, cur_plans, axis=concat_axis, fill_value=None if inner else fill_value
        )
    return result


def concat_pairwise(
    mappings: Sequence[Mapping], sizes: Sequence[int], *, join: str
) -> dict[str, sp.csr_matrix]:
    """Block-diagonal ``obsp``/``varp``: each input's square matrix on the diagonal.

    A key missing from some input contributes an all-zero block (outer join).
    """
    keys = intersect_keys(mappings) if join == "inner" else union_keys(mappings)
    use_array = any(isinstance(v, sp.sparray) for m in mappings for v in m.values())
    empty = sp.csr_array if use_array else sp.csr_matrix
    result = {}
    for k in keys:
        els = [m[k] if k in m else empty((n, n), dtype=bool) for m, n in zip(mappings, sizes)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "`block_diag` is switching", DeprecationWarning)
            diag = sp.block_diag(els, format="csr")
        result[k] = sp.csr_matrix(diag) if isinstance(diag, sp.sparray) else diag
    return result
