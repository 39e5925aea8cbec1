"""``AnnData.concatenate``: anndata's deprecated method, kept for old code.

It is :func:`annscale.concat` along obs with the old method's conventions, which differ from
``concat``'s defaults:

* ``obs`` is always an outer join of the inputs' columns (``join`` only applies to variables);
* the batch column ``batch_key`` is added, with ``batch_categories`` (default ``"0"``,
  ``"1"``, ...) and names made unique with ``index_unique`` (default ``"-"``);
* ``var`` keeps the columns equal in every input; a column that differs (or exists in some
  inputs only) is kept once per input as ``f"{column}-{batch}"``, ordered by batch;
* ``obsm`` is concatenated, ``varm`` dropped, ``uns`` merged with ``uns_merge``.

Calling it emits anndata's ``FutureWarning``. Unlike anndata, lazy objects (``read_lazy``,
``read_h5ad(backed="r")``) are accepted: their ``X``/layers are concatenated lazily.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from .anndata import AnnData

__all__ = ["concatenate"]

DEPRECATION = (
    "The method concatenate is deprecated and will be removed in the future. "
    "Use anndata.concat instead of AnnData.concatenate. See the tutorial for concat at: "
    "https://anndata.readthedocs.io/en/latest/concatenation.html"
)


def concatenate(
    adata: AnnData,
    adatas: Sequence[Any],
    *,
    join: str = "inner",
    batch_key: str = "batch",
    batch_categories: Sequence[Any] | None = None,
    uns_merge: str | None = None,
    index_unique: str | None = "-",
    fill_value: Any = None,
) -> AnnData:
    """``adata.concatenate(*adatas, ...)``; see the module docstring."""
    from ..combine.api import concat
    from .anndata import AnnData

    warnings.warn(DEPRECATION, FutureWarning, stacklevel=3)
    if len(adatas) == 0:
        return adata.copy()
    if len(adatas) == 1 and not isinstance(adatas[0], AnnData):
        adatas = list(adatas[0])  # old calling convention: one list of objects
    inputs = [adata, *adatas]
    labels = dict(label=batch_key, keys=batch_categories, index_unique=index_unique)
    out = concat(inputs, axis=0, join=join, uns_merge=uns_merge, fill_value=fill_value, **labels)
    # obs is an outer join whatever ``join`` is: concatenate obs-only stand-ins
    standins = [AnnData(sparse.csr_matrix(a.shape), obs=a.obs) for a in inputs]
    out.obs = concat(standins, axis=0, join="outer", **labels).obs
    del out.varm
    if batch_categories is None:
        batch_categories = np.arange(len(inputs)).astype(str)
    out.var = _merge_var([a.var for a in inputs], out.var_names, list(batch_categories))
    return out


def _merge_var(frames: list[pd.DataFrame], names: pd.Index, batches: list[Any]) -> pd.DataFrame:
    """Columns equal in every frame once; the others once per batch as ``col-batch``."""
    from ..combine.merge import merge_same

    frames = [df.reindex(index=names) for df in frames]
    columns = [{c: df[c] for c in df.columns} for df in frames]
    merged = merge_same(columns)
    for col in dict.fromkeys(c for cols in columns for c in cols):
        if col in merged:
            continue
        for batch, cols in zip(batches, columns, strict=True):
            if col in cols:
                merged[f"{col}-{batch}"] = cols[col]
    out = pd.DataFrame(merged, index=names)
    if out.columns.empty:
        return out
    # unsuffixed columns first, then the per-batch columns grouped by batch (stable)
    pattern = rf"-({'|'.join(re.escape(str(b)) for b in batches)})$"
    suffix = out.columns.str.extract(pattern, expand=False).fillna("")
    return out.iloc[:, np.argsort(suffix.to_numpy(), kind="stable")]
