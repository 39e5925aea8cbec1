"""Reading from object storage: S3 served by moto on loopback, started by the harness.

The harness uploads the large h5ad once to a moto server it runs on 127.0.0.1; workloads get its
URL and the ``storage_options`` that reach it. Both sides read through s3fs with an 8 MiB block
cache, because HDF5 makes many small reads.
"""

from __future__ import annotations

from .. import digest
from . import workload

BLOCK_SIZE = 8 * 2**20

s3_rows = workload(
    "s3_open_row_subset",
    "Open the large h5ad on S3 (moto) lazily and bring 1,000 random rows to memory.",
    needs=("matrix", "s3"),
    note="anndata: h5py over an s3fs file + io.sparse_dataset (backed mode takes no URL)",
)


@s3_rows.side("anndata")
def _(ctx):
    import anndata as ad
    import h5py
    import s3fs

    rows = ctx.random_rows(ctx.params["n_rows_remote"])
    with ctx.timed():
        fs = s3fs.S3FileSystem(**ctx.s3["storage_options"])
        with (
            fs.open(ctx.s3["url"], "rb", block_size=BLOCK_SIZE, cache_type="blockcache") as fobj,
            h5py.File(fobj, "r") as f,
        ):
            obs = ad.io.read_elem(f["obs"])
            var = ad.io.read_elem(f["var"])
            X = ad.io.sparse_dataset(f["X"])[rows]
        result = ad.AnnData(X=X, obs=obs.iloc[rows], var=var)
    return digest.of_anndata(result)


@s3_rows.side("annscale")
def _(ctx):
    import s3fs  # noqa: F401  (imported before the block on both sides: import time not timed)

    import annscale

    rows = ctx.random_rows(ctx.params["n_rows_remote"])
    with ctx.timed():
        adata = annscale.read_lazy(ctx.s3["url"], storage_options=ctx.s3["storage_options"])
        result = adata[rows].to_memory()
    return digest.of_anndata(result)
