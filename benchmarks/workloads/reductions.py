"""Per-gene reductions over all cells of the large matrix, without loading it whole.

anndata 0.12's lazy X (``read_lazy`` / ``read_elem_lazy``: a dask array of scipy chunks) fails
on ``X.sum(axis=0)`` (dask passes ``keepdims``, scipy refuses it). Of its working paths
(``map_blocks`` over ``read_elem_lazy`` or ``read_lazy``, slicing the backed ``X`` in row
blocks, ``chunked_X``), row blocks of the backed matrix were fastest on the full data, so that
is the anndata side here. It accumulates in float64 and returns what scipy returns for the
in-memory matrix: an ``np.matrix`` of shape (1, n_vars) in the matrix's float dtype.
"""

from __future__ import annotations

import numpy as np

from .. import digest
from . import workload

#: rows per block in anndata's chunked iteration
CHUNK_ROWS = 25_000

NOTE = "anndata: X.sum fails on its lazy X; times backed='r' + chunked_X row blocks"

gene_sums = workload("gene_sums", "Per-gene sums over all cells: X.sum(axis=0).", note=NOTE)
gene_means = workload("gene_means", "Per-gene means over all cells: X.mean(axis=0).", note=NOTE)


def _anndata_sums(path: str) -> tuple[np.ndarray, int, np.dtype]:
    import anndata as ad

    adata = ad.read_h5ad(path, backed="r")
    total = np.zeros(adata.n_vars, dtype=np.float64)
    for block, _, _ in adata.chunked_X(CHUNK_ROWS):
        total += np.asarray(block.sum(axis=0), dtype=np.float64).ravel()
    dtype = adata.X.dtype
    n_obs = adata.n_obs
    adata.file.close()
    return total, n_obs, dtype


@gene_sums.side("anndata")
def _(ctx):
    with ctx.timed():
        total, _, dtype = _anndata_sums(ctx.matrix)
        # scipy keeps float dtypes for sums and widens integers to int64
        out_dtype = dtype if np.issubdtype(dtype, np.floating) else np.int64
        result = np.asmatrix(total.astype(out_dtype))
    return digest.of_vector(result)


@gene_sums.side("annscale")
def _(ctx):
    import annscale

    with ctx.timed():
        adata = annscale.read_lazy(ctx.matrix)
        result = adata.X.sum(axis=0).compute()
    return digest.of_vector(result)


@gene_means.side("anndata")
def _(ctx):
    with ctx.timed():
        total, n_obs, dtype = _anndata_sums(ctx.matrix)
        out_dtype = dtype if np.issubdtype(dtype, np.floating) else np.float64
        result = np.asmatrix((total / n_obs).astype(out_dtype))
    return digest.of_vector(result)


@gene_means.side("annscale")
def _(ctx):
    import annscale

    with ctx.timed():
        adata = annscale.read_lazy(ctx.matrix)
        result = adata.X.mean(axis=0).compute()
    return digest.of_vector(result)
