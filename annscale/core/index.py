# ruff: noqa: RUF001  (messages reproduce anndata's text, incl. its unicode signs)
"""Index normalisation and subsetting: pure functions, no I/O.

Every way a user can index an :class:`~annscale.AnnData` (``adata[rows]``,
``adata[rows, cols]``, boolean masks, integer positions, names, slices by position or by
name, a single int or name, ``...``) is normalised **once**, here, to one *per-axis indexer*:

* a ``slice`` with ``int`` ``start``/``stop`` (``0 <= start <= stop <= n``) and a positive
  ``step``, or
* a one-dimensional ``int64`` :class:`numpy.ndarray` of non-negative positions (order and
  repeats as requested).

Views of views compose their indexers with :func:`compose` (positions into the original
object), so data are subset only once.

Extension hook
--------------
:func:`subset_array` is a :func:`functools.singledispatch` function that the container calls
for every array it subsets (``X``, ``layers``, ``obsm``/``varm``/``obsp``/``varp`` values and
``raw.X``) with two normalised indexers ``rows`` and ``cols`` (``cols`` is ``slice(None)`` for
arrays aligned to one axis only). Implementations are registered for numpy, scipy sparse
(csr/csc, matrix and array; format and class are kept), pandas DataFrames (``iloc``) and
dask arrays (dask indexing, stays lazy). Other packages register their own types, e.g.::

    @subset_array.register(MyDeferredSource)
    def _(x, rows, cols):
        return x.subset(rows, cols)  # no I/O

Values marked deferred (``__annscale_deferred__ = True``, see :mod:`annscale.core.deferred`)
without a registration are materialised and then subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import singledispatch
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import NamesNotFoundError

__all__ = [
    "Indexer",
    "normalize_indices",
    "normalize_axis_index",
    "unpack_index",
    "compose",
    "indexer_length",
    "as_positions",
    "is_full",
    "subset_array",
]

Indexer = slice | np.ndarray
"""A normalised per-axis indexer: a positive-step slice with int bounds, or int64 positions."""

_AXIS_NAMES = ("Observation", "Variable")


# ------------------------------------------------------------------------------ unpacking


def unpack_index(index: Any) -> tuple[Any, Any]:
    """Split a user's index into ``(rows, cols)``; ``...`` stands for the full axis."""
    if isinstance(index, tuple) and len(index) == 1:
        index = index[0]
    if not isinstance(index, tuple):
        return (slice(None) if index is Ellipsis else index), slice(None)
    n_ellipsis = sum(i is Ellipsis for i in index)
    if n_ellipsis > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    if len(index) > 2:
        if not n_ellipsis:
            raise IndexError("Received a length 3 index without an ellipsis")
        index = tuple(i for i in index if i is not Ellipsis)
        if len(index) > 2:
            raise IndexError(
                f"Too many indices: AnnData is 2-dimensional but {len(index)} were indexed."
            )
    elif len(index) == 0:
        return slice(None), slice(None)
    rows, cols = (slice(None) if i is Ellipsis else i for i in index)
    return rows, cols


def normalize_indices(
    index: Any, obs_names: pd.Index, var_names: pd.Index
) -> tuple[Indexer, Indexer]:
    """Normalise ``adata[index]`` to ``(rows, cols)`` positions (see module docstring)."""
    rows, cols = unpack_index(index)
    return (
        normalize_axis_index(rows, obs_names, axis=0),
        normalize_axis_index(cols, var_names, axis=1),
    )


# ------------------------------------------------------------------------------ one axis


