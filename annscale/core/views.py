"""Copy-on-write wrappers for values read from a view of an AnnData.

A view's ``obs``/``var`` (:class:`DataFrameView`), ``uns`` (:class:`DictView`), numpy values
(:class:`ArrayView`) and scipy sparse values (``Sparse*View``) remember where they came from
(an :class:`ElementRef`: the view object, the element name and the keys inside it). Modifying
one — ``view.obs["x"] = …``, ``view.X[0, 0] = …``, ``view.uns["a"]["b"] = …`` — first turns the
view into an independent actual object (with an :class:`~annscale.ImplicitModificationWarning`)
and then applies the change there; the parent object is never written to.

The owner's side of the protocol is ``owner._update_element(ref, action)`` (see
:class:`annscale.core.anndata.AnnData`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from functools import singledispatch
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import sparse

__all__ = [
    "ElementRef",
    "ArrayView",
    "DataFrameView",
    "DictView",
    "as_view",
    "SparseCSRMatrixView",
    "SparseCSCMatrixView",
    "SparseCSRArrayView",
    "SparseCSCArrayView",
]


class ElementRef(NamedTuple):
    """Where a view value lives: ``getattr(owner, attrname)[keys[0]][keys[1]]…``."""

    owner: Any
    attrname: str
    keys: tuple[Any, ...] = ()

    def update(self, action: Callable[[Any], Any]) -> Any:
        """Actualise the owner if it is a view, then apply ``action`` to the element."""
        return self.owner._update_element(self, action)

    def child(self, key: Any) -> ElementRef:
        return ElementRef(self.owner, self.attrname, (*self.keys, key))


def _live(ref: ElementRef | None) -> bool:
    return ref is not None


# ------------------------------------------------------------------------------ numpy


class ArrayView(np.ndarray):
    """A numpy array read from a view; writes go to an actualised copy of the owner."""

    _view_ref: ElementRef | None

    def __new__(cls, array: Any, ref: ElementRef | None = None) -> ArrayView:
        arr = np.asanyarray(array).view(cls)
        arr._view_ref = ref
        return arr

    def __array_finalize__(self, obj: Any) -> None:
        self._view_ref = getattr(obj, "_view_ref", None)

    def __setitem__(self, idx: Any, value: Any) -> None:
        ref = self._view_ref
        if not _live(ref):
            super().__setitem__(idx, value)
            return
        ref.update(lambda target: target.__setitem__(idx, value))

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, out: Any = None, **kw: Any):
        inputs = tuple(i.view(np.ndarray) if isinstance(i, ArrayView) else i for i in inputs)
        if out is not None:
            if any(isinstance(o, ArrayView) and _live(o._view_ref) for o in out):
                # in-place on a view (``view.X += 1``): compute a new array instead, the
                # setter that follows (``view.X = result``) actualises the owner
                out = None
            else:
                out = tuple(o.view(np.ndarray) if isinstance(o, ArrayView) else o for o in out)
        if out is None:
            return getattr(ufunc, method)(*inputs, **kw)
        return getattr(ufunc, method)(*inputs, out=out, **kw)

    def __reduce__(self):
        return np.asarray(self).__reduce__()

    def __deepcopy__(self, memo: dict) -> np.ndarray:
        return np.array(self)

    def copy(self, order: str = "C") -> np.ndarray:
        return np.array(self, order=order)

    def toarray(self) -> np.ndarray:
        return self.copy()

    def keys(self) -> Any:  # structured arrays
        return self.dtype.names


# ------------------------------------------------------------------------------ scipy


class _SparseViewMixin:
    _view_ref: ElementRef | None = None
    _plain: type

    def __setitem__(self, idx: Any, value: Any) -> None:
        ref = self._view_ref
        if not _live(ref):
            super().__setitem__(idx, value)
            return
        ref.update(lambda target: target.__setitem__(idx, value))

    def copy(self) -> Any:
        parts = (self.data.copy(), self.indices.copy(), self.indptr.copy())
        return self._plain(parts, shape=self.shape)

    def __reduce__(self):
        return self.copy().__reduce__()


class SparseCSRMatrixView(_SparseViewMixin, sparse.csr_matrix):
    _plain = sparse.csr_matrix


class SparseCSCMatrixView(_SparseViewMixin, sparse.csc_matrix):
    _plain = sparse.csc_matrix


class SparseCSRArrayView(_SparseViewMixin, sparse.csr_array):
    _plain = sparse.csr_array


class SparseCSCArrayView(_SparseViewMixin, sparse.csc_array):
    _plain = sparse.csc_array


# ------------------------------------------------------------------------------ pandas


class _LocView:
    """``view.obs.loc``/``.iloc``: reads as usual, assignments actualise the owner."""

    def __init__(self, df: DataFrameView, name: str):
        self._df, self._name = df, name

    def __getitem__(self, key: Any) -> Any:
        return getattr(pd.DataFrame(self._df), self._name)[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        name = self._name
        self._df._view_ref.update(lambda target: getattr(target, name).__setitem__(key, value))


_INPLACE_METHODS = (
    "drop",
    "rename",
    "fillna",
    "replace",
    "set_index",
    "reset_index",
    "sort_values",
    "sort_index",
    "where",
    "mask",
    "clip",
    "interpolate",
    "dropna",
    "drop_duplicates",
    "rename_axis",
    "astype",
)


class DataFrameView(pd.DataFrame):
    """An obs/var frame read from a view; modifying it actualises the owner first."""

    _metadata = ["_view_ref"]
    _view_ref: ElementRef | None

    def __init__(self, *args: Any, view_ref: ElementRef | None = None, **kw: Any):
        super().__init__(*args, **kw)
        object.__setattr__(self, "_view_ref", view_ref)

    @property
    def _constructor(self):  # results of operations are ordinary frames
        return pd.DataFrame

    def _modify(self, action: Callable[[pd.DataFrame], Any]) -> Any:
        return self._view_ref.update(action)

    def __setitem__(self, key: Any, value: Any) -> None:
        if self._view_ref is None:
            super().__setitem__(key, value)
        else:
            self._modify(lambda df: df.__setitem__(key, value))

    def __delitem__(self, key: Any) -> None:
        if self._view_ref is None:
            super().__delitem__(key)
        else:
            self._modify(lambda df: df.__delitem__(key))

    def __setattr__(self, key: str, value: Any) -> None:
        if key in ("index", "columns") and getattr(self, "_view_ref", None) is not None:
            self._modify(lambda df: setattr(df, key, value))
        else:
            super().__setattr__(key, value)

    def insert(self, *args: Any, **kw: Any) -> None:
        self._modify(lambda df: df.insert(*args, **kw))

    def pop(self, item: Any) -> pd.Series:
        return self._modify(lambda df: df.pop(item))

    def update(self, *args: Any, **kw: Any) -> None:
        self._modify(lambda df: df.update(*args, **kw))

    @property
    def loc(self) -> Any:
        return _LocView(self, "loc")

    @property
    def iloc(self) -> Any:
        return _LocView(self, "iloc")

    @property
    def at(self) -> Any:
        return _LocView(self, "at")

    @property
    def iat(self) -> Any:
        return _LocView(self, "iat")

    def __deepcopy__(self, memo: dict) -> pd.DataFrame:
        return pd.DataFrame(self).copy(deep=True)

    def __reduce__(self):
        return pd.DataFrame(self).__reduce__()


def _inplace_wrapper(name: str) -> Callable:
    base = getattr(pd.DataFrame, name)

    def method(self: DataFrameView, *args: Any, **kw: Any) -> Any:
        if kw.get("inplace") and self._view_ref is not None:
            return self._modify(lambda df: getattr(df, name)(*args, **kw))
        return base(pd.DataFrame(self), *args, **kw)

    method.__name__ = name
    method.__doc__ = base.__doc__
    return method


for _name in _INPLACE_METHODS:
    if hasattr(pd.DataFrame, _name):
        setattr(DataFrameView, _name, _inplace_wrapper(_name))


# ------------------------------------------------------------------------------ dict


class DictView(dict):
    """``uns`` (or a dict nested in it) of a view: reads are shared, writes copy the owner."""

    _view_ref: ElementRef

    def __init__(self, data: Any, view_ref: ElementRef):
        super().__init__(data)
        self._view_ref = view_ref

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, dict | np.ndarray) and not isinstance(value, DictView | ArrayView):
            return as_view(value, self._view_ref.child(key))
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def _modify(self, action: Callable[[dict], Any]) -> Any:
        return self._view_ref.update(action)

    def __setitem__(self, key: Any, value: Any) -> None:
        self._modify(lambda d: d.__setitem__(key, value))

    def __delitem__(self, key: Any) -> None:
        if key not in self:
            raise KeyError(key)
        self._modify(lambda d: d.__delitem__(key))

    def pop(self, *args: Any) -> Any:
        return self._modify(lambda d: d.pop(*args))

    def popitem(self) -> Any:
        return self._modify(lambda d: d.popitem())

    def update(self, *args: Any, **kw: Any) -> None:
        self._modify(lambda d: d.update(*args, **kw))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key in self:
            return self[key]
        return self._modify(lambda d: d.setdefault(key, default))

    def clear(self) -> None:
        self._modify(lambda d: d.clear())

    def __ior__(self, other: Any) -> Any:
        self.update(other)
        return self

    def copy(self) -> dict:
        return dict(self)

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return copy.deepcopy(dict(self), memo)

    def __reduce__(self):
        return (dict, (dict(self),))


# ------------------------------------------------------------------------------ dispatch


@singledispatch
def as_view(value: Any, ref: ElementRef) -> Any:
    """Wrap ``value`` read from a view so that modifying it actualises ``ref.owner``.

    Types without a wrapper (dask arrays, deferred values, awkward arrays) are returned as
    they are: they are immutable or own their memory.
    """
    return value


@as_view.register(np.ndarray)
def _(value: np.ndarray, ref: ElementRef) -> ArrayView:
    return ArrayView(value, ref)


@as_view.register(pd.DataFrame)
def _(value: pd.DataFrame, ref: ElementRef) -> DataFrameView:
    return DataFrameView(value, view_ref=ref)


@as_view.register(dict)
def _(value: dict, ref: ElementRef) -> DictView:
    return DictView(value, ref)


def _sparse_view(cls: type) -> Callable:
    def wrap(value: Any, ref: ElementRef) -> Any:
        out = cls(value)
        out._view_ref = ref
        return out

    return wrap


for _plain, _view in (
    (sparse.csr_matrix, SparseCSRMatrixView),
    (sparse.csc_matrix, SparseCSCMatrixView),
    (sparse.csr_array, SparseCSRArrayView),
    (sparse.csc_array, SparseCSCArrayView),
):
    as_view.register(_plain)(_sparse_view(_view))
