"""The plan of a concatenation, for ``annscale concat --dry-run``: nothing is written.

Built from each input's metadata, as :func:`annscale.read_lazy` opens it (``obs``, ``var``
and array metadata; no matrix chunk is read): cells per input, the var union and
intersection, obs columns whose dtypes differ between inputs (or that some inputs lack)
and the dtype :func:`annscale.concat` gives them, and an estimate of the output's size
(uncompressed bytes) and of its chunks.

Estimates: an outer join keeps every stored nonzero; an inner join keeps each input's
nonzeros in proportion to the share of its vars that are kept (assumes nonzeros spread
evenly over vars). Sparse matrices take ``nnz * (value + index bytes)`` plus ``indptr``;
dense ones ``n_obs * n_vars * itemsize``. Chunks follow the lazy engine: each input's
matrix is cut into chunks of about ``annscale.settings.chunk_target_bytes`` stored bytes
and the concatenation keeps them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["InputPlan", "ColumnPlan", "ConcatPlan", "build_plan", "render_plan"]

OPEN_THREADS = 8


@dataclass
class MatrixMeta:
    """A stored matrix (X or a layer), from metadata only."""

    encoding: str  # csr_matrix, csc_matrix, array
    dtype: str
    shape: tuple[int, int]
    nnz: int | None  # None for dense
    stored_bytes: int  # uncompressed bytes of values (+ indices) as stored


@dataclass
class InputPlan:
    url: str
    key: str
    n_obs: int
    n_vars: int
    X: str  # "csr_matrix float32, nnz 123" or "none"
    chunks: int  # lazy chunks of X
    layers: list[str] = field(default_factory=list)


@dataclass
class ColumnPlan:
    """An obs column whose dtype differs between inputs, or that some inputs lack."""

    column: str
    dtypes: dict[str, list[str]]  # dtype -> keys of the inputs with that dtype
    missing_in: list[str]
    result: str  # the dtype after concatenation, or "dropped (inner join)"


@dataclass
class ConcatPlan:
    inputs: list[InputPlan]
    join: str
    n_obs: int
    var_union: int
    var_intersection: int
    n_vars: int
    obs_columns: list[str]
    conflicts: list[ColumnPlan]
    duplicated_obs_names: int
    x_dtype: str | None
    x_sparse: bool | None
    estimated_nnz: int | None
    estimated_bytes: int
    chunks: int
    rows_per_chunk: int
    chunk_target_bytes: int
    label: str | None = None
    index_unique: str | None = None
    layers: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------- reading


def _matrix_meta(elem: Any) -> MatrixMeta | None:
    from ..spec.registry import get_spec

    spec = get_spec(elem)
    if elem.is_group and spec.encoding_type in ("csr_matrix", "csc_matrix"):
        data, indices = elem["data"], elem["indices"]
        nnz = int(data.shape[0])
        shape = tuple(int(s) for s in elem.attrs["shape"])
        per = np.dtype(data.dtype).itemsize + np.dtype(indices.dtype).itemsize
        return MatrixMeta(spec.encoding_type, str(data.dtype), shape, nnz, nnz * per)  # type: ignore[arg-type]
    if not elem.is_group and len(elem.shape) == 2 and np.dtype(elem.dtype).kind in "biufc":
        shape = (int(elem.shape[0]), int(elem.shape[1]))
        return MatrixMeta("array", str(elem.dtype), shape, None, elem.size * elem.dtype.itemsize)
    return None


@dataclass
class _Opened:
    url: str
    key: str
    obs: pd.DataFrame
    var_names: pd.Index
    X: MatrixMeta | None
    layers: dict[str, MatrixMeta]


def _open(url: str, key: str, options: dict[str, Any] | None) -> _Opened:
    """``obs`` and var names (as ``read_lazy`` reads them) and matrix metadata."""
    from ..lazy.open import read_lazy
    from ..storage.cache import get_root
    from ..storage.location import as_location

    loc = as_location(url, options)
    adata = read_lazy(loc)
    root = get_root(loc)  # the root read_lazy opened (per-process cache)
    x = _matrix_meta(root["X"]) if "X" in root else None
    layers: dict[str, MatrixMeta] = {}
    if "layers" in root and root["layers"].is_group:
        for k in root["layers"].keys():  # type: ignore[union-attr]
            meta = _matrix_meta(root["layers"][k])  # type: ignore[index]
            if meta is not None:
                layers[k] = meta
    return _Opened(url, key, adata.obs, adata.var_names, x, layers)


def _open_all(
    urls: Sequence[str],
    keys: Sequence[str],
    options: dict[str, Any] | None,
    on_done: Callable[[], None],
) -> list[_Opened]:
    def one(i: int) -> _Opened:
        try:
            return _open(urls[i], keys[i], options)
        finally:
            on_done()

    with ThreadPoolExecutor(max(1, min(OPEN_THREADS, len(urls)))) as pool:
        return list(pool.map(one, range(len(urls))))


# ---------------------------------------------------------------------------- planning


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        return "category (ordered)" if dtype.ordered else "category"
    return str(dtype)


def _column_plans(opened: Sequence[_Opened], join: str) -> tuple[list[str], list[ColumnPlan]]:
    """The obs columns of the result and the ones whose dtype must be resolved."""
    from ..combine.frames import concat_frames

    heads = [o.obs.iloc[:1] for o in opened]
    n = sum(len(h) for h in heads)
    result = concat_frames(heads, join=join, index=pd.RangeIndex(n))  # type: ignore[arg-type]
    columns: list[str] = []
    for o in opened:
        columns.extend(c for c in o.obs.columns if c not in columns)
    plans = []
    for col in columns:
        dtypes: dict[str, list[str]] = {}
        missing = []
        for o in opened:
            if col in o.obs.columns:
                dtypes.setdefault(_dtype_name(o.obs[col].dtype), []).append(o.key)
            else:
                missing.append(o.key)
        if len(dtypes) <= 1 and not missing:
            continue
        if col in result.columns:
            resolved = _dtype_name(result[col].dtype)
            if missing:
                resolved += ", missing values where absent"
        else:
            resolved = "dropped (not in every input; inner join)"
        plans.append(ColumnPlan(str(col), dtypes, missing, resolved))
    return [str(c) for c in result.columns], plans


def _estimate(
    metas: Sequence[MatrixMeta | None], n_vars_in: Sequence[int], kept: Sequence[int], n_obs: int,
    n_vars: int,
) -> tuple[int | None, int, str | None, bool | None]:  # fmt: skip
    """Estimated ``(nnz, bytes, dtype, sparse)`` of one concatenated matrix."""
    present = [m for m in metas if m is not None]
    if not present:
        return None, 0, None, None
    dtype = np.result_type(*[np.dtype(m.dtype) for m in present])
    sparse = any(m.nnz is not None for m in present)
    if not sparse:
        return None, n_obs * n_vars * dtype.itemsize, str(dtype), False
    nnz = 0
    for m, n_in, k in zip(metas, n_vars_in, kept):
        if m is None:
            continue
        stored = m.nnz if m.nnz is not None else m.shape[0] * m.shape[1]
        nnz += stored if n_in == 0 or k >= n_in else round(stored * k / n_in)
    index_bytes = 8 if max(n_obs, n_vars) >= 2**31 - 1 else 4
    total = nnz * (dtype.itemsize + index_bytes) + (n_obs + 1) * 8
    return nnz, total, str(dtype), True


def build_plan(
    urls: Sequence[str],
    keys: Sequence[str],
    *,
    join: str,
    label: str | None,
    index_unique: str | None,
    options: dict[str, Any] | None,
    on_opened: Callable[[], None] = lambda: None,
) -> ConcatPlan:
    """The plan of concatenating ``urls`` along obs (reads metadata, obs and var only)."""
    from .._settings import settings

    opened = _open_all(urls, keys, options, on_opened)
    target = settings.chunk_target_bytes
    union = opened[0].var_names
    inter = opened[0].var_names
    for o in opened[1:]:
        union = union.union(o.var_names, sort=False)
        inter = inter.intersection(o.var_names, sort=False)
    out_vars = union if join == "outer" else inter
    n_obs = sum(len(o.obs) for o in opened)
    kept = [int(o.var_names.isin(out_vars).sum()) for o in opened]
    n_vars_in = [len(o.var_names) for o in opened]
    columns, conflicts = _column_plans(opened, join)
    dup = 0
    if index_unique is None:  # with a separator, names get their input's key appended
        names = pd.Index(np.concatenate([o.obs.index.to_numpy(dtype=object) for o in opened]))
        dup = int(names.duplicated().sum())
    nnz, x_bytes, x_dtype, x_sparse = _estimate(
        [o.X for o in opened], n_vars_in, kept, n_obs, len(out_vars)
    )
    layer_keys: list[str] = []
    for o in opened:
        layer_keys.extend(k for k in o.layers if k not in layer_keys)
    if join == "inner":
        layer_keys = [k for k in layer_keys if all(k in o.layers for o in opened)]
    layer_bytes = sum(
        _estimate([o.layers.get(k) for o in opened], n_vars_in, kept, n_obs, len(out_vars))[1]
        for k in layer_keys
    )
    obs_bytes = sum(int(o.obs.memory_usage(deep=True).sum()) for o in opened)
    per_input_chunks = [
        max(1, math.ceil(o.X.stored_bytes / target)) if o.X is not None else 0 for o in opened
    ]
    chunks = sum(per_input_chunks)
    inputs = [
        InputPlan(
            o.url,
            o.key,
            len(o.obs),
            len(o.var_names),
            (
                f"{o.X.encoding} {o.X.dtype}" + (f", nnz {o.X.nnz}" if o.X.nnz is not None else "")
                if o.X is not None
                else "none"
            ),
            c,
            list(o.layers),
        )
        for o, c in zip(opened, per_input_chunks)
    ]
    return ConcatPlan(
        inputs=inputs,
        join=join,
        n_obs=n_obs,
        var_union=len(union),
        var_intersection=len(inter),
        n_vars=len(out_vars),
        obs_columns=[*columns, *([label] if label and label not in columns else [])],
        conflicts=conflicts,
        duplicated_obs_names=dup,
        x_dtype=x_dtype,
        x_sparse=x_sparse,
        estimated_nnz=nnz,
        estimated_bytes=x_bytes + layer_bytes + obs_bytes,
        chunks=chunks,
        rows_per_chunk=math.ceil(n_obs / chunks) if chunks else 0,
        chunk_target_bytes=target,
        label=label,
        index_unique=index_unique,
        layers=layer_keys,
    )


def render_plan(plan: ConcatPlan, output: str) -> list[str]:
    """The plan as text lines."""
    from .tree import format_bytes

    lines = [f"plan: concatenate {len(plan.inputs)} inputs along obs into {output} (dry run)"]
    lines.append("inputs:")
    width = max(len(i.key) for i in plan.inputs)
    for i in plan.inputs:
        lines.append(
            f"  {i.key:<{width}}  {i.n_obs:>9} cells  {i.n_vars:>7} vars  X {i.X}  "
            f"({i.chunks} chunk{'s' if i.chunks != 1 else ''})  {i.url}"
        )
    lines.append(
        f"vars: union {plan.var_union}, intersection {plan.var_intersection}; "
        f"{plan.join} join keeps {plan.n_vars}"
    )
    lines.append(f"result: {plan.n_obs} cells x {plan.n_vars} vars")
    if plan.label:
        lines.append(f"label: obs[{plan.label!r}] records each cell's input (categorical of keys)")
    if plan.duplicated_obs_names:
        lines.append(
            f"obs names: {plan.duplicated_obs_names} repeated across inputs; "
            "pass --index-unique SEP to make them unique"
        )
    if plan.conflicts:
        lines.append("obs columns to reconcile:")
        for c in plan.conflicts:
            parts = [f"{d} in {', '.join(keys)}" for d, keys in c.dtypes.items()]
            if c.missing_in:
                parts.append(f"absent in {', '.join(c.missing_in)}")
            lines.append(f"  {c.column}: {'; '.join(parts)} -> {c.result}")
    else:
        lines.append("obs columns to reconcile: none")
    if plan.layers:
        lines.append(f"layers: {', '.join(plan.layers)}")
    if plan.x_dtype is not None:
        kind = "sparse" if plan.x_sparse else "dense"
        nnz = f", about {plan.estimated_nnz} nonzeros" if plan.estimated_nnz is not None else ""
        lines.append(f"X: {kind} {plan.x_dtype}{nnz}")
    lines.append(
        f"estimated output size: {format_bytes(plan.estimated_bytes)} uncompressed "
        "(X, layers and obs)"
    )
    lines.append(
        f"chunks: {plan.chunks} row chunks of about {plan.rows_per_chunk} cells "
        f"(target {format_bytes(plan.chunk_target_bytes)} of stored data each)"
    )
    return lines
