# ruff: noqa: RUF001  (messages reproduce anndata's text, incl. its unicode signs)
"""``adata.raw``: a snapshot of ``X``, ``var`` and ``varm`` sharing the parent's observations.

``Raw`` follows its AnnData along the obs axis only: a view ``adata[rows, cols]`` has a raw
subset to ``rows`` with all raw variables. ``raw[:, names]`` selects raw variables.
``raw.X`` may be deferred (see :mod:`annscale.core.deferred`): it is materialised on first
read and cached.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import ShapeMismatchError
from .aligned import AlignedActual, as_store
from .arrays import copy_array
from .dataframes import gen_dataframe
from .deferred import MaterializedCache
from .index import Indexer, normalize_axis_index, subset_array, unpack_index

if TYPE_CHECKING:
    from .anndata import AnnData

__all__ = ["Raw"]


class Raw:
    """Raw data of an :class:`~annscale.AnnData`: ``X``, ``var`` and ``varm``.

    Parameters
    ----------
    adata
        The AnnData this belongs to (gives ``obs_names``/``n_obs``).
    X
        Matrix of shape ``(adata.n_obs, n_raw_vars)``; stored as given (no copy).
    var
        Annotation of the raw variables (DataFrame or mapping of columns).
    varm
        Mapping of arrays aligned to the raw variables.
    """

    is_view = False

    def __init__(
        self,
        adata: AnnData,
        X: Any = None,
        var: pd.DataFrame | dict | None = None,
        varm: Any = None,
    ):
        if X is None:  # anndata: Raw(adata) snapshots adata itself
            X, var, varm = copy_array(adata.X), adata.var.copy(), adata.varm.copy()
        if X.shape[0] != adata.n_obs:
            raise ShapeMismatchError(
                f"X has {X.shape[0]} rows, but n_obs is {adata.n_obs}", element="/raw/X"
            )
        self._adata = adata
        self._X = X
        self._var = gen_dataframe(var, "var", length=X.shape[1], source="X")
        self._cache = MaterializedCache()
        self._varm: dict[str, Any] = {}
        self.varm = varm

    @classmethod
    def _from_parts(cls, adata: AnnData, X: Any, var: pd.DataFrame, varm: dict) -> Raw:
        """A Raw from already validated parts (no checks, no copies)."""
        new = object.__new__(cls)
        new._adata, new._X, new._var, new._varm = adata, X, var, dict(varm)
        new._cache = MaterializedCache()
        return new

    # ------------------------------------------------------------------ elements

    @property
    def X(self) -> Any:
        """The raw data matrix (materialised on first read when deferred)."""
        return self._cache.get("X", self._X)

    @property
    def var(self) -> pd.DataFrame:
        return self._var

    @property
    def varm(self) -> AlignedActual:
        return AlignedActual(self, "varm", (1,), self._varm, self._cache)

    @varm.setter
    def varm(self, value: Any) -> None:
        store = as_store(value, "varm")
        checked = AlignedActual(self, "varm", (1,), {}, self._cache)
        for k, v in store.items():
            checked[k] = v
        self._varm = checked._data

    @property
    def shape(self) -> tuple[int, int]:
        return self.n_obs, self.n_vars

    @property
    def n_obs(self) -> int:
        return self._adata.n_obs

    @property
    def n_vars(self) -> int:
        return len(self._var)

    @property
    def obs_names(self) -> pd.Index:
        return self._adata.obs_names

    @property
    def var_names(self) -> pd.Index:
        return self._var.index

    # ------------------------------------------------------------------ subsetting

    def _subset_obs(self, adata: AnnData, oidx: Indexer) -> Raw:
        """This raw, rows ``oidx`` only, attached to ``adata`` (a view of the parent)."""
        X = subset_array(self._pushdown_X(), oidx, slice(None))
        if isinstance(X, np.ndarray) and isinstance(self.X, np.ndarray):
            if np.shares_memory(X, self.X):  # the view's raw never writes into the parent
                X = X.copy()
        return Raw._from_parts(adata, X, self._var, self._varm)

    def _pushdown_X(self) -> Any:
        from .aligned import has_subset_pushdown
        from .deferred import is_deferred

        if is_deferred(self._X) and has_subset_pushdown(self._X):
            return self._X
        return self.X

    def __getitem__(self, index: Any) -> Raw:
        from .anndata import AnnData

        if isinstance(index, tuple) and len(index) == 2 and isinstance(index[0], AnnData):
            adata, index = index
            oidx, vidx = self._normalize_indices(index)
        else:
            oidx, vidx = self._normalize_indices(index)
            adata = self._adata[oidx]
        X = subset_array(self._pushdown_X(), oidx, vidx)
        if isinstance(X, np.ndarray) and np.shares_memory(X, self.X):
            X = X.copy()
        var = self._var.iloc[vidx]
        varm = {k: subset_array(v, vidx, slice(None)) for k, v in self.varm.items()}
        return Raw._from_parts(adata, X, var, {k: copy_array(v) for k, v in varm.items()})

    def _normalize_indices(self, index: Any) -> tuple[Indexer, Indexer]:
        if isinstance(index, tuple) and len(index) > 2:
            raise IndexError(
                f"You tried to slice an AnnData(View) object with an {len(index)}-dimensional "
                "index, but only 2 dimensions exist in such an object."
            )
        rows, cols = unpack_index(index)
        return (
            normalize_axis_index(rows, self._adata.obs_names, axis=0),
            normalize_axis_index(cols, self.var_names, axis=1),
        )

    # ------------------------------------------------------------------ conversions

    def copy(self) -> Raw:
        return Raw._from_parts(
            self._adata,
            copy_array(self.X),
            self._var.copy(),
            {k: copy_array(v) for k, v in self._varm.items()},
        )

    def to_adata(self) -> AnnData:
        """An AnnData with raw X/var/varm and the parent's obs, obsm, obsp and uns."""
        from .anndata import AnnData

        parent = self._adata
        return AnnData(
            X=copy_array(self.X),
            var=self._var.copy(),
            varm={k: copy_array(v) for k, v in self.varm.items()},
            obs=pd.DataFrame(parent.obs).copy(),
            obsm=parent.obsm.copy(),
            obsp=parent.obsp.copy(),
            uns=dict(parent.uns).copy(),
        )

    def _get_X(self, layer: str | None = None) -> Any:
        if layer is not None:
            raise ValueError()
        return self.X

    def var_vector(self, k: str) -> np.ndarray:
        from .anndata import get_vector

        return get_vector(self, k, "var", "obs")

    def obs_vector(self, k: str) -> np.ndarray:
        _, vidx = self._normalize_indices((slice(None), k))
        a = subset_array(self.X, slice(None), vidx)
        if sparse.issparse(a):
            a = a.toarray()
        return np.ravel(np.asarray(a))

    def __str__(self) -> str:
        descr = f"Raw AnnData with n_obs × n_vars = {self.n_obs} × {self.n_vars}"
        for attr in ("var", "varm"):
            keys = list(getattr(self, attr).keys())
            if keys:
                descr += f"\n    {attr}: {str(keys)[1:-1]}"
        return descr

    __repr__ = __str__
