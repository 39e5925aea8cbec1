"""Data frames and their columns: ``dataframe`` (0.2.0; 0.1.0 read in ``legacy.py``),
``categorical`` 0.2.0, ``nullable-integer``/``nullable-boolean`` 0.1.0 and
``nullable-string-array`` 0.1.0.

Data frame layout (anndata's rules):

* group attributes ``_index`` (the key of the index child) and ``column-order`` (the column
  names, in order; an empty list is stored as an empty float64 array in HDF5);
* the index child is named after ``df.index.name``, or ``"_index"`` when unnamed; on read the
  name is restored unless it is ``"_index"``. A column named ``"_index"`` is reserved. If the
  index name equals a column name, both must hold the same values (they share one child);
* one child per column, encoded by the column's backing array (numpy -> ``array`` /
  ``string-array``, ``Categorical`` -> ``categorical``, masked arrays -> ``nullable-*``,
  pandas string arrays -> ``nullable-string-array``);
* HDF5 groups of frames with more than 5000 columns are created with ``track_order=True``
  (dense attribute storage, so ``column-order`` may exceed HDF5's 64 KiB attribute limit).

Strings and ``annscale.settings.allow_write_nullable_strings``
--------------------------------------------------------------
How string columns and indexes are encoded is chosen by this setting:

``None`` (default)
    Follow the data: numpy/object string columns (pandas 2's default) are written as
    ``string-array``; pandas extension string arrays (``StringArray``,
    ``ArrowStringArray``, pandas 3's default ``str`` dtype) as ``nullable-string-array`` with
    ``na-value`` ``"NA"`` (``pd.NA`` semantics) or ``"NaN"`` (pandas 3 ``str``).
``False``
    Maximum reader compatibility (anndata < 0.11, anndataR, zellkonverter, Muon.jl): always
    plain ``string-array``; missing values are an error.
``True``
    Always ``nullable-string-array``, also for object string columns and indexes.

Reading does not assume any dtype: string arrays come back as ``object`` arrays and
``pandas`` decides (under pandas 3 they become its ``str`` dtype).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .._settings import settings
from ..errors import FormatError
from ..storage.elements import Element, Group
from .registry import (
    IOSpec,
    ReadContext,
    WriteContext,
    read_elem,
    register_reader,
    register_writer,
    write_elem,
)

__all__ = ["frame_from_columns", "string_array_types"]

DATAFRAME = IOSpec("dataframe", "0.2.0")
CATEGORICAL = IOSpec("categorical", "0.2.0")
NULLABLE_INTEGER = IOSpec("nullable-integer", "0.1.0")
NULLABLE_BOOLEAN = IOSpec("nullable-boolean", "0.1.0")
NULLABLE_STRING = IOSpec("nullable-string-array", "0.1.0")

_TRACK_ORDER_COLUMNS = 5000


def string_array_types() -> tuple[type, ...]:
    """pandas' extension array classes that hold strings (they vary across pandas versions)."""
    types: list[type] = [pd.arrays.StringArray, pd.arrays.ArrowStringArray]
    try:
        from pandas.core.arrays.string_ import StringArrayNumpySemantics

        types.append(StringArrayNumpySemantics)
    except ImportError:
        pass
    try:
        from pandas.core.arrays.string_arrow import ArrowStringArrayNumpySemantics

        types.append(ArrowStringArrayNumpySemantics)
    except ImportError:
        pass
    return tuple(types)


# ------------------------------------------------------------------------------ data frames


@register_reader("group", DATAFRAME)
def read_dataframe(elem: Element, ctx: ReadContext) -> pd.DataFrame:
    """Read every column listed in ``column-order`` and the ``_index`` child."""
    attrs = elem.attrs
    if "_index" not in attrs:
        raise FormatError(
            "dataframe group has no '_index' attribute", source=elem.source, element=elem.path
        )
    columns = _as_str_list(attrs.get("column-order", []))
    index_key = str(attrs["_index"])
    what = "a column listed in 'column-order'"
    values = {c: read_elem(elem.require(c, what), ctx) for c in columns}  # type: ignore[union-attr]
    index = read_elem(elem.require(index_key, "the index named by '_index'"), ctx)  # type: ignore[union-attr]
    return frame_from_columns(values, columns, index, index_key)


