"""The bridge to the scverse ecosystem: ``anndata.AnnData`` objects in and out.

:meth:`annscale.AnnData.to_anndata` (:func:`to_anndata`) gives an ``anndata.AnnData`` that
scanpy, squidpy, scvi-tools, ... accept; :func:`from_anndata` goes the other way. Both share the
arrays (no copies); obs/var are new frames over the same columns and ``uns`` a new dict,
so adding columns or keys to one object does not change the other, but modifying an
array in place (``X *= 2``) does.

``anndata`` is optional: it is imported when one of these functions is called.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pandas as pd

from .core.arrays import is_dask
from .core.deferred import is_deferred, materialize
from .scheduler import compute_one

if TYPE_CHECKING:
    import anndata

    from .core.anndata import AnnData

__all__ = ["to_anndata", "from_anndata"]

_MAPPINGS = ("layers", "obsm", "varm", "obsp", "varp")


def _import_anndata() -> Any:
    try:
        import anndata
    except ImportError as e:  # pragma: no cover - anndata is a test dependency
        raise ImportError(
            "converting to or from anndata.AnnData needs the `anndata` package "
            "(pip install anndata)"
        ) from e
    return anndata


def _lazy(x: Any) -> Any:
    """Deferred values as dask arrays (nothing computed); everything else as is."""
    return materialize(x) if is_deferred(x) else x


def to_anndata(adata: AnnData, *, keep_lazy: bool = False) -> anndata.AnnData:
    """An ``anndata.AnnData`` with the same elements as ``adata``.

    With ``keep_lazy=False`` (default) every lazy element (dask array, or an element of a
    ``read_lazy`` object not loaded yet) is computed, in one ``dask.compute``; with
    ``keep_lazy=True`` they stay dask arrays (anndata supports dask ``X``/layers/obsm).
    A view gives an actual object holding the view's subset.
    """
    ad = _import_anndata()
    if keep_lazy:
        src = adata.copy() if adata.is_view else adata
        X = _lazy(src.X)
        mappings = {a: {k: _lazy(v) for k, v in getattr(src, a).items()} for a in _MAPPINGS}
        raw = src.raw
        raw_parts = None
        if raw is not None:
            raw_parts = {
                "X": _lazy(raw.X),
                "var": pd.DataFrame(raw.var),
                "varm": {k: _lazy(v) for k, v in raw.varm.items()},
            }
    else:
        src = adata.to_memory()
        X = src.X
        mappings = {a: dict(getattr(src, a).items()) for a in _MAPPINGS}
        raw = src.raw
        raw_parts = None
        if raw is not None:
            raw_parts = {"X": raw.X, "var": pd.DataFrame(raw.var), "varm": dict(raw.varm.items())}
    out = ad.AnnData(
        X=X,
        obs=pd.DataFrame(src.obs).copy(deep=False),
        var=pd.DataFrame(src.var).copy(deep=False),
        uns=dict(src.uns),
        shape=None if X is not None else src.shape,
        **mappings,
    )
    if raw_parts is not None:
        out.raw = ad.AnnData(
            X=raw_parts["X"],
            obs=pd.DataFrame(index=out.obs_names),
            var=raw_parts["var"],
            varm=raw_parts["varm"],
        )
    return out


def from_anndata(obj: anndata.AnnData) -> AnnData:
    """An :class:`annscale.AnnData` with the same elements as the ``anndata.AnnData`` ``obj``.

    A view is copied first (as anndata's ``.copy()``). For an object opened with
    ``anndata.read_h5ad(..., backed="r")``, ``X`` becomes a lazy dask array over the file
    (read on demand, like annscale's own backed mode) instead of being loaded. Objects of
    ``anndata.experimental.read_lazy`` keep their dask arrays; their obs/var (xarray-backed)
    are loaded as pandas frames.
    """
    from .core.anndata import AnnData

    ad = _import_anndata()
    if not isinstance(obj, ad.AnnData):
        raise TypeError(f"from_anndata needs an anndata.AnnData, got {type(obj).__name__}")
    if obj.is_view:
        obj = obj.copy() if not obj.isbacked else obj.to_memory()
    X = _backed_X(obj) if obj.isbacked else obj.X
    raw = None
    if obj.raw is not None:
        raw = {
            "X": obj.raw.X,
            "var": _frame(obj.raw.var),
            "varm": {k: _frame(v) for k, v in obj.raw.varm.items()},
        }
    return AnnData._from_parts(
        X=X,
        obs=_frame(obj.obs),
        var=_frame(obj.var),
        uns=_uns(obj.uns),
        raw=raw,
        **{a: {k: _frame(v) for k, v in getattr(obj, a).items()} for a in _MAPPINGS},
    )


def _uns(value: Any) -> Any:
    """``uns`` in memory, as annscale holds it: lazy frames and dask arrays that anndata's
    ``read_lazy`` leaves in ``uns`` are loaded (a new dict at every level)."""
    value = _frame(value)
    if isinstance(value, Mapping):  # after _frame: xarray-backed frames are mappings too
        return {k: _uns(v) for k, v in value.items()}
    return compute_one(value) if is_dask(value) else value


def _frame(x: Any) -> Any:
    """A new pandas frame over the same columns; anndata's lazy (xarray-backed) frames of
    ``anndata.experimental.read_lazy`` objects are loaded (annscale's lazy frames are pandas)."""
    if isinstance(x, pd.DataFrame):
        return x.copy(deep=False)
    if type(x).__name__ == "Dataset2D" and hasattr(x, "to_memory"):
        return x.to_memory()
    return x


def _backed_X(obj: anndata.AnnData) -> Any:
    """``X`` of a backed anndata object as a lazy annscale array over the file."""
    from .lazy.open import lazy_element
    from .storage.cache import get_root
    from .storage.location import as_location

    loc = as_location(str(obj.filename))
    root = get_root(loc)
    return lazy_element(root["X"], loc) if "X" in root else None
