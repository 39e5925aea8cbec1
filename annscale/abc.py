"""Abstract types of on-disk sparse matrices, as :mod:`anndata.abc`.

:func:`annscale.io.sparse_dataset` returns a :class:`CSRDataset` or :class:`CSCDataset`:
a ``csr_matrix``/``csc_matrix`` group read on demand (indexing reads only the rows or
columns asked for; :meth:`~CSRDataset.to_memory` reads everything).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Literal

import numpy as np

__all__ = ["CSRDataset", "CSCDataset"]


class _AbstractCSDataset(ABC):
    """A compressed sparse matrix stored in an HDF5 file or a zarr store."""

    format: ClassVar[Literal["csr", "csc"]]
    """``"csr"`` or ``"csc"``."""

    shape: tuple[int, int]
    """``(n_rows, n_cols)``."""

    dtype: np.dtype
    """The dtype of the stored ``data``."""

    backend: Literal["zarr", "hdf5"]
    """The kind of storage."""

    @abstractmethod
    def __getitem__(self, index: Any) -> Any:
        """Read a selection into memory (a scipy sparse matrix, or a scalar)."""

    @abstractmethod
    def to_memory(self) -> Any:
        """Read the whole matrix into memory (a scipy sparse matrix)."""


class CSRDataset(_AbstractCSDataset):
    """A stored CSR matrix (rows are cheap to read)."""

    format = "csr"


class CSCDataset(_AbstractCSDataset):
    """A stored CSC matrix (columns are cheap to read)."""

    format = "csc"
