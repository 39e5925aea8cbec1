"""``read_hdf``: one matrix stored as a dataset of a plain HDF5 file (``anndata.io.read_hdf``).

The dataset ``key`` becomes X; datasets named ``row_names`` / ``col_names`` at the file's
root, when present, become obs / var names (decoded to ``str``; anndata keeps stored bytes
as ``bytes`` names, which no AnnData writer accepts). The whole dataset is read.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import FormatError
from ..storage.location import Location
from ..storage.open import open_root
from ._names import str_index
from ._parts import Parts

if TYPE_CHECKING:
    from ..core.anndata import AnnData

__all__ = ["read_hdf"]


def _names(values: np.ndarray | None, n: int) -> pd.DataFrame:
    index = str_index(np.arange(n) if values is None else values)
    return pd.DataFrame(index=index)


def hdf_parts(filename: str | os.PathLike | Location, key: str) -> Parts:
    with open_root(filename, "r", kind="h5ad") as root:
        keys = root.keys()
        if key == "":
            raise ValueError(
                f"The file {root.source} stores the following sheets:\n{keys}\n"
                "Call read/read_hdf5 with one of them."
            )
        elem = root.require(key, "the dataset to read as X")
        if elem.is_group or elem.ndim != 2:
            raise FormatError("read_hdf needs a 2-d dataset", source=elem.source, element=elem.path)
        X = np.asarray(elem.read())
        rows = root["row_names"].read() if "row_names" in root else None
        cols = root["col_names"].read() if "col_names" in root else None
    return Parts(X=X, obs=_names(rows, X.shape[0]), var=_names(cols, X.shape[1]))


def read_hdf(filename: str | os.PathLike | Location, key: str) -> AnnData:
    """Read dataset ``key`` of an HDF5 file as X (see the module docstring)."""
    return hdf_parts(filename, key).to_anndata()
