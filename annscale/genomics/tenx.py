"""10x Genomics outputs: ``.h5`` feature-barcode matrices and mtx directories.

Results equal scanpy's ``read_10x_h5`` / ``read_10x_mtx`` (names, obs/var columns and
dtypes, X type and dtype). HDF5 files are read through :func:`annscale.storage.open_root`,
so local paths and fsspec URLs both work; ``read_10x_h5(..., lazy=True)`` reads cells on
demand as a dask array.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from ..errors import FormatError, ShapeMismatchError, StorageError
from ..storage.location import Location, as_location
from ..storage.open import open_root
from ._files import child, exists, open_text
from ._mtx import read_mtx_matrix
from ._names import make_index_unique, str_index
from ._parts import Parts
from ._tenx_h5 import find_matrix, read_indptr, read_rows, value_dtype
from ._tenx_lazy import lazy_rows

if TYPE_CHECKING:
    from ..core.anndata import AnnData

__all__ = ["read_10x_h5", "read_10x_mtx"]

PathLike = str | os.PathLike | Location
GEX = "Gene Expression"


# ----------------------------------------------------------------------------- h5


def _feature_mask(
    var: pd.DataFrame, genome: str | None, gex_only: bool, source: str, group: str
) -> np.ndarray | None:
    """Which features a Cell Ranger 3+ read keeps (``None``: all of them)."""
    keep = np.ones(len(var), dtype=bool)
    if genome:
        if "genome" not in var.columns:
            raise FormatError(
                f"genome={genome!r} given, but the file has no features/genome dataset",
                source=source,
                element=f"{group}/features",
            )
        genomes = var["genome"].to_numpy()
        if genome not in genomes:
            available = list(pd.unique(genomes))
            raise FormatError(
                f"could not find data corresponding to genome {genome!r}. "
                f"Available genomes are: {available}",
                source=source,
                element=f"{group}/features/genome",
            )
        keep &= genomes == genome
    if gex_only:
        keep &= var["feature_types"].to_numpy() == GEX
    return None if keep.all() else keep


def tenx_h5_parts(
    filename: PathLike,
    *,
    genome: str | None = None,
    gex_only: bool = True,
    lazy: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> Parts:
    loc = as_location(filename, storage_options)
    with open_root(loc, "r", kind="h5ad") as root:
        found = find_matrix(root, genome)
        group = root[found.group]
        keep = None
        if not found.legacy:
            keep = _feature_mask(found.var, genome, gex_only, loc.url, found.group)
        if lazy:
            indptr = read_indptr(group, found.n_obs)
            data, indices = group["data"], group["indices"]
            X = lazy_rows(
                loc,
                found.group,
                indptr,
                found.n_vars,
                value_dtype(data.dtype),
                data.dtype.itemsize + indices.dtype.itemsize,
                columns=None if keep is None else np.flatnonzero(keep),
            )
        else:
            X = read_rows(group, found.n_obs, found.n_vars, 0, found.n_obs)
            if keep is not None:
                X = X[:, keep]
    var = found.var if keep is None else found.var.loc[keep]
    return Parts(X=X, obs=found.obs, var=var)


def read_10x_h5(
    filename: PathLike,
    *,
    genome: str | None = None,
    gex_only: bool = True,
    backup_url: str | None = None,
    backed: Literal["r"] | None = None,
    lazy: bool = False,
    storage_options: dict[str, Any] | None = None,
) -> AnnData:
    """Read a 10x Genomics ``.h5`` feature-barcode matrix (Cell Ranger 2, 3+, Space Ranger).

    Parameters
    ----------
    filename
        Local path or fsspec URL of the ``.h5`` file.
    genome
        Cell Ranger 2 files: the genome group to read (required when there are several).
        Cell Ranger 3+ files: keep only features of this genome.
    gex_only
        Cell Ranger 3+ files: keep only ``"Gene Expression"`` features.
    backup_url
        Accepted for scanpy compatibility; annscale does not download missing files.
    backed, lazy
        ``backed="r"`` or ``lazy=True``: X is a dask array of CSR blocks of cells, each
        read from the file when computed (obs/var are read at once).
    storage_options
        fsspec options for remote files.

    Returns
    -------
    An AnnData (cells x features): X a float32 ``scipy.sparse.csr_matrix`` (Cell Ranger's
    int32 counts converted, as scanpy does), obs names the barcodes, var names the feature
    names, ``var["gene_ids"]``, plus for Cell Ranger 3+ ``var["feature_types"]``,
    ``var["genome"]`` and the other ``features/*`` datasets, ``obs["filtered_barcodes"]``
    when present; probe-barcode matrices add ``var["probe_ids"]``.
    """
    del backup_url
    if backed not in (None, "r"):
        raise ValueError(f"backed must be None or 'r', got {backed!r}")
    parts = tenx_h5_parts(
        filename,
        genome=genome,
        gex_only=gex_only,
        lazy=lazy or backed == "r",
        storage_options=storage_options,
    )
    return parts.to_anndata()


# ----------------------------------------------------------------------------- mtx


def _first_existing(folder: Location, names: list[str]) -> Location | None:
    for name in names:
        loc = child(folder, name)
        if exists(loc):
            return loc
    return None


def _read_tsv(loc: Location, min_columns: int) -> pd.DataFrame:
    # every field as the exact string in the file: integer-like ids stay strings
    with open_text(loc) as f:
        try:
            table = pd.read_csv(f, sep="\t", header=None, dtype=str, na_filter=False)
        except pd.errors.EmptyDataError:
            table = pd.DataFrame(columns=range(min_columns), dtype=object)
    if table.shape[1] < min_columns:
        raise FormatError(
            f"expected at least {min_columns} tab-separated columns, found {table.shape[1]}",
            source=loc.url,
        )
    return table


def tenx_mtx_parts(
    path: PathLike,
    *,
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    make_unique: bool = True,
    gex_only: bool = True,
    prefix: str | None = None,
) -> Parts:
    if var_names not in ("gene_symbols", "gene_ids"):
        raise ValueError("`var_names` needs to be 'gene_symbols' or 'gene_ids'")
    folder = as_location(path)
    prefix = prefix or ""
    # Cell Ranger 2 writes genes.tsv (2 columns), Cell Ranger 3+ features.tsv.gz (3 columns);
    # compression is detected from content, so either name may or may not end in .gz.
    genes = _first_existing(folder, [f"{prefix}genes.tsv", f"{prefix}genes.tsv.gz"])
    legacy = genes is not None
    if legacy:
        features = genes
        order = ["", ".gz"]
    else:
        order = [".gz", ""]
        features = _first_existing(folder, [f"{prefix}features.tsv{s}" for s in order])
    matrix = _first_existing(folder, [f"{prefix}matrix.mtx{s}" for s in order])
    barcodes = _first_existing(folder, [f"{prefix}barcodes.tsv{s}" for s in order])
    for found, what in (
        (matrix, f"{prefix}matrix.mtx[.gz]"),
        (features, f"{prefix}features.tsv[.gz] or {prefix}genes.tsv[.gz]"),
        (barcodes, f"{prefix}barcodes.tsv[.gz]"),
    ):
        if found is None:
            raise StorageError(f"10x mtx directory has no {what}", source=folder.url)

    X = read_mtx_matrix(matrix, dtype="float32").T  # genes x cells on disk; CSC cells x genes
    feature_table = _read_tsv(features, 2 if legacy else 3)
    barcode_table = _read_tsv(barcodes, 1)
    n_cells, n_genes = X.shape
    if len(feature_table) != n_genes or len(barcode_table) != n_cells:
        raise ShapeMismatchError(
            f"matrix is {n_genes} features x {n_cells} barcodes, but {features.name} has "
            f"{len(feature_table)} rows and {barcodes.name} {len(barcode_table)}",
            source=matrix.url,
        )

    ids = feature_table[0].to_numpy(dtype=object)
    symbols = feature_table[1].to_numpy(dtype=object)
    if var_names == "gene_symbols":
        index = str_index(symbols)
        if make_unique:
            index = make_index_unique(index)
        var = pd.DataFrame({"gene_ids": ids}, index=index)
    else:
        var = pd.DataFrame({"gene_symbols": symbols}, index=str_index(ids))
    if not legacy:
        var["feature_types"] = feature_table[2].to_numpy(dtype=object)
    obs = pd.DataFrame(index=str_index(barcode_table[0].to_numpy(dtype=object)))

    if not legacy and gex_only:
        keep = var["feature_types"].to_numpy() == GEX
        if not keep.all():
            X = X[:, keep]
            var = var.loc[keep]
    return Parts(X=X, obs=obs, var=var)


def read_10x_mtx(
    path: PathLike,
    *,
    var_names: Literal["gene_symbols", "gene_ids"] = "gene_symbols",
    make_unique: bool = True,
    cache: bool = False,
    cache_compression: Any = None,
    gex_only: bool = True,
    prefix: str | None = None,
) -> AnnData:
    """Read a 10x Genomics mtx directory (Cell Ranger 2 ``genes.tsv`` or 3+ ``features.tsv``).

    Parameters
    ----------
    path
        Local directory or fsspec URL holding ``matrix.mtx``, ``barcodes.tsv`` and
        ``features.tsv``/``genes.tsv``, each gzipped or not (detected from the content).
    var_names
        Index var by ``"gene_symbols"`` (second column) or ``"gene_ids"`` (first column);
        the other becomes a column.
    make_unique
        Make gene symbols unique by appending ``-1``, ``-2``, ...
    cache, cache_compression
        Accepted for scanpy compatibility; nothing is cached.
    gex_only
        Cell Ranger 3+: keep only ``"Gene Expression"`` features.
    prefix
        A prefix of the three file names (e.g. ``"patientA_"``).

    Returns
    -------
    An AnnData (cells x features): X a float32 ``scipy.sparse.csc_matrix`` (the transposed
    Matrix Market matrix, as scanpy returns it), ``var["gene_ids"]`` (or
    ``var["gene_symbols"]``), ``var["feature_types"]`` for Cell Ranger 3+. Ids and names
    are kept exactly as written, so integer-like gene ids stay strings. Reads every file
    in full.
    """
    del cache, cache_compression
    return tenx_mtx_parts(
        path, var_names=var_names, make_unique=make_unique, gex_only=gex_only, prefix=prefix
    ).to_anndata()
