"""Combining the samples: concatenation on disk, and a lazy collection filtered by cell type.

Samples have shifted gene sets, so an outer join widens the gene axis; every sample has the
same obs names, so ``index_unique`` is needed; ``label``/``keys`` record the sample of each cell.
"""

from __future__ import annotations

from .. import digest
from . import workload

OPTIONS = {"join": "outer", "label": "sample", "index_unique": "-"}

concat_on_disk = workload(
    "concat_on_disk_60",
    "concat_on_disk of all samples (outer join, label, keys, index_unique) to one h5ad.",
    needs=("samples",),
)


@concat_on_disk.side("anndata")
def _(ctx):
    import anndata as ad

    out = ctx.out("concat.h5ad")
    with ctx.timed():
        ad.experimental.concat_on_disk(ctx.samples, out, keys=ctx.sample_keys, **OPTIONS)
    return digest.of_store(out)


@concat_on_disk.side("annscale")
def _(ctx):
    import annscale

    out = ctx.out("concat.h5ad")
    with ctx.timed():
        annscale.concat_on_disk(ctx.samples, out, keys=ctx.sample_keys, **OPTIONS)
    return digest.of_store(out)


collection_filter = workload(
    "collection_filter_60",
    "All samples as one lazy collection; the cells of one cell type, to memory.",
    needs=("samples",),
    note=(
        "anndata: no lazy collection; times a loop of backed='r' [mask].to_memory() + concat "
        "(its read_lazy + concat path is slower and turns categoricals into object)"
    ),
)


@collection_filter.side("anndata")
def _(ctx):
    import anndata as ad

    cell_type = ctx.params["cell_type"]
    with ctx.timed():
        parts = []
        for path in ctx.samples:
            sample = ad.read_h5ad(path, backed="r")
            parts.append(sample[sample.obs["cell_type"] == cell_type].to_memory())
            sample.file.close()
        result = ad.concat(parts, keys=ctx.sample_keys, **OPTIONS)
    return digest.of_anndata(result)


@collection_filter.side("annscale")
def _(ctx):
    import annscale

    cell_type = ctx.params["cell_type"]
    with ctx.timed():
        coll = annscale.read_collection(ctx.samples, keys=ctx.sample_keys, **OPTIONS)
        result = coll[coll.obs["cell_type"] == cell_type].to_memory()
    return digest.of_anndata(result)


concat_scaling = workload(
    "lazy_concat_write_half_vs_all",
    "annscale.write_zarr of a lazy concat (outer join, label, keys, index_unique) of half of "
    "the samples, then of all of them: peak memory must not grow with the number of samples.",
    needs=("samples",),
    sides=("half_samples", "all_samples"),
    kind="scaling",
    note="memory ratio = peak with all samples / peak with half of them (bounded: about 1)",
)


def _write_lazy_concat(ctx, n: int) -> dict:
    import h5py
    import zarr

    import annscale

    paths, keys = ctx.samples[:n], ctx.sample_keys[:n]
    out = ctx.out("concat.zarr")
    with ctx.timed():
        parts = {k: annscale.read_lazy(p) for k, p in zip(keys, paths, strict=True)}
        annscale.write_zarr(out, annscale.concat(parts, **OPTIONS))
    # the sides write different data: each checks its own output against its inputs
    n_obs = nnz = 0
    for p in paths:
        with h5py.File(p, "r") as f:
            n_obs += int(f["X/indptr"].shape[0] - 1)
            nnz += int(f["X/data"].shape[0])
    indptr = zarr.open_group(out, mode="r")["X/indptr"]
    return {"output_matches_inputs": indptr.shape[0] - 1 == n_obs and int(indptr[-1]) == nnz}


@concat_scaling.side("half_samples")
def _(ctx):
    return _write_lazy_concat(ctx, max(1, len(ctx.samples) // 2))


@concat_scaling.side("all_samples")
def _(ctx):
    return _write_lazy_concat(ctx, len(ctx.samples))
