# ruff: noqa: RUF001, RUF002  (messages reproduce anndata's text, incl. its unicode signs)
"""The :class:`AnnData` container (drop-in for :class:`anndata.AnnData`).

An ``AnnData`` is either *actual* — it owns ``X``, ``obs``, ``var``, ``uns``, the aligned
mappings and ``raw`` — or a *view*: a reference to an actual object plus one normalised indexer
per axis (:mod:`annscale.core.index`). A view reads lazily from its reference and caches what
it read; views of views compose indexers, so data are subset once. Modifying a view makes a
new actual object (:meth:`AnnData.copy`) and the view adopts its state (``_adopt``), with an
:class:`~annscale.ImplicitModificationWarning`; the reference object is never written to.

Values may be in-memory arrays, dask arrays or *deferred* values
(:mod:`annscale.core.deferred`), which are materialised once on first read.

Hooks for other parts of annscale
---------------------------------
* :meth:`AnnData._from_parts` builds an object from validated parts without copies or
  checks (used by the readers and the lazy engine), with an optional ``backing``: any object
  with a ``filename`` attribute (and optionally ``close()``), set by ``read_h5ad(backed=…)``;
  :attr:`AnnData.isbacked` and :attr:`AnnData.filename` reflect it.
* Writing delegates to ``annscale.io.h5ad.write_h5ad(filepath, adata, **kw)``,
  ``annscale.io.zarr.write_zarr(store, adata, **kw)``,
  ``annscale.genomics.text.write_csvs(dirname, adata, **kw)`` and
  ``annscale.genomics.loom.write_loom(filename, adata, **kw)``.
* :meth:`AnnData.to_memory` loads every element through
  :func:`annscale.core.arrays.to_memory_many` (one ``dask.compute`` for all lazy elements).
"""

from __future__ import annotations

import copy as _copy
import logging
import warnings
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import ImplicitModificationWarning, ShapeMismatchError
from .aligned import AXES, AlignedActual, AlignedView, as_store, coerce_array, has_subset_pushdown
from .arrays import copy_array, to_memory_many, transpose_array
from .dataframes import (
    gen_dataframe,
    make_index_unique,
    prep_dim_index,
    prune_unused_categories,
    strings_to_categoricals,
    warn_names_duplicates,
)
from .deferred import MaterializedCache, is_deferred, materialize
from .index import (
    Indexer,
    compose,
    indexer_length,
    normalize_axis_index,
    normalize_indices,
    subset_array,
)
from .raw import Raw
from .views import DataFrameView, DictView, ElementRef, as_view

__all__ = ["AnnData", "get_vector"]

_logger = logging.getLogger("annscale")

_MAPPINGS = ("layers", "obsm", "varm", "obsp", "varp")


@dataclass(frozen=True, eq=False)
class _ViewOf:
    """What a view is: an actual object and positions along each of its axes."""

    ref: AnnData
    oidx: Indexer
    vidx: Indexer


