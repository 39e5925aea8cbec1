"""``annscale.concat``: anndata's ``concat`` for in-memory and lazy objects.

The result is assembled from independent parts (names, annotations, ``X``/``layers``,
``obsm``/``obsp``, the merged other-axis elements, ``uns``, ``raw``), each following
anndata 0.12's rules. When any input holds a lazy (dask or deferred) ``X`` or layer, ``X``
and ``layers`` of the result are lazy dask arrays (nothing is read until computed); other
elements are lazy exactly when one of their inputs is.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..core.deferred import materialize
from . import arrays as eager
from . import lazy
from .frames import check_combinable_columns, concat_frames, merge_frames
from .merge import StrategyName, intersect_keys, resolve_merge_strategy, union_keys
from .reindex import (
    Reindex,
    align_indices,
    default_fill_value,
    is_plain_str_index,
    reindex_dense,
    reindex_sparse,
    resolve_axis,
)
from .sources import concat_deferred

__all__ = ["concat"]

Strategy = StrategyName | Callable | None


def _names(adata: Any, axis: int) -> pd.Index:
    return (adata.obs if axis == 0 else adata.var).index


def _concat_fn(els: Sequence[Any], *, force_lazy: bool) -> Callable:
    """The array concatenation to use for one element: deferred (lazy) if asked or if any
    input is lazy (see :mod:`annscale.combine.sources`), else in memory."""
    if force_lazy or any(lazy.is_lazy(e) for e in els):
        return concat_deferred
    return eager.concat_arrays


def _stored_X(adata: Any) -> Any:
    """``adata.X`` as stored: a deferred value stays deferred (no ``indptr`` read), so
    subsetting the result can still push selections down to it."""
    stored = getattr(adata, "_X", None)
    if getattr(adata, "_view", None) is None and lazy.is_lazy(stored):
        return stored
    return adata.X


def _stored_mapping(adata: Any, attr: str) -> dict[str, Any]:
    """``dict(adata.<attr>)`` with deferred values left unmaterialised when possible."""
    m = getattr(adata, attr)
    get = getattr(m, "stored", m.__getitem__)
    return {k: get(k) for k in m}


def _has_lazy_matrix(adata: Any) -> bool:
    return lazy.is_lazy(_stored_X(adata)) or any(
        lazy.is_lazy(v) for v in _stored_mapping(adata, "layers").values()
    )


def _concat_keys_index(
    adatas: Sequence[Any], axis: int, label_col: pd.Categorical, index_unique: str | None
) -> pd.Index:
    """The names along the concatenated axis (``{name}{index_unique}{key}`` if asked)."""
    indices = [_names(a, axis) for a in adatas]
    if isinstance(index_unique, str) and indices and all(map(is_plain_str_index, indices)):
        return _suffixed_names(indices, label_col.categories.map(str), index_unique)
    names = pd.concat([idx.to_series() for idx in indices], ignore_index=True)
    if index_unique is not None:
        names = names.str.cat(label_col.map(str, na_action="ignore"), sep=index_unique)
    return pd.Index(names)


def _suffixed_names(indices: Sequence[pd.Index], keys: Sequence[str], sep: str) -> pd.Index:
    """``{name}{sep}{key}`` for the names of each index and its key, concatenated: what
    ``Series.str.cat`` gives for string names, without pandas' per-column machinery."""
    out = np.empty(sum(len(idx) for idx in indices), dtype=object)
    start = 0
    for idx, key in zip(indices, keys):
        stop = start + len(idx)
        np.add(idx._values, sep + key, out=out[start:stop])
        start = stop
    return pd.Index(out, dtype=object, name=_consensus_name(indices), copy=False)


def _consensus_name(indices: Sequence[pd.Index]) -> Any:
    """The name ``pandas.concat`` gives concatenated series: the first one's while the
    others compare equal to it (so a NaN name is dropped), else None."""
    name = indices[0].name
    for idx in indices[1:]:
        try:
            if idx.name != name:
                name = None
        except ValueError:
            name = None
    return name


