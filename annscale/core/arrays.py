"""Element-level helpers: loading into memory, copying, transposing.

Extension hook
--------------
:func:`to_memory` is a :func:`functools.singledispatch` function: numpy, scipy sparse and
pandas values are returned as they are; dask arrays are computed; deferred values are
materialised and computed. :func:`to_memory_many` loads many elements with **one**
``dask.compute`` call, which is what :meth:`annscale.AnnData.to_memory` uses. Both compute on
annscale's scheduler (:func:`annscale.scheduler.compute`: ``settings.scheduler``, else
dask's active one, e.g. a default ``distributed.Client``).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .deferred import is_deferred, materialize

__all__ = ["to_memory", "to_memory_many", "copy_array", "transpose_array", "is_dask"]


def is_dask(x: Any) -> bool:
    return type(x).__module__.startswith("dask.") and hasattr(x, "dask") and hasattr(x, "chunks")


@singledispatch
def to_memory(x: Any) -> Any:
    """An in-memory version of ``x`` (reads or computes it when it is lazy)."""
    if is_deferred(x):
        return to_memory(materialize(x))
    if is_dask(x):
        from ..scheduler import compute_one

        return compute_one(x)
    return x


@to_memory.register(np.ndarray)
@to_memory.register(pd.DataFrame)
def _(x: Any) -> Any:
    return x


def to_memory_many(values: dict[Any, Any]) -> dict[Any, Any]:
    """:func:`to_memory` of every value, computing all dask arrays in one ``dask.compute``."""
    out: dict[Any, Any] = {}
    lazy: dict[Any, Any] = {}
    for key, value in values.items():
        value = materialize(value)
        if is_dask(value):
            lazy[key] = value
        else:
            out[key] = to_memory(value)
    if lazy:
        from ..scheduler import compute

        computed = compute(*lazy.values(), progress=False)
        out.update(zip(lazy, computed))
    return {k: out[k] for k in values}


@singledispatch
def copy_array(x: Any) -> Any:
    """An independent copy of an in-memory value; lazy values are immutable and shared."""
    if is_deferred(x) or is_dask(x):
        return x
    if hasattr(x, "copy"):
        return x.copy()
    import copy

    return copy.copy(x)


@copy_array.register(np.ndarray)
def _(x: np.ndarray) -> np.ndarray:
    return np.array(x)  # drops view subclasses


@copy_array.register(pd.DataFrame)
def _(x: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(x).copy()


def _copy_sparse(x: Any) -> Any:
    base = next(c for c in _SPARSE if isinstance(x, c))
    return base(x, copy=True)


_SPARSE = (sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array, sparse.csc_array)
for _cls in _SPARSE:
    copy_array.register(_cls)(_copy_sparse)


def transpose_array(x: Any) -> Any:
    """``x.T`` keeping the type (csr becomes csc); deferred values are materialised first."""
    return materialize(x).T
