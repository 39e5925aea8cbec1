# ruff: noqa: RUF001  (messages reproduce anndata's text, incl. its unicode signs)
"""Aligned mappings: ``layers``, ``obsm``, ``varm``, ``obsp``, ``varp`` (and ``raw.varm``).

Each mapping is an ephemeral wrapper created on attribute access around a plain ``dict``
owned by the AnnData (or Raw), so there is a single copy of the state:

* :class:`AlignedActual` validates shapes on set (:class:`~annscale.errors.ShapeMismatchError`
  naming the key, the mapping and the expected shape) and materialises deferred values on
  read (cached once per object, see :mod:`annscale.core.deferred`).
* :class:`AlignedView` serves ``parent_mapping[key]`` subset with
  :func:`~annscale.core.index.subset_array` (cached per view, wrapped copy-on-write by
  :func:`~annscale.core.views.as_view`); setting or deleting a key actualises the view.

``axes`` says which parent axes each value's leading dimensions follow: ``(0, 1)`` for
layers, ``(0,)``/``(1,)`` for obsm/varm, ``(0, 0)``/``(1, 1)`` for obsp/varp.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import ImplicitModificationWarning, ShapeMismatchError
from .arrays import copy_array, is_dask
from .deferred import MaterializedCache, is_deferred, materialize
from .index import Indexer, subset_array
from .views import ElementRef, as_view

__all__ = [
    "coerce_array",
    "AlignedActual",
    "AlignedView",
    "AXES",
    "as_store",
]

_DIMS = ("obs", "var")


def coerce_array(value: Any, *, name: str, allow_df: bool = False, allow_array_like: bool = False):
    """Check (and lightly convert) a value stored in X, layers or an aligned mapping.

    numpy arrays, csr/csc sparse matrices and arrays, dask arrays, deferred values, awkward
    arrays and other duck arrays (``shape``, ``dtype``, ``__getitem__``) are kept;
    ``np.matrix`` becomes ``ndarray`` with a warning; DataFrames are kept where allowed
    (obsm/varm) or converted to one homogeneous array; with ``allow_array_like`` lists and
    scalars are converted with :func:`numpy.array`.
    """
    if allow_array_like and np.isscalar(value):
        return value
    if isinstance(value, np.matrix):
        warnings.warn(
            f"{name} should not be a np.matrix, use np.ndarray instead.",
            ImplicitModificationWarning,
            stacklevel=3,
        )
        return np.asarray(value)
    if isinstance(value, np.ndarray) or is_deferred(value) or is_dask(value):
        return value
    if sparse.issparse(value):
        if value.format not in ("csr", "csc"):
            kind = "matrices" if isinstance(value, sparse.spmatrix) else "arrays"
            raise ValueError(f"Only CSR and CSC {kind} are supported.")
        return value
    if isinstance(value, pd.DataFrame):
        if isinstance(value.columns, pd.MultiIndex):
            raise ValueError(
                f"MultiIndex columns are not supported in AnnData. "
                f"Please use a single-level index for {name}."
            )
        if allow_df:
            return value
        return _df_to_array(value)
    if type(value).__module__.startswith("awkward"):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "__getitem__"):
        return value  # h5py/zarr datasets and other duck arrays
    if allow_array_like:
        try:
            return np.array(value)
        except (ValueError, TypeError) as e:
            raise ValueError(f"{name} could not be converted to an array: {e}") from e
    raise ValueError(
        f"{name} needs to be a numpy array, a scipy csr/csc sparse matrix or array, "
        f"a dask array{' or a pandas DataFrame' if allow_df else ''}, not {type(value)}."
    )


def _df_to_array(df: pd.DataFrame) -> Any:
    if len(df.columns) and all(isinstance(dt, pd.SparseDtype) for dt in df.dtypes):
        return df.sparse.to_coo().tocsr()
    if len(set(df.dtypes)) > 1:
        warnings.warn(f"DataFrame has heterogeneous dtypes; converting to {df.to_numpy().dtype}.")
    return df.to_numpy()


def axis_len(value: Any, axis: int) -> int | None:
    if type(value).__module__.startswith("awkward"):
        if axis == 0:
            return len(value)
        try:
            import awkward as ak

            return int(ak.num(value, axis=axis)[0]) if len(value) else 0
        except Exception:
            return None
    shape = value.shape
    return shape[axis] if axis < len(shape) else None


class _AlignedBase(MutableMapping):
    """Validation and repr shared by actual and view mappings."""

    attr: ClassVar[str] = ""  # "layers", "obsm", … (set by subclasses or instances)
    _allow_df: ClassVar[bool] = False

    def __init__(self, parent: Any, attrname: str, axes: tuple[int, ...]):
        self._parent = parent
        self.attrname = attrname
        self.axes = axes

    @property
    def parent(self) -> Any:
        return self._parent

    @property
    def is_view(self) -> bool:
        return False

    @property
    def dim_names(self) -> pd.Index:
        return (self._parent.obs_names, self._parent.var_names)[self.axes[0]]

    def _validate_value(self, value: Any, key: str) -> Any:
        allow_df = len(set(self.axes)) == 1 and len(self.axes) == 1
        if isinstance(value, np.ndarray) and value.ndim == 1:
            value = value.reshape((value.shape[0], 1))
        if allow_df and isinstance(value, pd.DataFrame):
            value = self._validate_df(value, key)
        name = f"{self.attrname.title().rstrip('s')} {key!r}"
        value = coerce_array(value, name=name, allow_df=allow_df)
        shape = self._parent.shape
        expected = tuple(shape[a] for a in self.axes)
        actual = tuple(axis_len(value, i) for i in range(len(self.axes)))
        if actual != expected:
            dims = tuple(_DIMS[a] for a in self.axes)
            raise ShapeMismatchError(
                f"Value passed for key {key!r} is of incorrect shape. Values of "
                f"{self.attrname} must match dimensions {dims} of parent. Value had shape "
                f"{actual} while it should have had {expected}.",
                element=f"/{self.attrname}/{key}",
            )
        return value

    def _validate_df(self, df: pd.DataFrame, key: str) -> pd.DataFrame:
        names = self.dim_names
        if not df.index.equals(names):
            try:
                pd.testing.assert_index_equal(df.index, names)
            except AssertionError as e:
                raise ValueError(
                    f"value.index does not match parent’s {_DIMS[self.axes[0]]} names:\n{e}"
                ) from None
        df.index.name = names.name
        return df

    def copy(self) -> dict[str, Any]:
        """A plain dict of independent copies of the values (lazy values are shared)."""
        return {k: copy_array(v) for k, v in self.items()}

    def to_df(self) -> pd.DataFrame:
        """obsm/varm as one DataFrame, columns ``{key}{i}`` (1-based)."""
        df = pd.DataFrame(index=self.dim_names)
        for key in self.keys():
            for i, column in enumerate(np.asarray(self[key]).T):
                df[f"{key}{i + 1}"] = column
        return df

    def as_dict(self) -> dict:
        return dict(self)

    def _ipython_key_completions_(self) -> list[str]:
        return list(self.keys())

    def __repr__(self) -> str:
        return f"{self._kind()} with keys: {', '.join(self.keys())}"

    def _kind(self) -> str:
        base = {"layers": "Layers"}.get(self.attrname)
        if base is None:
            base = "AxisArrays" if self.attrname.endswith("m") else "PairwiseArrays"
        return base + ("View" if self.is_view else "")


class AlignedActual(_AlignedBase):
    """An aligned mapping holding its own values in ``store`` (a dict of the parent)."""

    def __init__(
        self,
        parent: Any,
        attrname: str,
        axes: tuple[int, ...],
        store: dict[str, Any],
        cache: MaterializedCache | None = None,
    ):
        super().__init__(parent, attrname, axes)
        self._data = store
        self._cache = cache if cache is not None else MaterializedCache()

    def stored(self, key: str) -> Any:
        """The value as stored (deferred values not materialised)."""
        return self._data[key]

    def __getitem__(self, key: str) -> Any:
        return self._cache.get((self.attrname, key), self._data[key])

    def __setitem__(self, key: str, value: Any) -> None:
        self._data[key] = self._validate_value(value, key)
        self._cache.discard((self.attrname, key))

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._cache.discard((self.attrname, key))

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class AlignedView(_AlignedBase):
    """``parent_mapping`` seen through a view: values subset on read (cached per view)."""

    def __init__(
        self,
        view: Any,
        parent_mapping: AlignedActual,
        subset: tuple[Indexer, Indexer],
        cache: dict,
    ):
        super().__init__(view, parent_mapping.attrname, parent_mapping.axes)
        self.parent_mapping = parent_mapping
        self.subset_idx = subset
        self._view_cache = cache

    @property
    def is_view(self) -> bool:
        return True

    def __getitem__(self, key: str) -> Any:
        slot = (self.attrname, key)
        if slot in self._view_cache:
            return self._view_cache[slot]
        value = self.parent_mapping.stored(key)
        if is_deferred(value) and not has_subset_pushdown(value):
            value = self.parent_mapping[key]  # the parent's cached materialisation
        out = subset_array(value, *self.subset_idx)
        out = as_view(materialize(out), ElementRef(self._parent, self.attrname, (key,)))
        self._view_cache[slot] = out
        return out

    def __setitem__(self, key: str, value: Any) -> None:
        value = self._validate_value(value, key)  # before actualising
        warnings.warn(
            f"Setting element `.{self.attrname}['{key}']` of view, initializing view as actual.",
            ImplicitModificationWarning,
            stacklevel=2,
        )
        self._parent._actualize()
        getattr(self._parent, self.attrname)[key] = value

    def __delitem__(self, key: str) -> None:
        if key not in self:
            raise KeyError(f"{key!r} not found in view of {self.attrname}")
        warnings.warn(
            f"Removing element `.{self.attrname}['{key}']` of view, initializing view as actual.",
            ImplicitModificationWarning,
            stacklevel=2,
        )
        self._parent._actualize()
        del getattr(self._parent, self.attrname)[key]

    def __contains__(self, key: object) -> bool:
        return key in self.parent_mapping

    def __iter__(self) -> Iterator[str]:
        return iter(self.parent_mapping)

    def __len__(self) -> int:
        return len(self.parent_mapping)


def has_subset_pushdown(value: Any) -> bool:
    """Whether ``subset_array`` has a registration for ``type(value)`` (not the fallback)."""
    return subset_array.dispatch(type(value)) is not subset_array.dispatch(object)


#: parent axes followed by each aligned mapping's values
AXES: dict[str, tuple[int, ...]] = {
    "layers": (0, 1),
    "obsm": (0,),
    "varm": (1,),
    "obsp": (0, 0),
    "varp": (1, 1),
}


def as_store(value: Any, attrname: str) -> dict[str, Any]:
    """A new dict from a mapping, ``None`` or a structured array (anndata accepts those)."""
    if value is None:
        return {}
    if isinstance(value, _AlignedBase):
        return {k: value[k] if value.is_view else value.stored(k) for k in value}
    if isinstance(value, np.ndarray):
        if value.dtype.fields is None:
            raise TypeError(
                f"Can only convert np.ndarray with compound dtypes to dict, "
                f"passed array had “{value.dtype}”."
            )
        return {k: value[k] for k in value.dtype.fields}
    if isinstance(value, Mapping):
        return dict(value)
    return dict(value)