def normalize_axis_index(indexer: Any, names: pd.Index, axis: int = 0) -> Indexer:
    """Normalise the index of one axis whose labels are ``names`` (length ``n``).

    Accepts slices (positions, or names: inclusive of the stop name like ``.loc``), an
    ``int``/name (kept as a length-1 slice, so the dimension stays), boolean masks of length
    ``n`` (numpy, list, pandas; pandas objects are used by position, as anndata does), integer
    positions (negative count from the end), names, and ``(n, 1)``/``(1, n)`` matrices.

    Raises
    ------
    IndexError
        Out-of-range positions, a mask of the wrong length, fractional positions.
    NamesNotFoundError
        Names that are not in ``names`` (all of them are listed).
    """
    n = len(names)
    if isinstance(indexer, slice):
        return _normalize_slice(indexer, names)
    if isinstance(indexer, bool | np.bool_):
        raise IndexError(f"Cannot index an axis with a single boolean {indexer!r}.")
    if isinstance(indexer, int | np.integer):
        i = int(indexer)
        if not -n <= i < n:
            raise IndexError(f"{_AXIS_NAMES[axis]} index `{i}` is out of range.")
        i += n * (i < 0)
        return slice(i, i + 1, 1)
    if isinstance(indexer, str):
        return _name_slice_single(indexer, names, axis)
    if isinstance(indexer, pd.Series | pd.Index):
        indexer = indexer.array
    if isinstance(indexer, pd.api.extensions.ExtensionArray):
        indexer = _extension_to_numpy(indexer)
    elif sparse.issparse(indexer):
        indexer = indexer.toarray()
    elif isinstance(indexer, np.matrix):
        indexer = np.asarray(indexer)
    elif isinstance(indexer, range):
        indexer = np.arange(indexer.start, indexer.stop, indexer.step, dtype=np.int64)
    elif not isinstance(indexer, np.ndarray):
        if not isinstance(indexer, Sequence) and not hasattr(indexer, "__array__"):
            raise IndexError(f"Unknown indexer {indexer!r} of type {type(indexer)}")
        indexer = np.asarray(indexer)
        if indexer.size == 0:
            indexer = indexer.astype(np.int64)
    if indexer.ndim == 2 and 1 in indexer.shape and indexer.size == n:
        indexer = indexer.ravel()
    if indexer.ndim != 1:
        raise IndexError(f"Indexer for one axis must be 1-dimensional, got shape {indexer.shape}.")
    kind = indexer.dtype.kind
    if kind == "b":
        if indexer.shape != (n,):
            raise IndexError(
                "Boolean index does not match AnnData’s shape along this dimension. "
                f"Boolean index has shape {indexer.shape} while AnnData index has shape {(n,)}."
            )
        return np.flatnonzero(indexer).astype(np.int64)
    if kind == "f":
        as_int = indexer.astype(np.int64)
        if np.any(as_int != indexer):
            raise IndexError(f"Indexer {indexer!r} has floating point values.")
        indexer = as_int
        kind = "i"
    if kind in "iu":
        return _check_positions(indexer.astype(np.int64, copy=False), n, axis)
    return _names_to_positions(indexer, names, axis)


def _extension_to_numpy(arr: pd.api.extensions.ExtensionArray) -> np.ndarray:
    if isinstance(arr.dtype, pd.BooleanDtype | pd.core.dtypes.dtypes.BaseMaskedDtype):
        if arr.isna().any():
            raise IndexError("Cannot index with a boolean/integer mask containing missing values.")
        return arr.to_numpy(dtype=arr.dtype.numpy_dtype)
    if isinstance(arr.dtype, pd.CategoricalDtype):
        return np.asarray(arr, dtype=object)
    return np.asarray(arr)


def _check_positions(pos: np.ndarray, n: int, axis: int) -> np.ndarray:
    if pos.size:
        lo, hi = pos.min(), pos.max()
        if lo < -n or hi >= n:
            bad = pos[(pos < -n) | (pos >= n)]
            raise IndexError(
                f"{_AXIS_NAMES[axis]} positions {bad[:10].tolist()} are out of range "
                f"for an axis of length {n}."
            )
        if lo < 0:
            pos = np.where(pos < 0, pos + n, pos)
    return pos


def _names_to_positions(labels: np.ndarray, names: pd.Index, axis: int) -> np.ndarray:
    if names.is_unique:
        pos = names.get_indexer(labels)
    else:
        pos = np.array([_single_position(names, lab, axis) for lab in labels], dtype=np.int64)
    missing = pos < 0
    if missing.any():
        raise NamesNotFoundError(_missing_message(labels[missing], axis))
    return pos.astype(np.int64, copy=False)


def _missing_message(missing: Any, axis: int) -> str:
    missing = list(dict.fromkeys(np.asarray(missing, dtype=object).tolist()))
    shown = missing[:20]
    more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
    dim = ("obs", "var")[axis]
    return f"Values {shown}{more} are not valid {dim} names or indices (not found in .{dim}_names)."


def _single_position(names: pd.Index, label: Any, axis: int) -> int:
    try:
        loc = names.get_loc(label)
    except KeyError:
        return -1
    except TypeError:
        return -1
    if isinstance(loc, int | np.integer):
        return int(loc)
    raise KeyError(
        f"Name {label!r} occurs more than once in .{('obs', 'var')[axis]}_names; "
        f"call `.{('obs', 'var')[axis]}_names_make_unique()` first."
    )


def _name_slice_single(label: str, names: pd.Index, axis: int) -> slice:
    i = _single_position(names, label, axis)
    if i < 0:
        raise NamesNotFoundError(_missing_message([label], axis))
    return slice(i, i + 1, 1)


def _normalize_slice(s: slice, names: pd.Index) -> Indexer:
    n = len(names)

    step = s.step
    if step is not None and not isinstance(step, int | np.integer):
        raise IndexError(f"Slice step must be an int or None, got {step!r}.")
    backwards = step is not None and step < 0

    def bound(b: Any, is_stop: bool) -> Any:
        if b is None or isinstance(b, int | np.integer):
            return b
        if isinstance(b, str):
            i = _single_position(names, b, 0)
            if i < 0:
                raise NamesNotFoundError(
                    f"Slice bound {b!r} is not a valid name (not found in the names of this axis)."
                )
            if not is_stop:
                return i
            # name slices include their stop, like DataFrame.loc (in either direction)
            return (None if i == 0 else i - 1) if backwards else i + 1
        raise IndexError(f"Slice bounds must be ints, names or None, got {b!r}.")

    start, stop, step = slice(bound(s.start, False), bound(s.stop, True), step).indices(n)
    if step < 0:
        return np.arange(start, stop, step, dtype=np.int64)
    return slice(start, max(start, stop), step)


