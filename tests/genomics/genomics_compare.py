"""Element-by-element comparison of what our readers give with anndata/scanpy objects."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse


def computed(x: Any) -> Any:
    return x.compute() if hasattr(x, "compute") else x


def assert_matrix_equal(ours: Any, theirs: Any, what: str = "X") -> None:
    """Same type (scipy class or ndarray), dtype, shape and values (NaN equal to NaN)."""
    ours = computed(ours)
    assert type(ours) is type(theirs), f"{what}: {type(ours)} != {type(theirs)}"
    assert ours.dtype == theirs.dtype, f"{what}: {ours.dtype} != {theirs.dtype}"
    assert ours.shape == theirs.shape, f"{what}: {ours.shape} != {theirs.shape}"
    a = ours.toarray() if sparse.issparse(ours) else np.asarray(ours)
    b = theirs.toarray() if sparse.issparse(theirs) else np.asarray(theirs)
    np.testing.assert_array_equal(a, b, err_msg=what)


def assert_same(ours: Any, theirs: Any) -> None:
    """``ours`` (our Parts or AnnData) equals ``theirs`` (an anndata.AnnData), element by element."""
    assert tuple(ours.shape) == tuple(theirs.shape)
    assert_matrix_equal(ours.X, theirs.X)
    pd.testing.assert_frame_equal(ours.obs, theirs.obs, check_exact=True)
    pd.testing.assert_frame_equal(ours.var, theirs.var, check_exact=True)
    for name in ("layers", "obsm", "varm"):
        mine, other = dict(getattr(ours, name)), dict(getattr(theirs, name))
        assert list(mine) == list(other), f"{name}: {list(mine)} != {list(other)}"
        for key in mine:
            assert_matrix_equal(mine[key], other[key], f"{name}[{key!r}]")
    assert_uns_equal(dict(ours.uns), dict(theirs.uns))


def assert_uns_equal(ours: dict, theirs: dict) -> None:
    assert list(ours) == list(theirs)
    for key in ours:
        a, b = ours[key], theirs[key]
        if isinstance(a, dict):
            assert_uns_equal(a, dict(b))
        elif isinstance(b, str):
            # loompy hands anndata numpy.str_ scalars (a str subclass); we give plain str
            assert type(a) is str and a == b, f"uns[{key!r}]: {a!r} != {b!r}"
        else:
            assert type(a) is type(b) and a == b, f"uns[{key!r}]: {a!r} != {b!r}"