def _as_str_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def frame_from_columns(
    values: dict[str, Any], columns: list[str], index: Any, index_key: str
) -> pd.DataFrame:
    """Assemble a frame as anndata does: index name restored unless the key is ``_index``."""
    index = pd.Index(index)
    df = pd.DataFrame(
        {c: values[c] for c in columns},
        index=index,
        columns=columns if columns else None,
    )
    df.index.name = None if index_key == "_index" else index_key
    return df


def _check_key(key: Any, where: str) -> str:
    if not isinstance(key, str):
        raise TypeError(
            f"{key!r} of type {type(key).__name__} is an invalid key in {where}: "
            "dataframe column names must be str"
        )
    return str(key)


@register_writer(pd.DataFrame, spec=DATAFRAME)
def write_dataframe(group: Group, key: str, df: pd.DataFrame, ctx: WriteContext) -> Group:
    where = f"{group.path.rstrip('/')}/{key} in {group.source}"
    if "_index" in df.columns:
        raise ValueError(f"'_index' is a reserved name for dataframe columns ({where})")
    if not df.columns.is_unique:
        dups = list(df.columns[df.columns.duplicated()])
        raise ValueError(
            f"Found repeated column names: {dups}. Column names must be unique ({where})"
        )
    columns = [_check_key(c, where) for c in df.columns]
    if df.index.name is not None:
        index_key = _check_key(df.index.name, where)
        if index_key in columns and not pd.Series(df.index, index=df.index).equals(df[index_key]):
            raise ValueError(
                f"DataFrame.index.name ({index_key!r}) is also used by a column whose values "
                f"are different ({where})"
            )
    else:
        index_key = "_index"
    if group.backend == "hdf5" and len(columns) > _TRACK_ORDER_COLUMNS:
        g = group.create_group(key, track_order=True)  # type: ignore[call-arg]
    else:
        g = group.create_group(key)
    g.set_attrs({"column-order": columns})
    g.set_attrs({"_index": index_key})
    write_elem(g, index_key, _string_policy(df.index._values), ctx)
    for name, series in df.items():
        write_elem(g, str(name), _string_policy(series._values), ctx)
    return g


def _is_object_strings(values: Any) -> bool:
    return (
        isinstance(values, np.ndarray)
        and values.dtype.kind == "O"
        and values.ndim == 1
        and pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty")
    )


def _string_policy(values: Any) -> Any:
    """Apply ``settings.allow_write_nullable_strings`` to a column or index backing array."""
    if settings.allow_write_nullable_strings is True and _is_object_strings(values):
        return pd.array(values, dtype=pd.StringDtype())
    return values


# ------------------------------------------------------------------------------ categorical


@register_reader("group", CATEGORICAL)
def read_categorical(elem: Element, ctx: ReadContext) -> pd.Categorical:
    codes = read_elem(elem.require("codes", "the codes of a categorical"), ctx)  # type: ignore[union-attr]
    categories = read_elem(elem.require("categories", "the categories of a categorical"), ctx)  # type: ignore[union-attr]
    codes = np.asarray(codes)
    if len(codes) and (codes.max(initial=-1) >= len(categories) or codes.min(initial=0) < -1):
        raise FormatError(
            f"categorical codes must lie in [-1, {len(categories)}) (the number of categories), "
            f"found values in [{codes.min()}, {codes.max()}]",
            source=elem.source,
            element=f"{elem.path.rstrip('/')}/codes",
        )
    return pd.Categorical.from_codes(
        codes, categories=categories, ordered=bool(elem.attrs.get("ordered", False))
    )


@register_writer(pd.Categorical, spec=CATEGORICAL)
def write_categorical(group: Group, key: str, value: pd.Categorical, ctx: WriteContext) -> Group:
    g = group.create_group(key)
    g.set_attrs({"ordered": bool(value.ordered)})
    write_elem(g, "codes", np.asarray(value.codes), ctx)
    write_elem(g, "categories", value.categories.to_numpy(), ctx)
    return g