def _reindex_element(value: Any, plan: Reindex, names: pd.Index, *, axis: int) -> Any:
    """An other-axis element (``varm``/``varp`` when concatenating obs) aligned to the result.

    Missing positions get 0 (sparse) or NaN (dense), as in anndata.
    """
    value = materialize(value)
    if plan.is_identity_for(value.shape[axis]):
        return value
    if isinstance(value, pd.DataFrame):
        return value.reindex(names, axis=axis, fill_value=np.nan)
    if lazy.is_lazy(value):
        return lazy.reindex_lazy(value, plan, axis=axis)
    if sp.issparse(value):
        return reindex_sparse(value, plan, axis=axis, fill_value=default_fill_value(True))
    return reindex_dense(np.asarray(value), plan, axis=axis, fill_value=default_fill_value(False))


def _concat_X(
    adatas: Sequence[Any], plans: Sequence[Reindex], axis: int, fill_value: Any, force_lazy: bool
) -> Any:
    Xs = [_stored_X(a) for a in adatas]
    if all(X is None for X in Xs):
        return None
    if any(X is None for X in Xs):
        msg = (
            "Some (but not all) of the AnnData's to be concatenated had no .X value. "
            "Concatenation is currently only implemented for cases where all or none of"
            " the AnnData's have .X assigned."
        )
        raise NotImplementedError(msg)
    fn = _concat_fn(Xs, force_lazy=force_lazy)
    return fn(Xs, plans, axis=axis, fill_value=fill_value)


def _concat_pairwise(
    mappings: Sequence[Mapping], sizes: Sequence[int], join: str
) -> dict[str, Any]:
    if not any(lazy.is_lazy(v) for m in mappings for v in m.values()):
        return eager.concat_pairwise(mappings, sizes, join=join)
    keys = intersect_keys(mappings) if join == "inner" else union_keys(mappings)
    return {k: lazy.lazy_block_diag([m.get(k) for m in mappings], sizes) for k in keys}


def _stored_raw_X(raw: Any) -> Any:
    stored = getattr(raw, "_X", None)
    return stored if lazy.is_lazy(stored) else raw.X


def _concat_raw(adatas: Sequence[Any], **kwargs: Any) -> Any:
    from ..core.anndata import AnnData

    has_raw = [a.raw is not None for a in adatas]
    if all(has_raw):
        parts = [
            AnnData(
                X=_stored_raw_X(a.raw),
                obs=pd.DataFrame(index=a.obs_names),
                var=a.raw.var,
                varm=dict(a.raw.varm),
            )
            for a in adatas
        ]
        joined = concat(parts, **kwargs)
        if joined.n_obs == 0:
            # anndata tests ``if not raw`` on the joined AnnData, whose len() is n_obs
            return None
        return {"X": _stored_X(joined), "var": joined.var, "varm": dict(joined.varm)}
    if any(has_raw):
        msg = (
            "Only some AnnData objects have `.raw` attribute, not concatenating `.raw` attributes."
        )
        warnings.warn(msg, UserWarning, stacklevel=3)
    return None


