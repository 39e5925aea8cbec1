"""The parts of :mod:`anndata.experimental` that annscale provides.

==========================  ===========================================================
``read_lazy``               :func:`annscale.read_lazy` (X, layers, ... as dask arrays)
``read_elem_lazy``          one stored element as a dask array (sparse or dense arrays;
                            other elements are read into memory)
``concat_on_disk``          :func:`annscale.concat_on_disk`
``read_dispatched``         reading with a callback per element
``write_dispatched``        writing with a callback per element
``IOSpec``                  an element's encoding type and version
``Read``, ``Write``,        the callback protocols (:mod:`annscale.typing`)
``ReadCallback``,
``WriteCallback``,
``StorageType``
==========================  ===========================================================

``read_elem``, ``write_elem``, ``sparse_dataset``, ``CSRDataset``, ``CSCDataset``, ``RWAble``
and ``InMemoryElem`` still resolve here with anndata's ``FutureWarning`` (they moved to
:mod:`annscale.io`, :mod:`annscale.abc` and :mod:`annscale.typing`).

Not provided: ``AnnCollection`` (use :func:`annscale.read_collection`, which concatenates
lazily without loading), ``AnnLoader`` (a PyTorch data loader over ``AnnCollection``; annscale
does not depend on torch) and ``Dataset2DIlocIndexer`` (the indexer of anndata's
xarray-backed lazy data frames; annscale's lazy ``obs``/``var`` are pandas data frames).
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

_EXPORTS: dict[str, str] = {
    "read_lazy": "annscale.lazy.open",
    "concat_on_disk": "annscale.combine.on_disk",
    "read_elem_lazy": "annscale.io.dispatch",
    "read_dispatched": "annscale.io.dispatch",
    "write_dispatched": "annscale.io.dispatch",
    "IOSpec": "annscale.spec.registry",
    "Read": "annscale.typing",
    "Write": "annscale.typing",
    "ReadCallback": "annscale.typing",
    "WriteCallback": "annscale.typing",
    "StorageType": "annscale.typing",
}

__all__ = sorted(_EXPORTS)

# name -> its public home, for names anndata deprecated in ``experimental``
_MOVED: dict[str, str] = {
    "read_elem": "io.read_elem",
    "write_elem": "io.write_elem",
    "sparse_dataset": "io.sparse_dataset",
    "CSRDataset": "abc.CSRDataset",
    "CSCDataset": "abc.CSCDataset",
    "RWAble": "typing.AxisStorable",
    "InMemoryElem": "typing.RWAble",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    if name in _MOVED:
        module, attr = _MOVED[name].rsplit(".", 1)
        warnings.warn(
            f"Importing {name} from `annscale.experimental` is deprecated. "
            f"Import annscale.{_MOVED[name]} instead.",
            FutureWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(f"annscale.{module}"), attr)
    raise AttributeError(f"module 'annscale.experimental' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
