"""Text formats: Matrix Market, csv/tsv/whitespace tables, Excel, UMI-tools counts; csv export.

Each reader gives the same AnnData as its namesake in :mod:`anndata.io` (names, dtypes,
X type). Files are opened through fsspec, so local paths and URLs both work, and
compression is detected from the file's content. Everything here reads the whole file
into memory: these formats have no random access.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import sparse

from ..errors import FormatError, StorageError
from ..scheduler import compute_one
from ..storage.location import Location, as_location
from ._files import open_text
from ._mtx import read_mtx_matrix
from ._names import str_index
from ._parts import Parts
from ._table import parse_table

if TYPE_CHECKING:
    from ..core.anndata import AnnData

__all__ = ["read_csv", "read_excel", "read_mtx", "read_text", "read_umi_tools", "write_csvs"]

PathLike = str | os.PathLike | Location


def _empty_frame(names: np.ndarray | pd.Index, name: str | None = None) -> pd.DataFrame:
    return pd.DataFrame(index=str_index(names, name=name))


# ----------------------------------------------------------------------------- mtx


def mtx_parts(filename: PathLike, dtype: str = "float32") -> Parts:
    X = read_mtx_matrix(filename, dtype=dtype)
    n_obs, n_vars = X.shape
    return Parts(
        X=X,
        obs=_empty_frame(np.arange(n_obs).astype(str)),
        var=_empty_frame(np.arange(n_vars).astype(str)),
    )


def read_mtx(filename: PathLike, dtype: str = "float32") -> AnnData:
    """Read a Matrix Market file (``.mtx``, optionally compressed) into X.

    X is a ``scipy.sparse.csr_matrix`` of ``dtype`` (dense ``array`` files too); obs and
    var names are ``"0"``, ``"1"``, ... The whole file is read.
    """
    return mtx_parts(filename, dtype).to_anndata()


# ----------------------------------------------------------------------------- csv / text


def text_parts(
    filename: PathLike | Iterable[str],
    delimiter: str | None = None,
    *,
    first_column_names: bool | None = None,
    dtype: str = "float32",
) -> Parts:
    if isinstance(filename, (str, os.PathLike, Location)):
        loc = as_location(filename)
        with open_text(loc) as f:
            table = parse_table(
                f, delimiter, first_column_names=first_column_names, dtype=dtype, source=loc.url
            )
    else:  # an iterable of lines, e.g. an open file
        table = parse_table(filename, delimiter, first_column_names=first_column_names, dtype=dtype)
    return Parts(X=table.data, obs=_empty_frame(table.row_names), var=_empty_frame(table.col_names))


def read_text(
    filename: PathLike | Iterable[str],
    delimiter: str | None = None,
    *,
    first_column_names: bool | None = None,
    dtype: str = "float32",
) -> AnnData:
    """Read a numeric text table (``.txt``, ``.tab``, ``.data``, optionally compressed).

    ``delimiter=None`` splits at runs of whitespace. Row and column names are detected as
    :func:`anndata.io.read_text` does: ``#`` comment lines (the last one may hold column
    names), a header line whose last field is not a number, a first column that is not
    numeric (or ``first_column_names=True``). X is a dense ``numpy`` array of ``dtype``.
    ``filename`` may also be an iterable of lines.
    """
    return text_parts(
        filename, delimiter, first_column_names=first_column_names, dtype=dtype
    ).to_anndata()


def read_csv(
    filename: PathLike | Iterable[str],
    delimiter: str | None = ",",
    *,
    first_column_names: bool | None = None,
    dtype: str = "float32",
) -> AnnData:
    """Read a ``.csv`` file: :func:`read_text` with ``delimiter=","``."""
    return read_text(filename, delimiter, first_column_names=first_column_names, dtype=dtype)


# ----------------------------------------------------------------------------- excel


def excel_parts(filename: PathLike, sheet: str | int, dtype: str = "float32") -> Parts:
    loc = as_location(filename)
    try:
        df = pd.read_excel(loc.url, sheet, storage_options=loc.storage_options or None)
    except FileNotFoundError:
        raise StorageError("no such file", source=loc.url) from None
    except (ValueError, KeyError) as e:
        raise FormatError(f"cannot read sheet {sheet!r}: {e}", source=loc.url) from e
    # As anndata: the first column names the rows, the first row names the columns;
    # X keeps the dtype pandas gives the remaining columns (``dtype`` is not applied).
    return Parts(
        X=df.to_numpy()[:, 1:],
        obs=_empty_frame(df.iloc[:, 0].astype(str).to_numpy()),
        var=_empty_frame(df.columns[1:].astype(str).to_numpy()),
    )


def read_excel(filename: PathLike, sheet: str | int, dtype: str = "float32") -> AnnData:
    """Read one sheet of an ``.xlsx`` file (needs ``openpyxl``).

    The first column holds the row names and the first row the column names.
    """
    return excel_parts(filename, sheet, dtype).to_anndata()


# ----------------------------------------------------------------------------- umi_tools


def umi_tools_parts(filename: PathLike, dtype: Any = None) -> Parts:
    loc = as_location(filename)
    with open_text(loc) as f:
        table = pd.read_table(f, dtype={"gene": "category", "cell": "category"})
    missing = [c for c in ("gene", "cell", "count") if c not in table.columns]
    if missing:
        raise FormatError(
            f"UMI-tools counts need the columns 'gene', 'cell' and 'count'; missing {missing}",
            source=loc.url,
        )
    cells, genes = table["cell"].cat, table["gene"].cat
    # duplicate (cell, gene) pairs are summed, as scipy does when building from COO
    X = sparse.csr_matrix(
        (table["count"].to_numpy(), (cells.codes.to_numpy(), genes.codes.to_numpy())),
        shape=(len(cells.categories), len(genes.categories)),
        dtype=dtype,
    )
    return Parts(
        X=X,
        obs=_empty_frame(cells.categories, name="cell"),
        var=_empty_frame(genes.categories, name="gene"),
    )


def read_umi_tools(filename: PathLike, dtype: Any = None) -> AnnData:
    """Read a (gzipped) condensed count table from UMI-tools (``gene``, ``cell``, ``count``).

    X is a ``scipy.sparse.csr_matrix`` (cells x genes, dtype of the counts unless ``dtype``);
    obs/var names are the sorted distinct cells/genes, indexes named ``cell``/``gene``.
    """
    return umi_tools_parts(filename, dtype).to_anndata()


# ----------------------------------------------------------------------------- write_csvs


def _axis_arrays_frame(mapping: Mapping[str, Any], index: pd.Index) -> pd.DataFrame:
    """``obsm``/``varm`` as one table: column ``f"{key}{i + 1}"`` per column of each entry."""
    df = pd.DataFrame(index=index)
    for key, value in mapping.items():
        values = _dense(value)
        if values.ndim == 1:
            values = values[:, None]
        for i in range(values.shape[1]):
            df[f"{key}{i + 1}"] = values[:, i]
    return df


def _dense(value: Any) -> np.ndarray:
    if hasattr(value, "compute"):  # dask
        value = compute_one(value)
    if sparse.issparse(value):
        return value.toarray()
    return np.asarray(value)


def write_csvs(
    dirname: PathLike, adata: AnnData, *, skip_data: bool = True, sep: str = ","
) -> None:
    """Write obs, var, obsm, varm (and X unless ``skip_data``) as csv files, uns under ``uns/``.

    As :func:`anndata.AnnData.write_csvs`: ``obs.csv``/``var.csv`` have a header and the
    names as first column, ``obsm.csv``/``varm.csv`` a header only, ``X.csv`` and each
    ``uns/<key>.csv`` neither; sparse uns entries are skipped with a warning. A trailing
    ``.csv`` on ``dirname`` is dropped. X is computed in full when it is lazy.
    """
    loc = as_location(dirname)
    path = loc.path
    if path.endswith(".csv"):
        path = path[: -len(".csv")]
    fs = loc.filesystem()
    sep_ = "/" if not loc.is_local else os.sep
    uns_dir = f"{path}{sep_}uns"
    fs.makedirs(uns_dir, exist_ok=True)

    tables: dict[str, Any] = {
        "obs": adata.obs,
        "var": adata.var,
        "obsm": _axis_arrays_frame(adata.obsm, adata.obs_names),
        "varm": _axis_arrays_frame(adata.varm, adata.var_names),
    }
    if not skip_data:
        X = adata.X
        tables["X"] = pd.DataFrame(_dense(X) if X is not None else None)
    to_write = {**tables, **adata.uns}
    warned_sparse = False
    for key, value in to_write.items():
        if sparse.issparse(value):
            if not warned_sparse:
                warnings.warn("Omitting to write sparse annotation.", UserWarning, stacklevel=2)
                warned_sparse = True
            continue
        folder = path if key in {"X", "obs", "var", "obsm", "varm"} else uns_dir
        if not isinstance(value, pd.DataFrame):
            array = np.array(value)
            if array.ndim == 0:
                array = array[None]
            try:
                value = pd.DataFrame(array)
            except Exception as e:  # anndata skips whatever pandas refuses
                warnings.warn(
                    f"Omitting to write {key!r} of type {type(e)}.", UserWarning, stacklevel=2
                )
                continue
        with fs.open(f"{folder}{sep_}{key}.csv", "w") as f:
            value.to_csv(
                f,
                sep=sep,
                header=key in {"obs", "var", "obsm", "varm"},
                index=key in {"obs", "var"},
            )
