"""Minibatches: cutting shuffled fetch groups into batches, and what a batch looks like.

:func:`minibatches` turns the fetch groups of one shard (with their in-memory orders) into
:class:`~annscale.minibatch.fetch.Rows` of exactly ``batch_size`` rows; rows left over at the
end of a group start the next group's first batch, so only the shard's last batch can be
short (and is dropped with ``drop_last``).

A batch is then given to the user as

* :func:`as_anndata`: an in-memory :class:`annscale.AnnData` — ``X`` scipy CSR (sparse
  matrices) or numpy, ``obs`` holding the requested columns with the cells' ``obs_names``
  as index (categoricals keep all the categories of the loaded object, so codes agree
  between batches), ``var`` of the loaded object, and the requested ``obsm`` values; or
* :func:`as_torch`: a dict of torch tensors — see :class:`TorchConverter`.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..errors import FormatError
from .fetch import Rows, stack_rows, take_rows

__all__ = ["minibatches", "as_anndata", "TorchConverter", "RESERVED_KEYS"]

#: keys of a torch batch that are not obs columns
RESERVED_KEYS = ("X", "index", "obsm")


def minibatches(
    groups: Iterable[tuple[Rows, np.ndarray]], batch_size: int, drop_last: bool
) -> Iterator[Rows]:
    """Batches of ``batch_size`` rows from ``(rows, order)`` groups, taking each group's
    rows in ``order``. Holds one group and fewer than ``batch_size`` carried rows."""
    carry: Rows | None = None
    for rows, order in groups:
        i = 0
        if carry is not None:
            need = batch_size - carry.n
            carry = stack_rows(carry, take_rows(rows, order[:need]))
            i = need
            if carry.n == batch_size:
                yield carry
                carry = None
        n = rows.n
        while i + batch_size <= n:
            yield take_rows(rows, order[i : i + batch_size])
            i += batch_size
        if i < n:
            carry = take_rows(rows, order[i:])
        del rows, order  # let go of the group before the next one is read
    if carry is not None and carry.n and not drop_last:
        yield carry


def as_anndata(rows: Rows, obs: pd.DataFrame, var: pd.DataFrame) -> Any:
    """An in-memory AnnData of ``rows`` (see module docstring)."""
    from ..core.anndata import AnnData

    # the parts are valid by construction: skip the constructor's checks (milliseconds per
    # batch with many genes); var is a shallow copy, so editing a batch leaves others alone
    return AnnData._from_parts(
        X=rows.X, obs=obs.iloc[rows.positions], var=var.copy(deep=False), obsm=dict(rows.obsm)
    )


def _obs_column(name: str, col: pd.Series, source: str | None) -> np.ndarray:
    """An obs column as a numpy array a tensor can be made from (categoricals as codes)."""
    if isinstance(col.dtype, pd.CategoricalDtype):
        return col.cat.codes.to_numpy().astype(np.int64)  # -1 for missing
    if pd.api.types.is_bool_dtype(col.dtype) or pd.api.types.is_numeric_dtype(col.dtype):
        if col.isna().any() and not pd.api.types.is_float_dtype(col.dtype):
            raise FormatError(
                f"obs column {name!r} has missing values and no float dtype: it cannot "
                "become a tensor",
                source=source,
                element=f"/obs/{name}",
            )
        if pd.api.types.is_extension_array_dtype(col.dtype):
            return col.to_numpy(dtype=col.dtype.numpy_dtype, na_value=np.nan)
        return col.to_numpy()
    raise FormatError(
        f"obs column {name!r} has dtype {col.dtype}: tensors need numbers, booleans or "
        "categoricals (make it categorical, e.g. adata.strings_to_categoricals())",
        source=source,
        element=f"/obs/{name}",
    )


class TorchConverter:
    """Makes the dict of tensors of a batch (``as_torch=True``).

    Keys:

    * ``"X"``: the batch's rows of the matrix, a dense tensor (``torch_sparse=False``) or a
      ``torch.sparse_csr_tensor`` (``torch_sparse=True``; int64 ``crow``/``col`` indices).
      Float matrices keep their dtype; integer and boolean matrices become float32.
    * ``"index"``: int64 positions of the rows along obs of the loaded object.
    * each requested obs column: categoricals as int64 codes (-1 = missing; the categories
      are ``Loader.categories[key]``), numbers and booleans as they are.
    * ``"obsm"`` (only when obsm keys were requested): ``{key: dense tensor}``.

    The obs columns are converted once, when the loader is made.
    """

    def __init__(self, obs: pd.DataFrame, source: str | None, torch_sparse: bool = False):
        for key in obs.columns:
            if key in RESERVED_KEYS:
                raise ValueError(
                    f"obs column {key!r} clashes with the batch key {key!r} of as_torch=True"
                )
        self.columns = {str(k): _obs_column(str(k), obs[k], source) for k in obs.columns}
        self.torch_sparse = torch_sparse

    def _matrix(self, X: Any) -> Any:
        import torch

        if sp.issparse(X):
            X = sp.csr_matrix(X)
            if X.dtype.kind != "f":
                X = X.astype(np.float32)
            if self.torch_sparse:
                with warnings.catch_warnings():  # torch's "beta" notice, once per batch
                    warnings.filterwarnings("ignore", "Sparse CSR tensor support is in beta")
                    return torch.sparse_csr_tensor(
                        torch.from_numpy(X.indptr.astype(np.int64)),
                        torch.from_numpy(X.indices.astype(np.int64)),
                        torch.from_numpy(X.data),
                        size=X.shape,
                        check_invariants=False,  # built from a valid scipy CSR matrix
                    )
            return torch.from_numpy(X.toarray())
        X = np.ascontiguousarray(X)
        if X.dtype.kind != "f":
            X = X.astype(np.float32)
        if self.torch_sparse:
            return torch.from_numpy(X).to_sparse_csr()
        return torch.from_numpy(X)

    def __call__(self, rows: Rows) -> dict[str, Any]:
        import torch

        out: dict[str, Any] = {
            "X": self._matrix(rows.X),
            "index": torch.from_numpy(rows.positions.astype(np.int64)),
        }
        for key, values in self.columns.items():
            out[key] = torch.from_numpy(np.ascontiguousarray(values[rows.positions]))
        if rows.obsm:
            out["obsm"] = {k: torch.from_numpy(_dense(v)) for k, v in rows.obsm.items()}
        return out


def _dense(x: Any) -> np.ndarray:
    if sp.issparse(x):
        return x.toarray()
    if isinstance(x, pd.DataFrame):
        return x.to_numpy()
    return np.ascontiguousarray(x)
