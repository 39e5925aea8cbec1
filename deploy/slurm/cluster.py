"""A dask cluster on SLURM with dask-jobqueue, running an annscale concatenation write.

    pip install annscale dask-jobqueue       # in an environment every node can see
    python deploy/slurm/cluster.py out.zarr /shared/samples/*.h5ad

Each SLURM job runs one worker process with one thread (see deploy/README.md, "Sizing").
Inputs and output must be on a filesystem every node mounts (or an object store). The
scheduler runs here, in this process (run it on a login node or in its own small job); the
workers reach it over TCP, with TLS when ``DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION`` and
the ``distributed.comm.tls`` settings are given (see ``deploy/kubernetes/dask-tls-config.yaml``).
"""

from __future__ import annotations

import sys

WORKERS = 8
"""Worker processes (one SLURM job each)."""


def main(out: str, samples: list[str]) -> None:
    from dask_jobqueue import SLURMCluster
    from distributed import Client

    import annscale as ad

    cluster = SLURMCluster(
        queue="normal",
        cores=1,  # one thread per worker: HDF5 reads hold a global lock
        processes=1,
        memory="8GiB",  # the job's memory; the worker's --memory-limit follows it
        walltime="02:00:00",
        local_directory="$TMPDIR",  # spill to node-local disk, never to the shared one
        job_extra_directives=["--cpus-per-task=1"],
        worker_extra_args=["--lifetime", "110m", "--lifetime-stagger", "5m"],
        job_script_prologue=["export ANNSCALE_CHUNK_TARGET_BYTES=67108864"],
    )
    cluster.scale(jobs=WORKERS)
    with Client(cluster) as client:
        client.wait_for_workers(1)
        lazy = [ad.read_lazy(p) for p in samples]
        joined = ad.concat(lazy, join="outer", label="sample", index_unique="-")
        joined.write_zarr(out)  # runs on the workers (the default client)
    cluster.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