def concat(
    adatas: Collection[Any] | Mapping[str, Any],
    *,
    axis: Literal["obs", 0, "var", 1] = "obs",
    join: Literal["inner", "outer"] = "inner",
    merge: Strategy = None,
    uns_merge: Strategy = None,
    label: str | None = None,
    keys: Collection | None = None,
    index_unique: str | None = None,
    fill_value: Any | None = None,
    pairwise: bool = False,
    force_lazy: bool = False,
) -> Any:
    """Concatenate AnnData objects along an axis (anndata's ``concat``, same results).

    Parameters
    ----------
    adatas
        The objects to concatenate. With a mapping, its keys are the ``keys``.
    axis
        ``"obs"``/0 stacks cells, ``"var"``/1 stacks variables.
    join
        ``"inner"`` keeps the names of the other axis present in every input, ``"outer"``
        their union (missing values: 0 for sparse, NaN for dense, or ``fill_value``).
    merge
        How other-axis elements (``var``, ``varm``, ``varp`` for ``axis="obs"``) are kept:
        None (nothing), ``"same"``, ``"unique"``, ``"first"``, ``"only"`` or a callable.
    uns_merge
        The same strategies for ``uns``, applied recursively.
    label
        Column of the concatenated axis' annotation recording each row's input (categorical).
    keys
        One name per input for ``label`` and ``index_unique``; default ``"0"``, ``"1"``, ...
    index_unique
        When given, names become ``f"{name}{index_unique}{key}"``.
    fill_value
        Value for entries introduced by an outer join.
    pairwise
        Keep ``obsp``/``varp`` of the concatenated axis, block-diagonally.
    force_lazy
        Concatenate ``X`` and ``layers`` lazily (dask arrays) even when every input is in
        memory. (anndata's flag makes its xarray-backed ``obs``/``var`` lazy; annscale's
        annotations are always pandas, so here it is about the matrices.)

    Returns
    -------
    An :class:`annscale.AnnData`. It is lazy (``X``/``layers`` dask arrays, nothing read yet)
    when any input's ``X`` or layer is lazy, or with ``force_lazy``; otherwise everything is
    in memory.
    """
    from ..core.anndata import AnnData

    merge_fn = resolve_merge_strategy(merge)
    uns_fn = resolve_merge_strategy(uns_merge)
    if isinstance(adatas, Mapping):
        if keys is not None:
            msg = (
                "Cannot specify categories in both mapping keys and using `keys`. "
                "Only specify this once."
            )
            raise TypeError(msg)
        keys, adatas = list(adatas.keys()), list(adatas.values())
    else:
        adatas = list(adatas)
    if keys is None:
        keys = np.arange(len(adatas)).astype(str)
    axis, axis_name = resolve_axis(axis)
    alt_axis, alt_name = resolve_axis(1 - axis)
    sizes = [a.shape[axis] for a in adatas]
    force_lazy = force_lazy or any(_has_lazy_matrix(a) for a in adatas)

    label_col = pd.Categorical.from_codes(np.repeat(np.arange(len(adatas)), sizes), categories=keys)
    index = _concat_keys_index(adatas, axis, label_col, index_unique)
    alt_index, plans = align_indices([_names(a, alt_axis) for a in adatas], join=join)

    annots = [getattr(a, axis_name) for a in adatas]
    check_combinable_columns([df.columns for df in annots], join=join)
    annot = concat_frames(annots, join=join, index=index)
    if label is not None:
        annot[label] = label_col
    if merge is None:
        # nothing is kept, so the inputs' annotations need no aligning (a reindex per input)
        alt_annot = pd.DataFrame(index=alt_index)
    else:
        alt_annot = merge_frames([getattr(a, alt_name) for a in adatas], alt_index, merge_fn)

    X = _concat_X(adatas, plans, axis, fill_value, force_lazy)

    layer_maps = [_stored_mapping(a, "layers") for a in adatas]
    layer_els = [v for m in layer_maps for v in m.values()]
    layers = eager.concat_mapping(
        layer_maps,
        sizes,
        join=join,
        axis=axis,
        plans=plans,
        fill_value=fill_value,
        concat_arrays=_concat_fn(layer_els, force_lazy=force_lazy),
    )
    m_maps = [_stored_mapping(a, f"{axis_name}m") for a in adatas]
    m_els = [v for m in m_maps for v in m.values()]
    mapping = eager.concat_mapping(
        m_maps,
        sizes,
        join=join,
        axis=axis,
        index=index,
        fill_value=fill_value,
        concat_arrays=_concat_fn(m_els, force_lazy=False),
    )
    p_mapping = (
        _concat_pairwise([dict(getattr(a, f"{axis_name}p")) for a in adatas], sizes, join)
        if pairwise
        else {}
    )

    alt_m = merge_fn(
        [
            {
                k: _reindex_element(v, plan, alt_index, axis=0)
                for k, v in getattr(a, f"{alt_name}m").items()
            }
            for a, plan in zip(adatas, plans)
        ]
    )
    alt_p = merge_fn(
        [
            {
                k: _reindex_element(
                    _reindex_element(v, plan, alt_index, axis=0), plan, alt_index, axis=1
                )
                for k, v in getattr(a, f"{alt_name}p").items()
            }
            for a, plan in zip(adatas, plans)
        ]
    )
    uns = uns_fn([a.uns for a in adatas])
    raw = _concat_raw(
        adatas,
        join=join,
        label=label,
        keys=keys,
        index_unique=index_unique,
        fill_value=fill_value,
        axis=axis,
    )
    return AnnData(
        X=X,
        layers=layers,
        uns=uns,
        raw=raw,
        **{
            axis_name: annot,
            alt_name: alt_annot,
            f"{axis_name}m": mapping,
            f"{alt_name}m": alt_m,
            f"{axis_name}p": p_mapping,
            f"{alt_name}p": alt_p,
        },
    )