# ------------------------------------------------------------------------------ nullable arrays


def _read_values_mask(elem: Element, ctx: ReadContext) -> tuple[np.ndarray, np.ndarray]:
    values = read_elem(elem.require("values", "the values of a nullable array"), ctx)  # type: ignore[union-attr]
    mask = read_elem(elem.require("mask", "the mask of a nullable array"), ctx)  # type: ignore[union-attr]
    values, mask = np.asarray(values), np.asarray(mask, dtype=bool)
    if values.shape != mask.shape:
        raise FormatError(
            f"nullable array values {values.shape} and mask {mask.shape} differ in shape",
            source=elem.source,
            element=elem.path,
        )
    return values, mask


@register_reader("group", NULLABLE_INTEGER)
def read_nullable_integer(elem: Element, ctx: ReadContext) -> pd.arrays.IntegerArray:
    values, mask = _read_values_mask(elem, ctx)
    if values.dtype.kind not in "iu":
        raise FormatError(
            f"nullable-integer values must be integers, found {values.dtype}",
            source=elem.source,
            element=f"{elem.path.rstrip('/')}/values",
        )
    return pd.arrays.IntegerArray(values, mask=mask)


@register_reader("group", NULLABLE_BOOLEAN)
def read_nullable_boolean(elem: Element, ctx: ReadContext) -> pd.arrays.BooleanArray:
    values, mask = _read_values_mask(elem, ctx)
    return pd.arrays.BooleanArray(values.astype(bool), mask=mask)


@register_reader("group", NULLABLE_STRING)
def read_nullable_string(elem: Element, ctx: ReadContext) -> pd.api.extensions.ExtensionArray:
    """Read strings + mask as a pandas string array.

    ``na-value`` ``"NaN"`` gives pandas' NaN-semantics string dtype (pandas >= 2.3, the
    pandas 3 default ``str``); otherwise (``"NA"`` or absent) ``pd.StringDtype()``.
    """
    values, mask = _read_values_mask(elem, ctx)
    na_value = elem.attrs.get("na-value", "NA")
    dtype = pd.StringDtype()
    if na_value == "NaN":
        try:
            dtype = pd.StringDtype(na_value=np.nan)
        except TypeError:  # pandas < 2.3 has no NaN-semantics string dtype
            pass
    values = values.astype(object)
    values[mask] = None
    return pd.array(values, dtype=dtype)


@register_writer(pd.arrays.IntegerArray, spec=NULLABLE_INTEGER)
@register_writer(pd.arrays.BooleanArray, spec=NULLABLE_BOOLEAN)
def write_nullable(group: Group, key: str, value: Any, ctx: WriteContext) -> Group:
    g = group.create_group(key)
    write_elem(g, "values", value.to_numpy(na_value=0, dtype=value.dtype.numpy_dtype), ctx)
    write_elem(g, "mask", np.asarray(value.isna(), dtype=bool), ctx)
    return g


def _na_value_name(value: Any) -> str:
    na = getattr(value.dtype, "na_value", pd.NA)
    return "NaN" if isinstance(na, float) and np.isnan(na) else "NA"


def write_nullable_string(group: Group, key: str, value: Any, ctx: WriteContext) -> Group:
    """Write a pandas string array; ``allow_write_nullable_strings=False`` writes ``string-array``."""
    mask = np.asarray(value.isna(), dtype=bool)
    if settings.allow_write_nullable_strings is False:
        if mask.any():
            raise ValueError(
                "cannot write missing values as a plain 'string-array' because "
                "annscale.settings.allow_write_nullable_strings is False "
                f"({group.path.rstrip('/')}/{key} in {group.source})"
            )
        return write_elem(group, key, np.asarray(value.to_numpy(), dtype=object), ctx)
    g = group.create_group(key)
    g.set_attrs({"na-value": _na_value_name(value)})
    strings = np.asarray(value.to_numpy(dtype=object, na_value=""), dtype=object)
    write_elem(g, "values", strings, ctx)
    write_elem(g, "mask", mask, ctx)
    return g


for _cls in string_array_types():
    register_writer(_cls, spec=NULLABLE_STRING)(write_nullable_string)