# ------------------------------------------------------------------------------ algebra


def indexer_length(idx: Indexer, n: int) -> int:
    """Number of positions ``idx`` selects from an axis of length ``n``."""
    if isinstance(idx, slice):
        return len(range(*idx.indices(n)))
    return len(idx)


def as_positions(idx: Indexer, n: int) -> np.ndarray:
    """``idx`` as an int64 array of positions into an axis of length ``n``."""
    if isinstance(idx, slice):
        return np.arange(*idx.indices(n), dtype=np.int64)
    return np.asarray(idx, dtype=np.int64)


def is_full(idx: Indexer, n: int) -> bool:
    """Whether ``idx`` selects the whole axis of length ``n`` in order."""
    return isinstance(idx, slice) and idx.indices(n) == (0, n, 1)


def compose(outer: Indexer, inner: Indexer, n: int) -> Indexer:
    """The positions into an axis of length ``n`` selected by ``inner`` after ``outer``.

    ``outer`` indexes the original axis; ``inner`` indexes the result of ``outer``. Both are
    normalised indexers; so is the result (a slice when both are slices).
    """
    if isinstance(outer, slice):
        o_start, o_stop, o_step = outer.indices(n)
        if isinstance(inner, slice):
            m = len(range(o_start, o_stop, o_step))
            i_start, i_stop, i_step = inner.indices(m)
            length = len(range(i_start, i_stop, i_step))
            start = o_start + i_start * o_step
            step = o_step * i_step
            return slice(start, start + length * step if length else start, step)
        return (o_start + np.asarray(inner, dtype=np.int64) * o_step).astype(np.int64)
    return np.asarray(outer, dtype=np.int64)[inner]


# ------------------------------------------------------------------------------ subset_array


def _both_arrays(rows: Indexer, cols: Indexer) -> bool:
    return isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray)


@singledispatch
def subset_array(x: Any, rows: Indexer, cols: Indexer) -> Any:
    """``x[rows, cols]`` as an outer (orthogonal) selection, for any array type.

    ``rows``/``cols`` are normalised indexers (see :mod:`annscale.core.index`); ``cols`` is
    ``slice(None)`` for values aligned to one axis only. Deferred values without their own
    registration are materialised (see :func:`annscale.core.deferred.materialize`) first.
    """
    from .deferred import is_deferred, materialize

    if is_deferred(x):
        return subset_array(materialize(x), rows, cols)
    if type(x).__module__.startswith("awkward"):  # obsm/varm only: first axis
        return x[rows]
    if _both_arrays(rows, cols):
        return x[np.ix_(rows, cols)]
    return x[rows, cols] if getattr(x, "ndim", 2) > 1 else x[rows]


@subset_array.register(np.ndarray)
def _subset_numpy(x: np.ndarray, rows: Indexer, cols: Indexer) -> np.ndarray:
    if x.ndim == 1:
        return x[rows]
    if _both_arrays(rows, cols):
        return x[np.ix_(rows, cols)]
    return x[rows, cols]


def _subset_sparse(x: Any, rows: Indexer, cols: Indexer) -> Any:
    fmt = x.format
    full_r, full_c = is_full(rows, x.shape[0]), is_full(cols, x.shape[1])
    if isinstance(rows, slice) and isinstance(cols, slice):
        out = x[rows, cols]
    elif fmt == "csc":  # columns first: cheap on csc
        out = x if full_c else x[:, cols]
        out = out if full_r else out[rows, :]
    else:
        out = x if full_r else x[rows, :]
        out = out if full_c else out[:, cols]
    if out is x:
        out = x[:, :]
    if out.format != fmt:
        out = out.asformat(fmt)
    if type(out) is not type(x):
        out = type(x)(out)
    return out


for _cls in (sparse.csr_matrix, sparse.csc_matrix, sparse.csr_array, sparse.csc_array):
    subset_array.register(_cls)(_subset_sparse)


@subset_array.register(pd.DataFrame)
def _subset_df(x: pd.DataFrame, rows: Indexer, cols: Indexer) -> pd.DataFrame:
    if is_full(cols, x.shape[1]):
        return x.iloc[rows]
    return x.iloc[rows, cols]


def _register_dask() -> None:
    import dask.array as da

    @subset_array.register(da.Array)
    def _subset_dask(x: da.Array, rows: Indexer, cols: Indexer) -> da.Array:
        if x.ndim == 1:
            return x[rows]
        full_r, full_c = is_full(rows, x.shape[0]), is_full(cols, x.shape[1])
        if not _both_arrays(rows, cols):
            if full_r and full_c:
                return x
            return x[rows, cols]
        if sparse.issparse(x._meta) and getattr(x._meta, "format", None) == "csc":
            return x[:, cols][rows, :]
        return x[rows, :][:, cols]


_register_dask()
