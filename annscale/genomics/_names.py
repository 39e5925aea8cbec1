"""Small helpers for names: decoding stored strings and making an index unique."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd

__all__ = ["as_str_array", "make_index_unique", "str_index"]


def as_str_array(values: np.ndarray) -> np.ndarray:
    """An ``object`` array of ``str`` from bytes (decoded as UTF-8), str or object values."""
    values = np.asarray(values)
    if values.dtype.kind == "S":
        return np.array([v.decode("utf-8") for v in values.tolist()], dtype=object)
    if values.dtype.kind == "O":
        return np.array(
            [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in values.tolist()],
            dtype=object,
        )
    return values.astype(str).astype(object)


def str_index(values: np.ndarray | pd.Index, name: str | None = None) -> pd.Index:
    """A pandas ``Index`` of ``str`` (``object`` dtype, as anndata keeps obs/var names)."""
    return pd.Index(as_str_array(np.asarray(values)), dtype=object, name=name)


def make_index_unique(index: pd.Index, join: str = "-") -> pd.Index:
    """Append ``-1``, ``-2``, ... to repeated names, as ``AnnData.var_names_make_unique``.

    The first occurrence keeps its name; a suffixed name that already exists in the index
    is skipped in favour of the next number.
    """
    if index.is_unique:
        return index
    values = np.asarray(index, dtype=object).copy()
    repeated = np.flatnonzero(index.duplicated(keep="first") & ~index.isna())
    taken = set(values.tolist())
    counts: Counter[str] = Counter()
    for i in repeated:
        base = values[i]
        while True:
            counts[base] += 1
            candidate = f"{base}{join}{counts[base]}"
            if candidate not in taken:
                break
        taken.add(candidate)
        values[i] = candidate
    return pd.Index(values, dtype=object, name=index.name)
