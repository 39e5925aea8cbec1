"""Merge strategies: how ``concat`` combines elements that are not concatenated.

``merge=`` applies to the elements aligned to the *other* axis (``var``/``varm``/``varp``
when concatenating along obs), ``uns_merge=`` to ``uns`` (recursively into nested
mappings). A strategy takes a list of mappings (one per input) and returns one mapping:

* ``None`` - keep nothing;
* ``"same"`` - keys present in every input whose values are all equal;
* ``"unique"`` - keys (present anywhere) whose values are all equal;
* ``"first"`` - for each key, the first value seen;
* ``"only"`` - keys present in exactly one input;
* a callable - used as is.

Equality follows anndata: arrays compare element-wise with missing values equal to each
other, dataframes and series with ``.equals`` (dtypes must match), sparse matrices by their
entries. Nothing here reads storage; lazy (dask) values are computed when compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import singledispatch
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..scheduler import compute_one

__all__ = [
    "MISSING",
    "StrategyName",
    "equal",
    "intersect_keys",
    "merge_first",
    "merge_only",
    "merge_same",
    "merge_unique",
    "resolve_merge_strategy",
    "union_keys",
]

StrategyName = Literal["same", "unique", "first", "only"]
MergeStrategy = Callable[[Sequence[Mapping]], dict]


class _Missing:
    """Sentinel: no value could be chosen for a key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


# ---------------------------------------------------------------------------- keys


def union_keys(mappings: Iterable[Iterable]) -> list:
    """Keys of all mappings, in order of first appearance."""
    seen: dict = {}
    for m in mappings:
        for k in m:
            seen.setdefault(k, None)
    return list(seen)


def intersect_keys(mappings: Iterable[Iterable]) -> list:
    """Keys present in every mapping, in the order of the *last* one (as anndata orders them)."""
    mappings = list(mappings)
    if not mappings:
        return []
    common = list(dict.fromkeys(mappings[0]))
    for m in mappings[1:]:
        keep = set(common)
        common = [k for k in dict.fromkeys(m) if k in keep]
    return common


# ---------------------------------------------------------------------------- equality


def _dense(x: Any) -> np.ndarray:
    if sp.issparse(x):
        return x.toarray()
    if _is_dask(x):
        return _dense(compute_one(x))
    return np.asarray(x)


def _is_dask(x: Any) -> bool:
    # not by module name: annscale's stored arrays subclass dask.array.Array elsewhere
    import dask

    return dask.is_dask_collection(x)


@singledispatch
def equal(a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` count as the same value for merging (dispatch on ``a``)."""
    if _is_dask(a):
        return _equal_dask(a, b)
    a, b = _dense(a), _dense(b)
    if a.ndim == 0 and b.ndim == 0:
        return bool(a == b)
    a_na = pd.isna(a) if a.dtype.names is None else np.False_
    b_na = pd.isna(b) if b.dtype.names is None else np.False_
    return bool(np.array_equal(a_na, b_na) and np.array_equal(a[~a_na], b[~b_na]))


@equal.register(pd.DataFrame)
@equal.register(pd.Series)
def _equal_frame(a: pd.DataFrame | pd.Series, b: Any) -> bool:
    return bool(a.equals(b))


@equal.register(np.ndarray)
def _equal_ndarray(a: np.ndarray, b: Any) -> bool:
    b = _dense(b)
    if a.shape != b.shape:
        return False
    # flattened into frames: works for any dtype, and NaN == NaN, dtype must match
    return bool(pd.DataFrame(a.reshape(-1)).equals(pd.DataFrame(b.reshape(-1))))


def _equal_sparse(a: Any, b: Any) -> bool:
    if not sp.issparse(b):
        return False
    diff = a != b
    if isinstance(diff, bool):
        return not diff
    if diff.nnz == 0:
        return True
    # entries that differ are only acceptable when both sides are NaN there
    rows, cols = diff.nonzero()
    av = np.asarray(sp.csr_matrix(a)[rows, cols]).ravel()
    bv = np.asarray(sp.csr_matrix(b)[rows, cols]).ravel()
    return bool(np.isnan(av).all() and np.isnan(bv).all())


for _cls in (sp.spmatrix, sp.sparray):
    equal.register(_cls, _equal_sparse)


def _equal_dask(a: Any, b: Any) -> bool:
    if a is b:
        return True
    if a.shape != b.shape:
        return False
    # annscale gives dask arrays deterministic names derived from what they read
    if _is_dask(b) and a.name == b.name:
        return True
    b_val = compute_one(b) if _is_dask(b) else b
    return equal(compute_one(a), b_val)


# ---------------------------------------------------------------------------- choosing values


def unique_value(vals: Sequence[Any]) -> Any:
    """The common value if all ``vals`` are equal, else :data:`MISSING`."""
    ref = vals[0]
    for v in vals[1:]:
        if not equal(v, ref):
            return MISSING
    return ref


def first(vals: Sequence[Any]) -> Any:
    """The first value that is not :data:`MISSING`."""
    for v in vals:
        if v is not MISSING:
            return v
    return MISSING


def only(vals: Sequence[Any]) -> Any:
    """The value if exactly one input has the key, else :data:`MISSING`."""
    return vals[0] if len(vals) == 1 else MISSING


def _is_nested(v: Any) -> bool:
    return isinstance(v, Mapping)


def merge_nested(
    mappings: Sequence[Mapping],
    keys_join: Callable[[Sequence[Mapping]], list],
    value_join: Callable[[Sequence[Any]], Any],
) -> dict:
    """Merge ``mappings`` key by key, recursing while every value is itself a mapping.

    A nested mapping that ends up empty is dropped, as is a key whose values cannot be joined.
    """
    out = {}
    for k in keys_join(mappings):
        vals = [m[k] for m in mappings if k in m]
        if not vals:
            continue
        if all(_is_nested(v) for v in vals):
            v = merge_nested(vals, keys_join, value_join)
            if not v:
                continue
        else:
            v = value_join(vals)
            if v is MISSING:
                continue
        out[k] = v
    return out


def merge_same(mappings: Sequence[Mapping]) -> dict:
    return merge_nested(mappings, intersect_keys, unique_value)


def merge_unique(mappings: Sequence[Mapping]) -> dict:
    return merge_nested(mappings, union_keys, unique_value)


def merge_first(mappings: Sequence[Mapping]) -> dict:
    return merge_nested(mappings, union_keys, first)


def merge_only(mappings: Sequence[Mapping]) -> dict:
    return merge_nested(mappings, union_keys, only)


def _merge_none(mappings: Sequence[Mapping]) -> dict:
    return {}


_STRATEGIES: dict[str | None, MergeStrategy] = {
    None: _merge_none,
    "same": merge_same,
    "unique": merge_unique,
    "first": merge_first,
    "only": merge_only,
}


def resolve_merge_strategy(strategy: StrategyName | MergeStrategy | None) -> MergeStrategy:
    """The merge function for a strategy name (or the callable itself)."""
    if callable(strategy):
        return strategy
    try:
        return _STRATEGIES[strategy]
    except (KeyError, TypeError):
        msg = f"merge strategy must be one of {list(_STRATEGIES)} or a callable, got {strategy!r}"
        raise ValueError(msg) from None
