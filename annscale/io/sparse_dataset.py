"""``sparse_dataset``: a stored ``csr_matrix``/``csc_matrix`` group read on demand.

Like ``anndata.io.sparse_dataset``: indexing reads from storage only the ``indptr`` entries
and the ``data``/``indices`` ranges of the selected major-axis positions (rows of CSR,
columns of CSC), merged into contiguous runs; the other axis is then subset in memory. The
result is a ``scipy.sparse.csr_matrix``/``csc_matrix`` (a scalar for ``ds[i, j]``).
:meth:`append` adds rows (CSR) or columns (CSC) to a group opened for writing.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..abc import CSCDataset, CSRDataset
from ..core.index import normalize_axis_index, subset_array, unpack_index
from ..errors import FormatError
from ..spec.sparse import append_block, read_sparse_group, validate
from ..storage.elements import Array, Group
from .elem import as_element

__all__ = ["sparse_dataset"]


class _StoredSparse:
    """Shared implementation of :class:`CSRDataset` and :class:`CSCDataset`."""

    format: Literal["csr", "csc"]

    def __init__(self, group: Group, *, should_cache_indptr: bool = True) -> None:
        self.group = group
        self._cache_indptr = should_cache_indptr
        self._indptr: np.ndarray | None = None

    # ---------------------------------------------------------------- description

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_rows, n_cols)``, from the group's ``shape`` attribute."""
        attrs = self.group.attrs
        shape = attrs["shape"] if "shape" in attrs else attrs["h5sparse_shape"]
        return int(shape[0]), int(shape[1])

    @property
    def dtype(self) -> np.dtype:
        return self._child("data").dtype

    @property
    def backend(self) -> Literal["zarr", "hdf5"]:
        return self.group.backend  # type: ignore[return-value]

    @property
    def indptr(self) -> np.ndarray:
        """The whole ``indptr`` array (read once when ``should_cache_indptr``)."""
        if self._indptr is not None:
            return self._indptr
        indptr = np.asarray(self._child("indptr").read())
        if self._cache_indptr:
            self._indptr = indptr
        return indptr

    def __repr__(self) -> str:
        name = "CSRDataset" if self.format == "csr" else "CSCDataset"
        return f"{name}: backend {self.backend}, shape {self.shape}, data_dtype {self.dtype}"

    def _child(self, name: str) -> Array:
        return self.group.require(name, f"the {name!r} array of a sparse matrix")  # type: ignore[return-value]

    # ---------------------------------------------------------------- reading

    def to_memory(self) -> sp.csr_matrix | sp.csc_matrix:
        """The whole matrix (reads ``data``, ``indices`` and ``indptr``; validated)."""
        return read_sparse_group(self.group, self.format, self.shape)

    def __getitem__(self, index: Any) -> Any:
        rows, cols = unpack_index(index)
        scalar = _is_int(rows) and _is_int(cols)
        n_rows, n_cols = self.shape
        rows = normalize_axis_index(rows, pd.RangeIndex(n_rows), axis=0)
        cols = normalize_axis_index(cols, pd.RangeIndex(n_cols), axis=1)
        major, minor = (rows, cols) if self.format == "csr" else (cols, rows)
        block = self._read_major(major)
        out = subset_array(
            block, *((slice(None), minor) if self.format == "csr" else (minor, slice(None)))
        )
        return out.toarray()[0, 0] if scalar else out

    def _read_major(self, major: slice | np.ndarray) -> sp.csr_matrix | sp.csc_matrix:
        """The selected major-axis positions (in the requested order), all minor positions."""
        n_major = self.shape[0 if self.format == "csr" else 1]
        positions = np.arange(*major.indices(n_major)) if isinstance(major, slice) else major
        wanted, inverse = np.unique(positions, return_inverse=True)
        runs = np.split(wanted, np.flatnonzero(np.diff(wanted) != 1) + 1) if len(wanted) else []
        indptr = self.indptr
        data_parts, index_parts, counts = [], [], []
        data, indices = self._child("data"), self._child("indices")
        for run in runs:
            lo, hi = int(run[0]), int(run[-1]) + 1
            start, stop = int(indptr[lo]), int(indptr[hi])
            data_parts.append(np.asarray(data.read(slice(start, stop))))
            index_parts.append(np.asarray(indices.read(slice(start, stop))))
            counts.append(np.diff(indptr[lo : hi + 1]))
        new_indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts) if counts else [])])
        new_data = np.concatenate(data_parts) if data_parts else np.empty(0, self.dtype)
        new_indices = np.concatenate(index_parts) if index_parts else np.empty(0, np.int64)
        minor_len = self.shape[1 if self.format == "csr" else 0]
        shape = (len(wanted), minor_len) if self.format == "csr" else (minor_len, len(wanted))
        validate(new_data, new_indices, new_indptr.astype(np.int64), shape, self.format, self.group)
        cls = sp.csr_matrix if self.format == "csr" else sp.csc_matrix
        block = cls((new_data, new_indices, new_indptr), shape=shape)
        if len(wanted) == len(positions) and np.array_equal(wanted, positions):
            return block
        return block[inverse] if self.format == "csr" else block[:, inverse]

    # ---------------------------------------------------------------- writing

    def append(self, sparse_matrix: Any) -> None:
        """Append the rows (CSR) or columns (CSC) of an in-memory matrix of the same format.

        The group must be open for writing; the minor dimension must match.
        """
        if not sp.issparse(sparse_matrix) or sparse_matrix.format != self.format:
            raise NotImplementedError(
                f"The append method for format {self.format} is not implemented for "
                f"{type(sparse_matrix).__name__} of format "
                f"{getattr(sparse_matrix, 'format', None)!r}."
            )
        append_block(self.group, sparse_matrix)
        self._indptr = None


class _CSR(_StoredSparse, CSRDataset):
    pass


class _CSC(_StoredSparse, CSCDataset):
    pass


def _is_int(x: Any) -> bool:
    return isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_)


def sparse_dataset(group: Any, *, should_cache_indptr: bool = True) -> CSRDataset | CSCDataset:
    """A stored sparse matrix (an ``h5py``/``zarr`` group or an annscale group), read on demand.

    Nothing but the ``shape`` attribute is read until the object is indexed. Raises
    :class:`~annscale.errors.FormatError` if ``group`` is not a ``csr_matrix``/``csc_matrix``
    group (legacy ``h5sparse_format`` groups included).
    """
    g = as_element(group)
    attrs = g.attrs if isinstance(g, Group) else {}
    kind = attrs.get("encoding-type") or attrs.get("h5sparse_format")
    fmt = {"csr_matrix": "csr", "csc_matrix": "csc", "csr": "csr", "csc": "csc"}.get(kind)
    if fmt is None:
        raise FormatError(
            f"not a sparse matrix group (encoding-type {kind!r}); expected csr_matrix or "
            "csc_matrix",
            source=g.source,
            element=g.path,
        )
    if "shape" not in attrs and "h5sparse_shape" not in attrs:
        raise FormatError("sparse group has no 'shape' attribute", source=g.source, element=g.path)
    cls = _CSR if fmt == "csr" else _CSC
    return cls(g, should_cache_indptr=should_cache_indptr)
