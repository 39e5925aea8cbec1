"""Worker memory during a 60-sample concatenation write stays within ``--memory-limit``.

Scaled down (small samples) so it runs in seconds; the full-size run is the benchmark
``benchmarks/workloads/distributed.py``. Worker RSS is sampled from the test process while
the job runs; after it, the workers must be the same processes (no nanny restart), with
nothing spilled to disk and no memory warnings in their logs.
"""

from __future__ import annotations

import threading

import anndata
import zarr
from cluster_helpers import MEMORY_LIMIT, worker_stats, write_samples
from cluster_jobs import CONCAT, write_x

import annscale as ad

#: distributed starts spilling at 60 % of the limit ("target"): stay below it
SPILL_FRACTION = 0.6


def test_sixty_sample_write_stays_within_memory_limit(cluster, tmp_path, no_client_cache):
    paths, adatas = write_samples(tmp_path, 60, cells=100, genes=200)
    out = tmp_path / "out.zarr"
    peaks: dict[str, int] = {}
    stop = threading.Event()

    with cluster.client() as watch:
        start = watch.run(worker_stats)
        workers = {a: s[3] for a, s in start.items()}

        def sample() -> None:
            while not stop.is_set():
                for address, (rss, *_) in watch.run(worker_stats).items():
                    peaks[address] = max(peaks.get(address, 0), rss)
                stop.wait(0.1)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            with ad.settings.override(scheduler=cluster.address, progress=False):
                write_x(paths, str(out), rows=None)
        finally:
            stop.set()
            sampler.join()
        end = watch.run(worker_stats)
    after = {a: s[3] for a, s in end.items()}

    assert after == workers  # the same worker processes: nothing restarted
    for address in workers:
        assert end[address][1] > start[address][1]  # every worker took part
        assert end[address][2] == 0  # nothing spilled to disk
        assert peaks[address] < SPILL_FRACTION * MEMORY_LIMIT, (address, peaks[address])
    print({a: f"{p / 2**20:.0f} MiB" for a, p in peaks.items()})
    logs = cluster.logs()
    for warning in ("Restarting worker", "exceeded", "Unmanaged memory use is high", "paused"):
        assert warning not in logs

    got = anndata.io.read_elem(zarr.open_group(str(out), mode="r")["X"])
    expected = anndata.concat(adatas, **CONCAT).X
    assert got.shape == expected.shape and (got != expected).nnz == 0
