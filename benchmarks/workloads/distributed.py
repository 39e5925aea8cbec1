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


OVERHEAD_TASKS = 2000
"""Independent tiny tasks in the scheduler-overhead graph (plus one task summing them)."""

overhead = workload(
    "distributed_scheduler_overhead",
    f"Scheduler overhead per task: {OVERHEAD_TASKS} independent tiny tasks and their sum, "
    "on local threads vs a distributed LocalCluster (1 worker, 1 thread).",
    needs=(),
    sides=("threads", "distributed"),
    kind="scaling",
    spawns_processes=True,
    note=f"seconds / {OVERHEAD_TASKS} = overhead per task (the work itself is negligible)",
)


def _overhead_graph():
    import dask

    return dask.delayed(sum)([dask.delayed(int)(i) for i in range(OVERHEAD_TASKS)])


def _overhead_result(total) -> dict:
    import numpy as np

    return digest.of_vector(np.asarray([int(total)]))


@overhead.side("threads")
def _(ctx):
    import annscale

    graph = _overhead_graph()
    with annscale.settings.override(scheduler="threads", progress=False), ctx.timed():
        (total,) = annscale.scheduler.compute(graph)
    return _overhead_result(total)


@overhead.side("distributed")
def _(ctx):
    from distributed import LocalCluster

    import annscale

    graph = _overhead_graph()
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None, host="127.0.0.1"
    ) as cluster:
        with annscale.settings.override(scheduler=cluster.scheduler_address, progress=False):
            annscale.scheduler.active_client().wait_for_workers(1)
            with ctx.timed():
                (total,) = annscale.scheduler.compute(graph)
            annscale.scheduler.close_clients()
    return _overhead_result(total)
