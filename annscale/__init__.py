"""annscale: anndata's API and files as an out-of-core, distributed engine built on dask.

``import annscale as ad`` is a drop-in for ``import anndata as ad``. Public names are
imported on first use, so ``import annscale`` stays fast (the command line starts quickly).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._settings import settings
from .errors import ImplicitModificationWarning, OldFormatWarning

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS: dict[str, str] = {
    "AnnData": "annscale.core.anndata",
    "Raw": "annscale.core.raw",
    "read_h5ad": "annscale.io.h5ad",
    "write_h5ad": "annscale.io.h5ad",
    "read_zarr": "annscale.io.zarr",
    "write_zarr": "annscale.io.zarr",
    "read_elem": "annscale.io.elem",
    "write_elem": "annscale.io.elem",
    "read_lazy": "annscale.lazy.open",
    "concat": "annscale.combine.api",
    "concat_on_disk": "annscale.combine.on_disk",
    "read_collection": "annscale.combine.collection",
    "read_10x_h5": "annscale.genomics.tenx",
    "read_10x_mtx": "annscale.genomics.tenx",
    "read_loom": "annscale.genomics.loom",
    "write_loom": "annscale.genomics.loom",
    "read_mtx": "annscale.genomics.text",
    "read_csv": "annscale.genomics.text",
    "read_text": "annscale.genomics.text",
    "read_excel": "annscale.genomics.text",
    "read_umi_tools": "annscale.genomics.text",
    "write_csvs": "annscale.genomics.text",
    "read_hdf": "annscale.genomics.hdf",
    "register_anndata_namespace": "annscale.core.extensions",
    "from_anndata": "annscale.bridge",
    "WriteWarning": "annscale.errors",
    "ExperimentalFeatureWarning": "annscale.errors",
    "loader": "annscale.minibatch.loader",
}
_SUBMODULES = {
    "errors",
    "io",
    "lazy",
    "spec",
    "storage",
    "core",
    "genomics",
    "combine",
    "writeout",
    "scheduler",
    "progress",
}
_SUBMODULES |= {"experimental", "abc", "typing", "types", "bridge"}

__all__ = [
    "settings",
    "ImplicitModificationWarning",
    "OldFormatWarning",
    *_EXPORTS,
]


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is not None:
        value = getattr(importlib.import_module(mod), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f"annscale.{name}")
    raise AttributeError(f"module 'annscale' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*__all__, *_SUBMODULES])


if TYPE_CHECKING:  # pragma: no cover
    from .core.anndata import AnnData as AnnData
    from .core.raw import Raw as Raw
    from .io.h5ad import read_h5ad as read_h5ad
    from .io.h5ad import write_h5ad as write_h5ad
    from .io.zarr import read_zarr as read_zarr
    from .io.zarr import write_zarr as write_zarr
    from .lazy.open import read_lazy as read_lazy
