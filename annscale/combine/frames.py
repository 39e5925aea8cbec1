"""Concatenating and merging annotation dataframes (``obs``/``var`` and dataframe ``obsm``).

Column dtypes follow anndata: categoricals with different categories are joined into one
categorical over the (natural-sorted) union of categories; ordered categoricals stay ordered
only when every input has the same categories in the same order (otherwise the column
becomes ``object``); boolean columns missing from some inputs become pandas' nullable
``boolean``; everything else is left to ``pandas.concat`` (ints missing somewhere become
``float64``, mixed types ``object``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import reduce
from typing import Any

import pandas as pd
from natsort import natsorted

from .reindex import Join

__all__ = ["check_combinable_columns", "concat_frames", "merge_frames", "unified_dtype"]


def unified_dtype(dtypes: Sequence[Any], *, has_missing: bool) -> Any:
    """The dtype a column should take before concatenation, or None to let pandas decide.

    ``dtypes`` are the column's dtypes in the inputs that have it; ``has_missing`` says
    whether some input lacks the column (so the result must hold missing values).
    """
    cats = [d for d in dtypes if isinstance(d, pd.CategoricalDtype)]
    if cats:
        if len(cats) != len(dtypes):
            return None
        categories = reduce(lambda x, y: x.union(y), (d.categories for d in cats))
        if not any(d.ordered for d in cats):
            return pd.CategoricalDtype(natsorted(categories), ordered=False)
        non_empty = [d for d in cats if len(d.categories) > 0]
        if non_empty and all(
            d.ordered
            and len(d.categories) == len(categories)
            and bool((d.categories == categories).all())
            for d in non_empty
        ):
            return non_empty[0]
        return object
    if has_missing and all(pd.api.types.is_bool_dtype(d) for d in dtypes):
        return pd.BooleanDtype()
    return None


def unify_dtypes(frames: Sequence[pd.DataFrame]) -> list[pd.DataFrame]:
    """Shallow copies of ``frames`` with columns cast to their :func:`unified_dtype`."""
    frames = list(frames)
    per_frame = [df.dtypes.to_dict() for df in frames]
    columns = reduce(lambda x, y: x.union(y), [df.columns for df in frames])
    targets = {}
    for col in columns:
        dts = [d[col] for d in per_frame if col in d]
        missing = any(col not in d for d in per_frame)
        target = unified_dtype(dts, has_missing=missing)
        if target is not None:
            targets[col] = target
    if not targets:
        return frames
    out = []
    for df in frames:
        df = df.copy(deep=False)
        for col, dtype in targets.items():
            if col in df:
                df[col] = df[col].astype(dtype)
        out.append(df)
    return out


def check_combinable_columns(columns: Sequence[pd.Index], join: Join) -> None:
    """Refuse duplicated column names that would reach the result (ambiguous columns)."""
    repeated = reduce(lambda acc, c: acc.union(c[c.duplicated()]), columns, set())
    if join == "inner":
        common = reduce(lambda x, y: x & set(y), columns[1:], set(columns[0])) if columns else set()
        problems = repeated & common
    elif join == "outer":
        problems = repeated
    else:
        msg = f"`join` must be one of 'inner' or 'outer', got {join!r}"
        raise ValueError(msg)
    if problems:
        msg = (
            "Cannot combine dataframes as some contained duplicated column names - "
            f"causing ambiguity.\n\nThe problem columns are: {list(problems)}"
        )
        raise pd.errors.InvalidIndexError(msg)


def concat_frames(
    frames: Sequence[pd.DataFrame], *, join: Join, index: pd.Index, axis: int = 0
) -> pd.DataFrame:
    """Stack ``frames`` (rows in order) with unified column dtypes, then label rows ``index``."""
    df = pd.concat(unify_dtypes(frames), join=join, ignore_index=True, axis=axis)
    df.index = index
    return df


def merge_frames(
    frames: Sequence[pd.DataFrame],
    index: pd.Index,
    strategy: Callable[[Sequence[Mapping]], Mapping],
) -> pd.DataFrame:
    """The other axis' annotation: each input reindexed to ``index``, columns merged."""
    # frames without columns (e.g. var read without its columns when merge=None) need no
    # reindexing: an empty frame on the new index is the same thing, much cheaper
    aligned = [
        pd.DataFrame(index=index) if df.shape[1] == 0 else df.reindex(index=index) for df in frames
    ]
    return pd.DataFrame(strategy(aligned), index=index)
