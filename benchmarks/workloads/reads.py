"""Opening, eager reading and selections of the large matrix, materialised in memory."""

from __future__ import annotations

from .. import digest
from . import workload

open_lazy = workload(
    "open_lazy",
    "Open the large h5ad without reading X; touch shape, obs_names and var_names.",
    note="anndata: read_h5ad(backed='r') (reads obs/var, like annscale.read_lazy)",
)


@open_lazy.side("anndata")
def _(ctx):
    import anndata as ad

    with ctx.timed():
        adata = ad.read_h5ad(ctx.matrix, backed="r")
        result = digest.of_names(adata)
    adata.file.close()
    return result


@open_lazy.side("annscale")
def _(ctx):
    import annscale

    with ctx.timed():
        adata = annscale.read_lazy(ctx.matrix)
        result = digest.of_names(adata)
    return result


eager_read = workload("eager_read", "Read the whole large h5ad into memory.")


@eager_read.side("anndata")
def _(ctx):
    import anndata as ad

    with ctx.timed():
        adata = ad.read_h5ad(ctx.matrix)
    return digest.of_anndata(adata)


@eager_read.side("annscale")
def _(ctx):
    import annscale

    with ctx.timed():
        adata = annscale.read_h5ad(ctx.matrix)
    return digest.of_anndata(adata)


rows_to_memory = workload(
    "rows_10k_to_memory",
    "10,000 random rows (sorted positions) of the large h5ad opened lazily, to memory.",
    note="anndata: backed='r', then [rows].to_memory()",
)


@rows_to_memory.side("anndata")
def _(ctx):
    import anndata as ad

    rows = ctx.random_rows()
    with ctx.timed():
        adata = ad.read_h5ad(ctx.matrix, backed="r")
        sub = adata[rows].to_memory()
    return digest.of_anndata(sub)


@rows_to_memory.side("annscale")
def _(ctx):
    import annscale

    rows = ctx.random_rows()
    with ctx.timed():
        adata = annscale.read_h5ad(ctx.matrix, backed="r")
        sub = adata[rows].to_memory()
    return digest.of_anndata(sub)


genes_to_memory = workload(
    "genes_500_to_memory",
    "500 random genes (sorted positions) of the large h5ad opened lazily, to memory.",
    note="anndata: backed='r', then [:, genes].to_memory() (reads the whole CSR matrix)",
)


@genes_to_memory.side("anndata")
def _(ctx):
    import anndata as ad

    genes = ctx.random_genes()
    with ctx.timed():
        adata = ad.read_h5ad(ctx.matrix, backed="r")
        sub = adata[:, genes].to_memory()
    return digest.of_anndata(sub)


@genes_to_memory.side("annscale")
def _(ctx):
    import annscale

    genes = ctx.random_genes()
    with ctx.timed():
        adata = annscale.read_h5ad(ctx.matrix, backed="r")
        sub = adata[:, genes].to_memory()
    return digest.of_anndata(sub)


obs_mask = workload(
    "obs_mask_selection",
    "Cells of one cell type (obs['cell_type'] == 'B cell', ~12%) of the large h5ad, to memory.",
    note="anndata: backed='r', then [mask].to_memory()",
)


@obs_mask.side("anndata")
def _(ctx):
    import anndata as ad

    with ctx.timed():
        adata = ad.read_h5ad(ctx.matrix, backed="r")
        sub = adata[adata.obs["cell_type"] == ctx.params["cell_type"]].to_memory()
    return digest.of_anndata(sub)


@obs_mask.side("annscale")
def _(ctx):
    import annscale

    with ctx.timed():
        adata = annscale.read_h5ad(ctx.matrix, backed="r")
        sub = adata[adata.obs["cell_type"] == ctx.params["cell_type"]].to_memory()
    return digest.of_anndata(sub)
