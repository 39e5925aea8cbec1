"""Eager reading and writing of ``.h5ad`` and zarr stores, and element-level I/O."""

from .elem import read_elem, write_elem
from .h5ad import read_h5ad, write_h5ad
from .zarr import read_zarr, write_zarr

__all__ = ["read_elem", "write_elem", "read_h5ad", "write_h5ad", "read_zarr", "write_zarr"]
