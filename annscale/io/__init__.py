"""Reading and writing: ``.h5ad`` and zarr stores, elements, and other formats.

Mirrors :mod:`anndata.io`: the same names, imported on first use (the genomics readers
live in :mod:`annscale.genomics`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "read_elem": "annscale.io.elem",
    "write_elem": "annscale.io.elem",
    "read_h5ad": "annscale.io.h5ad",
    "write_h5ad": "annscale.io.h5ad",
    "read_zarr": "annscale.io.zarr",
    "write_zarr": "annscale.io.zarr",
    "sparse_dataset": "annscale.io.sparse_dataset",
    "read_csv": "annscale.genomics.text",
    "read_text": "annscale.genomics.text",
    "read_excel": "annscale.genomics.text",
    "read_mtx": "annscale.genomics.text",
    "read_umi_tools": "annscale.genomics.text",
    "write_csvs": "annscale.genomics.text",
    "read_hdf": "annscale.genomics.hdf",
    "read_loom": "annscale.genomics.loom",
    "write_loom": "annscale.genomics.loom",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'annscale.io' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