class AnnData:
    """An annotated data matrix: ``X`` (n_obs × n_vars) with ``obs``, ``var``, ``uns``,
    ``obsm``, ``varm``, ``obsp``, ``varp``, ``layers`` and ``raw``.

    Parameters are those of :class:`anndata.AnnData`. ``X`` may be a numpy array, a scipy
    csr/csc matrix or array, a dask array (kept lazy), a deferred value, a DataFrame (its
    index and columns become obs/var names) or ``None`` (then ``shape=`` or obs/var give the
    shape). ``dtype`` is deprecated (a ``FutureWarning``), as in anndata.
    """

    def __init__(
        self,
        X: Any = None,
        obs: pd.DataFrame | Mapping[str, Any] | None = None,
        var: pd.DataFrame | Mapping[str, Any] | None = None,
        uns: Mapping[str, Any] | None = None,
        *,
        obsm: Mapping[str, Any] | np.ndarray | None = None,
        varm: Mapping[str, Any] | np.ndarray | None = None,
        layers: Mapping[str, Any] | None = None,
        raw: Mapping[str, Any] | Raw | None = None,
        dtype: Any = None,
        shape: tuple[int, int] | None = None,
        filename: PathLike[str] | str | None = None,
        filemode: Literal["r", "r+"] | None = None,
        asview: bool = False,
        obsp: Mapping[str, Any] | np.ndarray | None = None,
        varp: Mapping[str, Any] | np.ndarray | None = None,
        oidx: Any = None,
        vidx: Any = None,
    ):
        if asview:
            if not isinstance(X, AnnData):
                raise ValueError("`X` has to be an AnnData object.")
            self._adopt(X._view_of(X._norm(oidx, 0), X._norm(vidx, 1)))
            return
        if filename is not None:
            from ..io.h5ad import read_h5ad

            self._adopt(read_h5ad(filename, backed=filemode or "r"))
            return
        self._init_empty()
        if isinstance(X, AnnData):
            if any(v is not None for v in (obs, var, uns, obsm, varm, obsp, varp)):
                raise ValueError("If `X` is a dict no further arguments must be provided.")
            src = X
            X, obs, var, uns = src.X, src.obs, src.var, src.uns
            obsm, varm, obsp, varp, layers, raw = (
                src.obsm, src.varm, src.obsp, src.varp, src.layers, src.raw,
            )  # fmt: skip
        x_names: list[tuple[str, pd.Index]] = []
        if isinstance(X, pd.DataFrame):
            if obs is None:
                obs = pd.DataFrame(index=X.index)
            elif not isinstance(X.index, pd.RangeIndex):
                x_names.append(("obs", X.index.astype(str)))
            if var is None:
                var = pd.DataFrame(index=X.columns)
            elif not isinstance(X.columns, pd.RangeIndex):
                x_names.append(("var", X.columns.astype(str)))
            X = coerce_array(X, name="X")

        if X is not None:
            X = coerce_array(X, name="X")
            if shape is not None:
                raise ValueError("`shape` needs to be `None` if `X` is not `None`.")
            if X.dtype.names is None and len(X.shape) != 2:
                raise ValueError(f"X needs to be 2-dimensional, not {len(X.shape)}-dimensional.")
            if dtype is not None:
                warnings.warn(
                    "The dtype argument is deprecated and will be removed in late 2024.",
                    FutureWarning,
                    stacklevel=2,
                )
                X = _astype(X, dtype)
            n_obs, n_vars = X.shape
            source = "X"
        else:
            n_obs, n_vars = shape if shape is not None else _infer_shape(
                obs, var, obsm=obsm, varm=varm, layers=layers, obsp=obsp, varp=varp
            )  # fmt: skip
            source = "shape"
        self._X = X
        self._obs = gen_dataframe(obs, "obs", length=n_obs, source=source)
        self._var = gen_dataframe(var, "var", length=n_vars, source=source)
        for attr, names in x_names:
            df = getattr(self, f"_{attr}")
            if isinstance(df.index, pd.RangeIndex):
                df.index = names
            elif not names.equals(df.index):
                name = "index" if attr == "obs" else "columns"
                raise ValueError(f"Index of {attr} must match {name} of X.")
        self.uns = uns if uns is not None else {}
        given = {"layers": layers, "obsm": obsm, "varm": varm, "obsp": obsp, "varp": varp}
        for attr, value in given.items():
            setattr(self, attr, value)
        if self.obs_names[~self.obs_names.isna()].has_duplicates:
            warn_names_duplicates("obs")
        if self.var_names[~self.var_names.isna()].has_duplicates:
            warn_names_duplicates("var")
        if raw is not None and (not isinstance(raw, Mapping) or raw):
            if isinstance(raw, Raw):
                self._raw = Raw(self, raw._X, raw.var, raw.varm)
            elif isinstance(raw, Mapping):
                self._raw = Raw(self, **raw)
            else:
                raise ValueError("`raw` must be a Raw object or a mapping with X, var, varm.")

    def _init_empty(self) -> None:
        self._view: _ViewOf | None = None
        self._X: Any = None
        self._obs: pd.DataFrame | None = None
        self._var: pd.DataFrame | None = None
        self._uns: MutableMapping[str, Any] | None = {}
        self._layers: dict[str, Any] = {}
        self._obsm: dict[str, Any] = {}
        self._varm: dict[str, Any] = {}
        self._obsp: dict[str, Any] = {}
        self._varp: dict[str, Any] = {}
        self._raw: Raw | None = None
        self._backing: Any = None
        self._cache = MaterializedCache()
        self._view_cache: dict[Any, Any] = {}

    @classmethod
    def _from_parts(
        cls,
        *,
        X: Any = None,
        obs: pd.DataFrame,
        var: pd.DataFrame,
        uns: MutableMapping[str, Any] | None = None,
        obsm: Mapping[str, Any] | None = None,
        varm: Mapping[str, Any] | None = None,
        obsp: Mapping[str, Any] | None = None,
        varp: Mapping[str, Any] | None = None,
        layers: Mapping[str, Any] | None = None,
        raw: Raw | Mapping[str, Any] | None = None,
        backing: Any = None,
    ) -> AnnData:
        """An actual object from validated parts: no checks, no copies, no warnings.

        ``obs``/``var`` must be DataFrames with string indexes whose lengths match ``X`` and
        the aligned values; ``raw`` may be a :class:`Raw` or a mapping ``{"X", "var",
        "varm"}``; ``backing`` (anything with ``filename``) marks the object as backed.
        """
        new = object.__new__(cls)
        new._init_empty()
        new._X, new._obs, new._var = X, obs, var
        new._uns = uns if uns is not None else {}
        for attr, value in zip(_MAPPINGS, (layers, obsm, varm, obsp, varp)):
            setattr(new, f"_{attr}", dict(value) if value else {})
        if isinstance(raw, Raw):
            new._raw = Raw._from_parts(new, raw._X, raw._var, raw._varm)
        elif raw:
            new._raw = Raw._from_parts(new, raw["X"], raw["var"], as_store(raw.get("varm"), "varm"))
        new._backing = backing
        return new

    # ------------------------------------------------------------------ view machinery

    def _norm(self, idx: Any, axis: int) -> Indexer:
        names = (self.obs_names, self.var_names)[axis]
        return normalize_axis_index(slice(None) if idx is None else idx, names, axis)

    def _view_of(self, oidx: Indexer, vidx: Indexer) -> AnnData:
        """A view of this object at normalised positions (composed for views of views)."""
        if self._view is not None:
            ref = self._view.ref
            oidx = compose(self._view.oidx, oidx, ref.n_obs)
            vidx = compose(self._view.vidx, vidx, ref.n_vars)
        else:
            ref = self
        view = object.__new__(type(self))
        view._init_empty()
        view._uns = None
        view._view = _ViewOf(ref, oidx, vidx)
        view._backing = ref._backing
        return view

    def _adopt(self, other: AnnData) -> None:
        """Take over ``other``'s state (``other`` is discarded)."""
        self.__dict__.clear()
        self.__dict__.update(other.__dict__)
        if self._raw is not None:
            self._raw._adata = self

    def _actualize(self) -> None:
        """Turn this view into an independent actual object (no-op when actual)."""
        if self._view is not None:
            self._adopt(self.copy())

    def _update_element(self, ref: ElementRef, action: Any) -> Any:
        """Apply ``action`` to ``self.<attr>[keys…]``, actualising a view first.

        Called by the copy-on-write wrappers of :mod:`annscale.core.views`.
        """
        if self._view is not None:
            warnings.warn(
                f"Trying to modify attribute `.{ref.attrname}` of view, "
                "initializing view as actual.",
                ImplicitModificationWarning,
                stacklevel=4,
            )
            self._actualize()
        target = getattr(self, ref.attrname)
        for key in ref.keys:
            target = target[key]
        return action(target)

    def _view_subset(self, slot: Any, value: Any, rows: Indexer, cols: Indexer) -> Any:
        """``value[rows, cols]`` for this view, cached, deferred pushdown when possible."""
        if slot not in self._view_cache:
            out = subset_array(value, rows, cols)
            self._view_cache[slot] = materialize(out)
        return self._view_cache[slot]

    def _view_annotations(self) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        """obs, var (unused categories removed) and uns (colors subset) of this view."""
        if "annotations" not in self._view_cache:
            v = self._view
            uns = _copy.copy(v.ref._uns)
            obs = prune_unused_categories(v.ref.obs, v.ref.obs.iloc[v.oidx], uns)
            var = prune_unused_categories(v.ref.var, v.ref.var.iloc[v.vidx], uns)
            obs = DataFrameView(obs, view_ref=ElementRef(self, "obs"))
            var = DataFrameView(var, view_ref=ElementRef(self, "var"))
            self._view_cache["annotations"] = (obs, var, uns)
        return self._view_cache["annotations"]

    @property
    def is_view(self) -> bool:
        """Whether this object is a view of another AnnData."""
        return self._view is not None

    @property
    def isview(self) -> bool:  # anndata's deprecated spelling
        return self.is_view

    # ------------------------------------------------------------------ shape & names

    @property
    def n_obs(self) -> int:
        """Number of observations (rows)."""
        if self._view is not None:
            return indexer_length(self._view.oidx, self._view.ref.n_obs)
        return len(self._obs)

    @property
    def n_vars(self) -> int:
        """Number of variables (columns)."""
        if self._view is not None:
            return indexer_length(self._view.vidx, self._view.ref.n_vars)
        return len(self._var)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_obs, n_vars)``."""
        return self.n_obs, self.n_vars

    def __len__(self) -> int:
        return self.n_obs

    @property
    def obs(self) -> pd.DataFrame:
        """One-dimensional annotation of observations (DataFrame, index = obs_names)."""
        return self._view_annotations()[0] if self._view is not None else self._obs

    @obs.setter
    def obs(self, value: pd.DataFrame) -> None:
        self._set_dim_df(value, "obs")

    @obs.deleter
    def obs(self) -> None:
        self.obs = pd.DataFrame({}, index=self.obs_names)

    @property
    def var(self) -> pd.DataFrame:
        """One-dimensional annotation of variables (DataFrame, index = var_names)."""
        return self._view_annotations()[1] if self._view is not None else self._var

    @var.setter
    def var(self, value: pd.DataFrame) -> None:
        self._set_dim_df(value, "var")

    @var.deleter
    def var(self) -> None:
        self.var = pd.DataFrame({}, index=self.var_names)

    @property
    def obs_names(self) -> pd.Index:
        """Names of observations (alias for ``.obs.index``)."""
        if self._view is not None:
            if "annotations" in self._view_cache:
                return self.obs.index
            return self._view.ref.obs_names[self._view.oidx]
        return self._obs.index

    @obs_names.setter
    def obs_names(self, names: Any) -> None:
        self._set_dim_index(prep_dim_index(names, "obs", self.n_obs, self.shape), "obs")

    @property
    def var_names(self) -> pd.Index:
        """Names of variables (alias for ``.var.index``)."""
        if self._view is not None:
            if "annotations" in self._view_cache:
                return self.var.index
            return self._view.ref.var_names[self._view.vidx]
        return self._var.index

    @var_names.setter
    def var_names(self, names: Any) -> None:
        self._set_dim_index(prep_dim_index(names, "var", self.n_vars, self.shape), "var")

    def _set_dim_df(self, value: Any, attr: str) -> None:
        length = self.n_obs if attr == "obs" else self.n_vars
        value = gen_dataframe(value, attr, length=length, source="shape")
        index = prep_dim_index(value.index, attr, length, self.shape)
        self._actualize()
        setattr(self, f"_{attr}", value)
        self._set_dim_index(index, attr)

    def _set_dim_index(self, value: pd.Index, attr: str) -> None:
        self._actualize()
        getattr(self, f"_{attr}").index = value
        for v in getattr(self, f"_{attr}m").values():
            if isinstance(v, pd.DataFrame):
                v.index = value

    def obs_names_make_unique(self, join: str = "-") -> None:
        """Make ``obs_names`` unique by appending ``{join}1``, ``{join}2``, … to repeats."""
        self.obs_names = make_index_unique(self.obs.index, join)

    def var_names_make_unique(self, join: str = "-") -> None:
        """Make ``var_names`` unique by appending ``{join}1``, ``{join}2``, … to repeats."""
        self.var_names = make_index_unique(self.var.index, join)

    # ------------------------------------------------------------------ X

    @property
    def X(self) -> Any:
        """Data matrix of shape ``n_obs × n_vars`` (``None`` when absent)."""
        v = self._view
        if v is None:
            return self._cache.get("X", self._X)
        if v.ref._X is None:
            return None
        if "X" not in self._view_cache:
            src = v.ref._X
            if not (is_deferred(src) and has_subset_pushdown(src)):
                src = v.ref.X
            out = materialize(subset_array(src, v.oidx, v.vidx))
            self._view_cache["X"] = as_view(out, ElementRef(self, "X"))
        return self._view_cache["X"]

    @X.setter
    def X(self, value: Any) -> None:
        if value is not None:
            value = coerce_array(value, name="X", allow_array_like=True)
            if np.isscalar(value):
                value = np.full(self.shape, value)
            elif value.shape != self.shape:
                if value.ndim == 1 and 1 in self.shape and value.shape[0] == max(self.shape):
                    value = value.reshape(self.shape)
                else:
                    raise ShapeMismatchError(
                        f"Data matrix has wrong shape {value.shape}, need to be {self.shape}.",
                        element="/X",
                    )
        if self._view is not None:
            warnings.warn(
                "Setting element `.X` of view, initializing view as actual.",
                ImplicitModificationWarning,
                stacklevel=2,
            )
            self._adopt(self._copy(X=value))
            return
        self._X = value
        self._cache.discard("X")

    @X.deleter
    def X(self) -> None:
        self.X = None

    def _has_X(self) -> bool:
        return (self._view.ref if self._view is not None else self)._X is not None

    # ------------------------------------------------------------------ mappings

    def _mapping(self, attr: str) -> AlignedActual | AlignedView:
        v = self._view
        if v is None:
            return AlignedActual(self, attr, AXES[attr], getattr(self, f"_{attr}"), self._cache)
        axes = AXES[attr]
        idx = (v.oidx, v.vidx)
        subset = (idx[axes[0]], idx[axes[1]] if len(axes) > 1 else slice(None))
        return AlignedView(self, v.ref._mapping(attr), subset, self._view_cache)

    def _set_mapping(self, attr: str, value: Any) -> None:
        store = as_store(value, attr)
        checked = AlignedActual(self, attr, AXES[attr], {}, MaterializedCache())
        for k, v in store.items():
            checked[k] = v  # validates
        self._actualize()
        setattr(self, f"_{attr}", checked._data)
        for k in store:
            self._cache.discard((attr, k))

    layers = property(
        lambda self: self._mapping("layers"),
        lambda self, v: self._set_mapping("layers", v),
        lambda self: self._set_mapping("layers", None),
        "Arrays shaped like ``X`` (n_obs × n_vars), by name.",
    )
    obsm = property(
        lambda self: self._mapping("obsm"),
        lambda self, v: self._set_mapping("obsm", v),
        lambda self: self._set_mapping("obsm", None),
        "Multi-dimensional annotation of observations: arrays/DataFrames with n_obs rows.",
    )
    varm = property(
        lambda self: self._mapping("varm"),
        lambda self, v: self._set_mapping("varm", v),
        lambda self: self._set_mapping("varm", None),
        "Multi-dimensional annotation of variables: arrays/DataFrames with n_vars rows.",
    )
    obsp = property(
        lambda self: self._mapping("obsp"),
        lambda self, v: self._set_mapping("obsp", v),
        lambda self: self._set_mapping("obsp", None),
        "Pairwise annotation of observations: n_obs × n_obs arrays.",
    )
    varp = property(
        lambda self: self._mapping("varp"),
        lambda self, v: self._set_mapping("varp", v),
        lambda self: self._set_mapping("varp", None),
        "Pairwise annotation of variables: n_vars × n_vars arrays.",
    )

    # ------------------------------------------------------------------ uns & raw

    @property
    def uns(self) -> MutableMapping[str, Any]:
        """Unstructured annotation (a dict; of a view: copy-on-write)."""
        if self._view is None:
            return self._uns
        if "uns" not in self._view_cache:
            self._view_cache["uns"] = DictView(self._view_annotations()[2], ElementRef(self, "uns"))
        return self._view_cache["uns"]

    @uns.setter
    def uns(self, value: MutableMapping[str, Any]) -> None:
        if not isinstance(value, MutableMapping):
            raise ValueError("Only mutable mapping types (e.g. dict) are allowed for `.uns`.")
        if isinstance(value, DictView):
            value = value.copy()
        self._actualize()
        self._uns = value

    @uns.deleter
    def uns(self) -> None:
        self.uns = {}

    @property
    def raw(self) -> Raw | None:
        """Raw ``X``/``var``/``varm`` (subset along obs with this object); ``None`` if unset."""
        v = self._view
        if v is None:
            return self._raw
        if v.ref._raw is None:
            return None
        if "raw" not in self._view_cache:
            self._view_cache["raw"] = v.ref._raw._subset_obs(self, v.oidx)
        return self._view_cache["raw"]

    @raw.setter
    def raw(self, value: AnnData | None) -> None:
        if value is None:
            del self.raw
            return
        if not isinstance(value, AnnData):
            raise ValueError("Can only init raw attribute with an AnnData object.")
        X, var, varm = copy_array(value.X), pd.DataFrame(value.var).copy(), value.varm.copy()
        raw = Raw(self, X=X, var=var, varm=varm)
        self._actualize()
        raw._adata = self
        self._raw = raw

    @raw.deleter
    def raw(self) -> None:
        self._actualize()
        self._raw = None

    # ------------------------------------------------------------------ backing

    @property
    def isbacked(self) -> bool:
        """Whether the object is backed by a file opened with ``backed=``."""
        return self._backing is not None

    @property
    def filename(self) -> Path | None:
        """The backing file (``None`` for in-memory objects)."""
        if self._backing is None:
            return None
        name = getattr(self._backing, "filename", None)
        return None if name is None else Path(name) if isinstance(name, str) else name

    @property
    def file(self) -> Any:
        """The backing handle set by ``read_h5ad(backed=…)`` (``None`` when in memory)."""
        return self._backing

    # ------------------------------------------------------------------ indexing

    def _normalize_indices(self, index: Any) -> tuple[Indexer, Indexer]:
        return normalize_indices(index, self.obs_names, self.var_names)

    def __getitem__(self, index: Any) -> AnnData:
        """A view of the selected observations and variables (see :mod:`.index`)."""
        return self._view_of(*self._normalize_indices(index))

    def __setitem__(self, index: Any, value: Any) -> None:
        if self.is_view:
            raise ValueError("Object is view and cannot be accessed with `[]`.")
        rows, cols = self._normalize_indices(index)
        if isinstance(rows, np.ndarray) and isinstance(cols, np.ndarray):
            rows, cols = np.ix_(rows, cols)
        self._X[rows, cols] = value
        self._cache.discard("X")

    def __contains__(self, key: Any) -> bool:
        raise AttributeError("AnnData has no attribute __contains__, don’t check `in adata`.")

    def __eq__(self, other: object) -> bool:
        raise NotImplementedError(
            "Equality comparisons are not supported for AnnData objects, "
            "instead compare the desired attributes."
        )

    __hash__ = object.__hash__

    def _inplace_subset_obs(self, index: Any) -> None:
        """``adata = adata[index]``, in place."""
        self._adopt(self[index].copy())

    def _inplace_subset_var(self, index: Any) -> None:
        """``adata = adata[:, index]``, in place."""
        self._adopt(self[:, index].copy())

    # ------------------------------------------------------------------ copies

    def copy(self, filename: PathLike[str] | str | None = None) -> AnnData:
        """An independent actual copy (lazy values are immutable and shared)."""
        if filename is not None:
            self.write_h5ad(filename)
            from ..io.h5ad import read_h5ad

            return read_h5ad(filename, backed="r+")
        return self._copy()

    def _copy(self, **overrides: Any) -> AnnData:
        """A new actual object with every element copied, or taken from ``overrides``."""
        v = self._view

        def own(value: Any, source: Any) -> Any:
            if isinstance(value, np.ndarray):
                if isinstance(source, np.ndarray) and np.shares_memory(value, source):
                    return np.array(value)
                return value.view(np.ndarray)
            if sparse.issparse(value) and sparse.issparse(source):
                if np.shares_memory(value.data, source.data):
                    return copy_array(value)
                return copy_array(value) if type(value).__name__.endswith("View") else value
            return copy_array(value)

        if "X" in overrides:
            X = overrides["X"]
        elif v is None:
            X = copy_array(self._X)
        elif v.ref._X is None:
            X = None
        elif is_deferred(v.ref._X) and has_subset_pushdown(v.ref._X):
            X = subset_array(v.ref._X, v.oidx, v.vidx)  # stays lazy: no I/O
        else:
            full = v.ref.X
            X = own(subset_array(full, v.oidx, v.vidx), full)
        obs, var = pd.DataFrame(self.obs).copy(), pd.DataFrame(self.var).copy()
        uns = _copy.deepcopy(dict(self.uns) if v is not None else self._uns)
        mappings = {}
        for attr in _MAPPINGS:
            if v is None:
                mappings[attr] = {k: copy_array(x) for k, x in getattr(self, f"_{attr}").items()}
            else:
                mappings[attr] = self._copy_view_mapping(attr, own)
        raw = self.raw
        raw = None if raw is None else raw.copy()
        new = AnnData._from_parts(X=X, obs=obs, var=var, uns=uns, raw=raw, backing=None, **mappings)
        return new

    def _copy_view_mapping(self, attr: str, own: Any) -> dict[str, Any]:
        v = self._view
        parent = v.ref._mapping(attr)
        axes = AXES[attr]
        idx = (v.oidx, v.vidx)
        rows, cols = idx[axes[0]], (idx[axes[1]] if len(axes) > 1 else slice(None))
        out = {}
        for k in parent:
            stored = parent.stored(k)
            if is_deferred(stored) and has_subset_pushdown(stored):
                out[k] = subset_array(stored, rows, cols)
            else:
                src = parent[k]
                out[k] = own(subset_array(src, rows, cols), src)
        return out

    def to_memory(self, *, copy: bool = False) -> AnnData:
        """An in-memory AnnData: lazy/deferred elements computed (one ``dask.compute``).

        In-memory elements are reused (``copy=False``) or copied (``copy=True``).
        """
        elements: dict[tuple[str, Any], Any] = {}
        if self._has_X():
            elements[("X", None)] = self.X
        for attr in _MAPPINGS:
            m = getattr(self, attr)
            for k in m:
                elements[(attr, k)] = m[k]
        raw = self.raw
        if raw is not None:
            elements[("raw.X", None)] = raw.X
            for k in raw.varm:
                elements[("raw.varm", k)] = raw.varm[k]
        loaded = to_memory_many(elements)
        if copy:
            loaded = {k: copy_array(x) for k, x in loaded.items()}
        loaded = {k: _plain(x) for k, x in loaded.items()}
        parts: dict[str, Any] = {a: {} for a in _MAPPINGS}
        for (attr, k), x in loaded.items():
            if attr in parts:
                parts[attr][k] = x
        raw_parts = None
        if raw is not None:
            raw_parts = {
                "X": loaded[("raw.X", None)],
                "var": raw.var.copy() if copy else raw.var,
                "varm": {k: x for (a, k), x in loaded.items() if a == "raw.varm"},
            }
        obs, var = pd.DataFrame(self.obs), pd.DataFrame(self.var)
        uns = dict(self.uns) if self.is_view else self._uns
        if copy:
            obs, var, uns = obs.copy(), var.copy(), _copy.deepcopy(uns)
        backing = self._backing
        new = AnnData._from_parts(
            X=loaded.get(("X", None)), obs=obs, var=var, uns=uns, raw=raw_parts, **parts
        )
        if backing is not None and not self.is_view and hasattr(backing, "close"):
            backing.close()
        return new

    # ------------------------------------------------------------------ conversions

    def to_anndata(self, *, keep_lazy: bool = False) -> Any:
        """This object as an ``anndata.AnnData`` (for scanpy and the scverse ecosystem).

        Lazy elements are computed unless ``keep_lazy=True`` (then they stay dask arrays).
        Arrays are shared, not copied; see :mod:`annscale.bridge`.
        """
        from ..bridge import to_anndata

        return to_anndata(self, keep_lazy=keep_lazy)

    def transpose(self) -> AnnData:
        """The transposed object: obs and var swapped, ``X``/layers transposed; drops raw."""
        if self.is_view:
            raise ValueError(
                "You’re trying to transpose a view of an `AnnData`, which is currently not "
                "implemented. Call `.copy()` before transposing."
            )
        X = self.X
        return AnnData(
            X=transpose_array(X) if X is not None else None,
            layers={k: transpose_array(v) for k, v in self.layers.items()},
            obs=self.var,
            var=self.obs,
            uns=self._uns,
            obsm=self.varm,
            varm=self.obsm,
            obsp=self.varp,
            varp=self.obsp,
        )

    T = property(transpose)

    def to_df(self, layer: str | None = None) -> pd.DataFrame:
        """``X`` (or ``layers[layer]``) as a dense DataFrame indexed by obs/var names."""
        if layer is not None:
            X = self.layers[layer]
        elif not self._has_X():
            raise ValueError("X is None, cannot convert to dataframe.")
        else:
            X = self.X
        X = to_memory_many({0: X})[0]
        if sparse.issparse(X):
            X = X.toarray()
        return pd.DataFrame(np.asarray(X), index=self.obs_names, columns=self.var_names)

    def _get_X(self, *, use_raw: bool = False, layer: str | None = None) -> Any:
        if use_raw and layer is not None:
            raise ValueError(
                "Cannot use expression from both layer and raw. You provided:"
                f"`use_raw={use_raw}` and `layer={layer}`"
            )
        if layer is not None:
            return self.layers[layer]
        if use_raw:
            if self.raw is None:
                raise ValueError("This AnnData doesn’t have a value in `.raw`.")
            return self.raw.X
        return self.X

    def obs_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """Values of ``obs[k]`` or of variable ``k`` across observations (1-d array)."""
        if layer == "X" and "X" not in self.layers:
            warnings.warn(
                "In a future version of AnnData, access to `.X` by passing `layer='X'` will "
                "be removed. Instead pass `layer=None`.",
                FutureWarning,
                stacklevel=2,
            )
            layer = None
        return get_vector(self, k, "obs", "var", layer=layer)

    def var_vector(self, k: str, *, layer: str | None = None) -> np.ndarray:
        """Values of ``var[k]`` or of observation ``k`` across variables (1-d array)."""
        if layer == "X" and "X" not in self.layers:
            warnings.warn(
                "In a future version of AnnData, access to `.X` by passing `layer='X'` will "
                "be removed. Instead pass `layer=None`.",
                FutureWarning,
                stacklevel=2,
            )
            layer = None
        return get_vector(self, k, "var", "obs", layer=layer)

    def obs_keys(self) -> list[str]:
        """Column names of ``obs``."""
        return self.obs.keys().tolist()

    def var_keys(self) -> list[str]:
        """Column names of ``var``."""
        return self.var.keys().tolist()

    def obsm_keys(self) -> list[str]:
        """Keys of ``obsm``."""
        return list(self.obsm.keys())

    def varm_keys(self) -> list[str]:
        """Keys of ``varm``."""
        return list(self.varm.keys())

    def uns_keys(self) -> list[str]:
        """Keys of ``uns``, sorted."""
        return sorted(self.uns.keys())

    def strings_to_categoricals(self, df: pd.DataFrame | None = None) -> None:
        """Turn string columns with fewer distinct values than rows into categoricals.

        With ``df=None`` both ``obs`` and ``var`` are converted (a view is actualised
        first); otherwise ``df`` is modified in place. Categories are natural-sorted.
        """
        if df is not None:
            strings_to_categoricals(df)
            return
        for attr in ("obs", "var"):
            frame = getattr(self, attr)
            probe = pd.DataFrame(frame).copy(deep=False)
            strings_to_categoricals(probe)
            changed = [k for k in probe.columns if probe[k].dtype != frame[k].dtype]
            if not changed:
                continue
            if self.is_view and self.isbacked:
                raise RuntimeError(
                    "Please call `.strings_to_categoricals()` on full AnnData, not on this "
                    "view. You might encounter this error message while copying or writing "
                    "to disk."
                )
            for k in changed:
                getattr(self, attr)[k] = probe[k]

    _sanitize = strings_to_categoricals

    def chunked_X(self, chunk_size: int | None = None) -> Iterator[tuple[Any, int, int]]:
        """Yield ``(X[start:end], start, end)`` for consecutive blocks of ``chunk_size`` rows."""
        if chunk_size is None:
            chunk_size = 6000
        n = self.n_obs
        X = self.X
        for start in range(0, n, chunk_size):
            end = min(start + chunk_size, n)
            yield X[start:end], start, end

    def chunk_X(self, select: int | Any = 1000, *, replace: bool = True) -> np.ndarray:
        """Rows of ``X`` (dense): ``select`` random rows, or the given positions."""
        if isinstance(select, int):
            select = min(select, self.n_obs)
            choice = np.random.choice(self.n_obs, select, replace)  # noqa: NPY002 (np.random.seed, as anndata)
        elif isinstance(select, np.ndarray | list | tuple | range):
            choice = np.asarray(select)
        else:
            raise ValueError("select should be int or array")
        out = to_memory_many({0: subset_array(self.X, choice, slice(None))})[0]
        return out.toarray() if sparse.issparse(out) else np.asarray(out)

    def concatenate(
        self,
        *adatas: AnnData,
        join: str = "inner",
        batch_key: str = "batch",
        batch_categories: Sequence[Any] | None = None,
        uns_merge: str | None = None,
        index_unique: str | None = "-",
        fill_value: Any = None,
    ) -> AnnData:
        """Concatenate along obs (deprecated in anndata; use :func:`annscale.concat`).

        Kept for old code, with anndata's semantics and ``FutureWarning``; see
        :mod:`annscale.core.concatenate`.
        """
        from .concatenate import concatenate

        return concatenate(
            self,
            adatas,
            join=join,
            batch_key=batch_key,
            batch_categories=batch_categories,
            uns_merge=uns_merge,
            index_unique=index_unique,
            fill_value=fill_value,
        )

    def rename_categories(self, key: str, categories: Sequence[Any]) -> None:
        """Rename the categories of ``obs[key]`` (or ``var[key]``), and in ``uns``.

        ``categories`` is list-like, one new name per old category. Record arrays in
        ``uns[k]`` whose ``uns[k]["params"]["groupby"] == key`` and whose field names are
        the old categories (scanpy's ``rank_genes_groups``) get the new names as fields.
        """
        if isinstance(categories, Mapping):
            raise ValueError("Only list-like `categories` is supported.")
        for attr in ("obs", "var"):
            frame = getattr(self, attr)
            if key in frame:
                old = frame[key].cat.categories.tolist()
                frame[key] = frame[key].cat.rename_categories(categories)
                break
        else:
            raise ValueError(f"{key} is neither in `.obs` nor in `.var`.")
        for k1, v1 in self.uns.items():
            params = v1.get("params") if isinstance(v1, Mapping) else None
            if not isinstance(params, Mapping) or params.get("groupby") != key:
                continue
            for k2, v2 in v1.items():
                if not (isinstance(v2, np.ndarray) and v2.dtype.names is not None):
                    continue
                if list(v2.dtype.names) == old:
                    v2.dtype.names = categories
                else:
                    _logger.warning(f"Omitting {k1}/{k2} as old categories do not match.")

    # ------------------------------------------------------------------ writing

    def write_h5ad(
        self,
        filename: PathLike[str] | str | None = None,
        *,
        convert_strings_to_categoricals: bool = True,
        compression: Literal["gzip", "lzf"] | None = None,
        compression_opts: Any = None,
        as_dense: Sequence[str] = (),
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        """Write an ``.h5ad`` file (see :func:`annscale.write_h5ad`).

        Without ``filename``, a backed object is written to its backing file.
        ``storage_options`` go to fsspec for remote URLs.
        """
        from ..io.h5ad import write_h5ad

        if filename is None:
            if not self.isbacked:
                raise ValueError("Provide a filename!")
            filename = self.filename
        write_h5ad(
            filename,  # a str may be a URL: never turn it into a Path
            self,
            compression=compression,
            compression_opts=compression_opts,
            as_dense=as_dense,
            convert_strings_to_categoricals=convert_strings_to_categoricals,
            storage_options=storage_options,
        )

    write = write_h5ad

    def write_zarr(
        self,
        store: Any,
        *,
        chunks: tuple[int, ...] | None = None,
        convert_strings_to_categoricals: bool = True,
        **kwargs: Any,
    ) -> None:
        """Write a zarr store (see :func:`annscale.write_zarr`; ``**kwargs`` are its
        annscale-only options: ``zarr_format``, ``consolidate_metadata``, ``storage_options``)."""
        from ..io.zarr import write_zarr

        if isinstance(chunks, bool):
            raise ValueError(
                "Passing `write_zarr(adata, chunks=True)` is no longer supported. "
                "Please pass `write_zarr(adata)` instead."
            )
        write_zarr(
            store,
            self,
            chunks=chunks,
            convert_strings_to_categoricals=convert_strings_to_categoricals,
            **kwargs,
        )

    def write_csvs(
        self, dirname: PathLike[str] | str, *, skip_data: bool = True, sep: str = ","
    ) -> None:
        """Write obs, var, obsm, varm (and X unless ``skip_data``) as ``.csv`` files."""
        from ..genomics.text import write_csvs

        write_csvs(dirname, self, skip_data=skip_data, sep=sep)

    def write_loom(self, filename: PathLike[str] | str, *, write_obsm_varm: bool = False) -> None:
        """Write a ``.loom`` file."""
        from ..genomics.loom import write_loom

        write_loom(filename, self, write_obsm_varm=write_obsm_varm)

    # ------------------------------------------------------------------ repr

    def _gen_repr(self, n_obs: int, n_vars: int) -> str:
        backed_at = f" backed at {str(self.filename)!r}" if self.isbacked else ""
        descr = f"AnnData object with n_obs × n_vars = {n_obs} × {n_vars}{backed_at}"
        for attr in ("obs", "var", "uns", "obsm", "varm", "layers", "obsp", "varp"):
            keys = list(self._keys_of(attr))
            if keys:
                descr += f"\n    {attr}: {str(keys)[1:-1]}"
        return descr

    def _keys_of(self, attr: str) -> Any:
        v = self._view
        if attr in ("obs", "var"):
            return (v.ref if v is not None else self).__dict__[f"_{attr}"].columns
        if attr == "uns":
            return self.uns.keys() if v is not None else self._uns.keys()
        return getattr(v.ref if v is not None else self, f"_{attr}").keys()

    def __repr__(self) -> str:
        prefix = "View of " if self.is_view else ""
        return prefix + self._gen_repr(self.n_obs, self.n_vars)

    def __sizeof__(self, *, show_stratified: bool = False, with_disk: bool = False) -> int:
        def size(x: Any) -> int:
            if sparse.issparse(x):
                return int(x.data.nbytes + x.indptr.nbytes + x.indices.nbytes)
            if isinstance(x, np.ndarray):
                return int(x.nbytes)
            if isinstance(x, pd.DataFrame):
                return int(x.memory_usage(deep=True).sum())
            return 0

        total = size(self.X) + size(self.obs) + size(self.var)
        for attr in _MAPPINGS:
            m = getattr(self, attr)
            total += sum(size(m[k]) for k in m)
        return total

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_view_cache"] = {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        if self._raw is not None:
            self._raw._adata = self


# ---------------------------------------------------------------------------- helpers


def _plain(x: Any) -> Any:
    """Drop copy-on-write view wrappers (plain numpy/scipy values)."""
    from .views import ArrayView, _SparseViewMixin

    if isinstance(x, ArrayView):
        return x.view(np.ndarray)
    if isinstance(x, _SparseViewMixin):
        return x._plain(x)
    if isinstance(x, DataFrameView):
        return pd.DataFrame(x)
    return x


def _astype(X: Any, dtype: Any) -> Any:
    if sparse.issparse(X):
        return X if X.dtype == np.dtype(dtype) else X.astype(dtype)
    if isinstance(X, np.ndarray):
        return np.asarray(X, dtype)
    return X.astype(dtype)


def _infer_shape(
    obs: Any, var: Any, *, obsm: Any, varm: Any, layers: Any, obsp: Any, varp: Any
) -> tuple[int | None, int | None]:
    def axis(frame: Any, m: Any, p: Any, ax: int) -> int | None:
        for elem in (frame, m, p):
            if elem is not None and hasattr(elem, "shape"):
                return elem.shape[0]
        for elem, is_layers in ((layers, True), (m, False), (p, False)):
            if isinstance(elem, Mapping):
                for value in elem.values():
                    if hasattr(value, "shape"):
                        return value.shape[ax if is_layers else 0]
        return None

    return axis(obs, obsm, obsp, 0), axis(var, varm, varp, 1)


def get_vector(
    adata: Any, k: str, coldim: str, idxdim: str, layer: str | None = None
) -> np.ndarray:
    """A column of ``adata.<coldim>`` or the ``X`` values of name ``k`` in ``<idxdim>_names``."""
    frame = getattr(adata, coldim)
    names = getattr(adata, f"{idxdim}_names")
    in_col, in_idx = k in frame.columns, k in names
    if in_col and in_idx:
        raise ValueError(f"Key {k} could be found in both .{idxdim}_names and .{coldim}.columns")
    if not (in_col or in_idx):
        raise KeyError(f"Could not find key {k} in .{idxdim}_names or .{coldim}.columns.")
    if in_col:
        return frame[k].values
    pos = normalize_axis_index(k, names, axis=("obs", "var").index(idxdim))
    X = adata._get_X(layer=layer) if layer is not None else adata.X
    a = subset_array(X, slice(None), pos) if idxdim == "var" else subset_array(X, pos, slice(None))
    a = to_memory_many({0: a})[0]
    if sparse.issparse(a):
        a = a.toarray()
    return np.ravel(np.asarray(a))
