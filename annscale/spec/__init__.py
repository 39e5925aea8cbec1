"""The anndata on-disk format: the registry and one module per family of encodings.

Importing this package registers every reader and writer:
``arrays`` (array, string-array, rec-array, scalars, null), ``sparse`` (csr/csc),
``frames`` (dataframe, categorical, nullable arrays), ``containers`` (dict, anndata, raw),
``awkward`` (awkward-array) and ``legacy`` (old layouts, upgraded on read).
"""

from . import arrays, awkward, containers, frames, legacy, sparse  # noqa: F401  (registration)
from .registry import IOSpec, ReadContext, WriteContext, read_elem, write_elem

__all__ = ["IOSpec", "ReadContext", "WriteContext", "read_elem", "write_elem"]
