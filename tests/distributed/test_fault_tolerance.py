"""Worker loss and client loss during a concatenation write to zarr, on a real cluster.

A worker (its nanny too: the whole process group) is SIGKILLed while the write runs; the
scheduler reruns its tasks elsewhere and the store equals anndata's in-memory concatenation.
A killed client leaves a manifest of completed tasks; ``resume=True`` runs only the rest.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import anndata
import zarr
from cluster_helpers import ScriptCluster, write_samples
from cluster_jobs import CONCAT, write_x

import annscale as ad
from annscale.scheduler import close_clients

JOB = Path(__file__).with_name("cluster_jobs.py")


def _done_tasks(out: Path) -> set[str]:
    return {p.name for p in out.glob(".annscale-manifest/*/done/*")}


def _wait_for(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _assert_written(out: Path, adatas) -> None:
    got = anndata.io.read_elem(zarr.open_group(str(out), mode="r")["X"])
    expected = anndata.concat(adatas, **CONCAT).X
    assert got.format == "csr"
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert (got != expected).nnz == 0
    got, expected = got.sorted_indices(), expected.sorted_indices()
    assert (got.indptr == expected.indptr).all() and (got.indices == expected.indices).all()
    assert (got.data == expected.data).all()


def test_worker_killed_mid_write_completes(tmp_path):
    paths, adatas = write_samples(tmp_path, 4, cells=200, genes=100)
    out = tmp_path / "out.zarr"
    cluster = ScriptCluster(tmp_path / "cluster", workers=3).start()
    try:
        with (
            cluster.client() as watch,
            ad.settings.override(scheduler=cluster.address, progress=False),
            ThreadPoolExecutor(1) as pool,
        ):
            job = pool.submit(write_x, paths, str(out))
            # pass 2 is under way: some chunks written, workers busy with the rest
            _wait_for(lambda: len(_done_tasks(out)) >= 5 or job.done(), what="write tasks")
            processing = {a: len(k) for a, k in watch.processing().items()}
            victim = max(processing, key=processing.get)
            name = watch.scheduler_info()["workers"][victim]["name"]
            assert not job.done()
            cluster.kill_worker(int(name.rsplit("-", 1)[1]))
            job.result(timeout=120)
            survivors = set(watch.scheduler_info()["workers"])
        assert victim not in survivors and len(survivors) == 2
        assert f"Remove worker addr: {victim}" in (cluster.directory / "scheduler.log").read_text()
        _assert_written(out, adatas)
    finally:
        close_clients()
        cluster.stop()


def test_killed_client_then_resume_finishes(cluster, tmp_path):
    paths, adatas = write_samples(tmp_path, 4, cells=200, genes=100, seed=10)
    out = tmp_path / "out.zarr"
    client_process = subprocess.Popen(
        [sys.executable, str(JOB), cluster.address, str(out), *paths],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(
            lambda: len(_done_tasks(out)) >= 5 or client_process.poll() is not None,
            what="write tasks of the client process",
        )
        assert client_process.poll() is None, client_process.stderr.read().decode()
    finally:
        os.kill(client_process.pid, signal.SIGKILL)
        client_process.wait()
        client_process.stderr.close()
    with ad.settings.override(scheduler=cluster.address, progress=False):
        try:
            # tasks the dead client started may still finish: take the record once they have
            with cluster.client() as watch:
                _wait_for(lambda: not any(watch.processing().values()), what="idle workers")
            done_before = _done_tasks(out)
            graph = write_x(paths, str(out), resume=True, compute=False)
            keys = {
                k[1:]
                for k in graph.__dask_graph__()
                if isinstance(k, tuple) and str(k[0]).startswith("annscale-write-zarr-")
            }
            blocks = {f"{kind}-{i}" for kind, *i in keys if kind == "block" for i in i}
            merges = {f"{kind}-{i}" for kind, *i in keys if kind.startswith("merge-") for i in i}
            ad.scheduler.compute(graph)
        finally:
            close_clients()
    every_task = _done_tasks(out)
    assert done_before < every_task
    # a recorded task never runs again: a recorded block's pieces were saved beside the
    # arrays before it was recorded, and go to the pending merges from there
    assert not merges & done_before
    assert not blocks & done_before
    assert done_before - blocks - merges
    assert len(blocks | merges) < len(every_task)
    _assert_written(out, adatas)
