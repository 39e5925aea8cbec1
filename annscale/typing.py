"""Type aliases and callback protocols of the public API, as :mod:`anndata.typing`.

``Index`` is what ``adata[...]`` accepts; ``AxisStorable`` what an aligned mapping or ``uns``
can hold; ``RWAble`` what :func:`annscale.io.write_elem` writes and
:func:`annscale.io.read_elem` returns. ``StorageType`` is a stored element (``h5py`` or
``zarr`` group or array), and ``Read``/``Write``/``ReadCallback``/``WriteCallback`` are the
signatures of :func:`annscale.experimental.read_dispatched` /
:func:`~annscale.experimental.write_dispatched` and their callbacks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import EllipsisType
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import h5py
import numpy as np
import pandas as pd
import zarr
from scipy import sparse

if TYPE_CHECKING:
    from .spec.registry import IOSpec

__all__ = [
    "Index",
    "AxisStorable",
    "RWAble",
    "StorageType",
    "Read",
    "Write",
    "ReadCallback",
    "WriteCallback",
]

_Index1D: TypeAlias = (
    int
    | str
    | np.integer
    | slice
    | np.ndarray
    | Sequence[int]
    | Sequence[str]
    | Sequence[bool]
    | pd.Series
    | pd.Index
    | pd.api.extensions.ExtensionArray
    | np.matrix
    | sparse.csr_matrix
    | sparse.csc_matrix
    | sparse.csr_array
    | sparse.csc_array
    | EllipsisType
)
Index: TypeAlias = _Index1D | tuple[_Index1D, _Index1D] | tuple[_Index1D, _Index1D, _Index1D]

AxisStorable: TypeAlias = (
    pd.DataFrame
    | np.number
    | str
    | np.ndarray
    | np.ma.MaskedArray
    | sparse.csr_matrix
    | sparse.csc_matrix
    | sparse.csr_array
    | sparse.csc_array
    | h5py.Dataset
    | zarr.Array
    | Any  # dask arrays, awkward arrays and stored sparse datasets
    | dict[str, "AxisStorable"]
    | list["AxisStorable"]
)
RWAble: TypeAlias = AxisStorable | pd.Categorical | pd.api.extensions.ExtensionArray

StorageType: TypeAlias = zarr.Array | h5py.Dataset | zarr.Group | h5py.Group


class Read(Protocol):
    def __call__(self, elem: StorageType, /) -> RWAble:
        """Read ``elem`` (and its children, through the callback) into memory."""


class Write(Protocol):
    def __call__(
        self, f: StorageType, k: str, v: RWAble, /, *, dataset_kwargs: Mapping[str, Any]
    ) -> None:
        """Write ``v`` as ``f[k]`` (its children go through the callback)."""


class ReadCallback(Protocol):
    def __call__(
        self, /, read_func: Read, elem_name: str, elem: StorageType, *, iospec: IOSpec
    ) -> RWAble:
        """Called for every element; ``read_func(elem)`` reads it the default way."""


class WriteCallback(Protocol):
    def __call__(
        self,
        /,
        write_func: Write,
        store: StorageType,
        elem_name: str,
        elem: RWAble,
        *,
        iospec: IOSpec,
        dataset_kwargs: Mapping[str, Any],
    ) -> None:
        """Called for every element; ``write_func(store, elem_name, elem, dataset_kwargs=...)``
        writes it the default way."""
