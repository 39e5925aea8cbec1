"""obs/var annotation frames: construction, names, categoricals (anndata's rules).

Pure pandas helpers used by :class:`~annscale.AnnData`; nothing here reads storage.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping
from textwrap import dedent
from typing import Any, Literal

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype, is_string_dtype

from ..errors import ImplicitModificationWarning, ShapeMismatchError

__all__ = [
    "gen_dataframe",
    "prep_dim_index",
    "as_str_index",
    "make_index_unique",
    "strings_to_categoricals",
    "prune_unused_categories",
    "warn_names_duplicates",
]


def as_str_index(index: pd.Index) -> pd.Index:
    """``index`` converted to strings (object dtype; pandas' ``str`` dtype when infer_string)."""
    if not pd.options.future.infer_string:
        return index.astype(str)
    if isinstance(index.dtype, pd.StringDtype):
        return index
    return index.astype(pd.StringDtype(na_value=index.array.dtype.na_value))


def _default_index(n: int) -> pd.Index:
    return as_str_index(pd.RangeIndex(0, n))


def _length_error(source: str, attr: str, expected: int, actual: int) -> ShapeMismatchError:
    what = "row" if attr == "obs" else "column"
    if source == "X":
        msg = (
            f"Observations annot. `{attr}` must have as many rows as `X` has {what}s "
            f"({expected}), but has {actual} rows."
        )
    else:
        msg = f"`shape` is inconsistent with `{attr}` ({actual} {what}s instead of {expected})"
    return ShapeMismatchError(msg, element=f"/{attr}")


def gen_dataframe(
    anno: Any,
    attr: Literal["obs", "var"],
    *,
    length: int | None,
    source: Literal["X", "shape"] = "shape",
) -> pd.DataFrame:
    """An obs/var DataFrame from ``None``, a mapping of columns or a DataFrame.

    DataFrames are shallow-copied; a non-string index is converted to strings with an
    :class:`~annscale.ImplicitModificationWarning` ("Transforming to str index."), as anndata
    does. A mapping may name its index with ``obs_names``/``row_names`` (``var_names``/
    ``col_names``). ``length`` is the number of rows required (``None``: any).
    """
    if isinstance(anno, pd.DataFrame):
        if isinstance(anno.index, pd.MultiIndex):
            raise ValueError(
                "pandas.MultiIndex not supported as index for obs or var on declaration."
            )
        if isinstance(anno.columns, pd.MultiIndex):
            raise ValueError(
                f"MultiIndex columns are not supported in AnnData. "
                f"Please use a single-level index for {attr}."
            )
        if length is not None and length != len(anno):
            raise _length_error(source, attr, length, len(anno))
        df = anno.copy(deep=False)
        if not is_string_dtype(df.index[~df.index.isna()]):
            warnings.warn("Transforming to str index.", ImplicitModificationWarning, stacklevel=3)
            df.index = as_str_index(df.index)
        if not len(df.columns):
            df.columns = df.columns.astype(str)
        return df
    if isinstance(anno, pd.Series | pd.Index):
        raise ValueError(f"Cannot convert {type(anno)} to {attr} DataFrame")
    if anno is not None and not isinstance(anno, Mapping):
        raise ValueError(f"Cannot convert {type(anno)} to {attr} DataFrame")
    anno = dict(anno) if anno else {}
    index_names = ("obs_names", "row_names") if attr == "obs" else ("var_names", "col_names")
    for name in index_names:
        if name in anno:
            df = pd.DataFrame(anno, index=anno[name], columns=[k for k in anno if k != name])
            break
    else:
        df = pd.DataFrame(
            anno,
            index=None if length is None else _default_index(length),
            columns=None if anno else pd.Index([], dtype=str),
        )
    if length is None:
        df.index = _default_index(len(df))
    elif length != len(df):
        raise _length_error(source, attr, length, len(df))
    return df


def prep_dim_index(value: Any, attr: str, expected_length: int, shape: tuple[int, int]) -> pd.Index:
    """Validate new ``obs_names``/``var_names`` (length, name type, string values)."""
    if expected_length != len(value):
        raise ShapeMismatchError(
            f"Length of passed value for {attr}_names is {len(value)}, "
            f"but this AnnData has shape: {shape}",
            element=f"/{attr}/_index",
        )
    if isinstance(value, pd.Index) and not isinstance(value.name, str | type(None)):
        raise ValueError(
            f"AnnData expects .{attr}.index.name to be a string or None, "
            f"but you passed a name of type {type(value.name).__name__!r}"
        )
    if not isinstance(value, pd.Index):
        value = as_str_index(pd.Index(value))
        if not isinstance(value.name, str | type(None)):
            value.name = None
    if (
        len(value) > 0
        and not isinstance(value, pd.RangeIndex)
        and infer_dtype(value) not in {"string", "bytes"}
    ):
        sample = list(value[: min(len(value), 5)])
        msg = dedent(
            f"""
            AnnData expects .{attr}.index to contain strings, but got values like:
                {sample}

                Inferred to be: {infer_dtype(value)}
            """
        )
        warnings.warn(msg, stacklevel=3)
    return value


def warn_names_duplicates(attr: str) -> None:
    names = "Observation" if attr == "obs" else "Variable"
    warnings.warn(
        f"{names} names are not unique. To make them unique, call `.{attr}_names_make_unique`.",
        UserWarning,
        stacklevel=3,
    )


def make_index_unique(index: pd.Index, join: str = "-") -> pd.Index:
    """Append ``{join}1``, ``{join}2``, … to repeated names (first occurrence unchanged).

    A candidate that already exists is skipped (the counter moves on); when that happens a
    ``UserWarning`` lists up to five such collisions. Missing values are left alone.
    """
    if index.is_unique:
        return index
    values = index.array.copy()
    dup_mask = index.duplicated(keep="first") & ~index.isna()
    dups = values[dup_mask]
    taken = set(values)
    counts: Counter[str] = Counter()
    collisions: list[str] = []
    collided = False
    for i, name in enumerate(dups):
        while True:
            counts[name] += 1
            candidate = f"{name}{join}{counts[name]}"
            if candidate not in taken:
                taken.add(candidate)
                dups[i] = candidate
                break
            collided = True
            if len(collisions) < 5:
                collisions.append(candidate)
    if collided:
        warnings.warn(
            f"Suffix used ({join}[0-9]+) to deduplicate index values may make index values "
            "difficult to interpret. There values with a similar suffixes in the index. "
            "Consider using a different delimiter by passing `join={delimiter}`. "
            "Example key collisions generated by the make_index_unique algorithm: "
            f"{collisions}",
            UserWarning,
            stacklevel=3,
        )
    values[dup_mask] = dups
    return pd.Index(values, name=index.name)


def strings_to_categoricals(df: pd.DataFrame) -> None:
    """Turn string columns of ``df`` into categoricals, in place.

    Only columns whose number of distinct values is below the number of rows are
    converted; categories are natural-sorted (``natsort``), as anndata does.
    """
    from natsort import natsorted

    for key in [k for k in df.columns if infer_dtype(df[k]) == "string"]:
        cat = pd.Categorical(df[key])
        if len(cat.categories) >= len(cat):
            continue
        order = natsorted(cat.categories)
        if not np.array_equal(cat.categories, order):
            cat = cat.reorder_categories(order)
        df[key] = cat


def prune_unused_categories(
    df_full: pd.DataFrame, df_sub: pd.DataFrame, uns: dict[str, Any]
) -> pd.DataFrame:
    """``df_sub`` with unused categories removed; ``uns['<col>_colors']`` subset to match.

    ``df_sub`` is shallow-copied before any column is replaced (the parent is never touched);
    ``uns`` must be a (shallow) copy owned by the caller.
    """
    cat_cols = [k for k in df_full.columns if isinstance(df_full[k].dtype, pd.CategoricalDtype)]
    if not cat_cols:
        return df_sub
    df_sub = df_sub.copy(deep=False)
    for k in cat_cols:
        all_categories = df_full[k].cat.categories
        df_sub[k] = df_sub[k].cat.remove_unused_categories()
        color_key = f"{k}_colors"
        if color_key not in uns:
            continue
        colors = uns[color_key]
        if np.ndim(colors) == 0:
            uns[color_key] = np.array(colors)[(None,)]
        elif len(colors) != len(all_categories):
            del uns[color_key]
        else:
            keep = np.flatnonzero(np.isin(all_categories, df_sub[k].cat.categories))
            uns[color_key] = np.array(colors)[(keep,)]
    return df_sub
