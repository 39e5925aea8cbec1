"""Scaling: annscale's concat_on_disk to zarr on a LocalCluster of 1 and of 2 worker processes.

Both sides are annscale; the report shows the speed-up (1-worker time / 2-worker time). Each
worker has one thread, so the comparison is processes, not threads. The cluster starts before
the timed block; its worker processes' memory is included in the peak (summed RSS of the tree).
"""

from __future__ import annotations

from .. import digest
from . import workload
from .concat import OPTIONS

scaling = workload(
    "distributed_1_vs_2",
    "annscale.concat_on_disk of all samples to zarr under a distributed Client, 1 vs 2 workers.",
    needs=("samples",),
    sides=("1_worker", "2_workers"),
    kind="scaling",
    spawns_processes=True,
)


def _run(ctx, n_workers: int) -> dict:
    from distributed import Client, LocalCluster

    import annscale

    out = ctx.out("concat.zarr")
    with (
        LocalCluster(
            n_workers=n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        ) as cluster,
        Client(cluster),
    ):
        with ctx.timed():
            annscale.concat_on_disk(ctx.samples, out, keys=ctx.sample_keys, **OPTIONS)
    return digest.of_store(out)


@scaling.side("1_worker")
def _(ctx):
    return _run(ctx, 1)


@scaling.side("2_workers")
def _(ctx):
    return _run(ctx, 2)
