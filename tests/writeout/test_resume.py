"""Resumable zarr writes: a failed or killed write is finished by resume=True."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from writeout_check import assert_same, kill_when, read_back_zarr
from writeout_gen import dense_dask, kill_me_array, sparse_dask

import annscale.writeout.zarr as wz
from annscale import settings
from annscale.writeout import Manifest, write_dask_zarr
from annscale.writeout.manifest import MANIFEST_DIR
from annscale.writeout.zarr import block_nnz


@pytest.fixture
def task_log(monkeypatch):
    """Which write tasks run: ("block", index, writes_its_chunks) / ("merge", kind, unit) / ("dense", id)."""
    log: list[tuple] = []
    block, merge, dense = wz._write_sparse_block, wz._merge_unit, wz._write_dense_block

    def spy_block(b, job):
        log.append(("block", job.index, job.write_owned))
        return block(b, job)

    def spy_merge(job, *parts):
        log.append(("merge", job.kind, job.unit))
        return merge(job, *parts)

    def spy_dense(b, job):
        log.append(("dense", job.task_id))
        return dense(b, job)

    monkeypatch.setattr(wz, "_write_sparse_block", spy_block)
    monkeypatch.setattr(wz, "_merge_unit", spy_merge)
    monkeypatch.setattr(wz, "_write_dense_block", spy_dense)
    return log


def recorded(store: str, element: str) -> set[str]:
    done = Path(store, MANIFEST_DIR, element, "done")
    return {p.name for p in done.iterdir()} if done.exists() else set()


def test_failed_sparse_write_resumes(new_zarr, task_log):
    good = sparse_dask((100, 30), 10, density=0.2, seed=11)
    bad = sparse_dask((100, 30), 10, density=0.2, seed=11, fail_block=6)
    nnz = block_nnz(good, "csr")
    store = new_zarr(3)
    with settings.override(scheduler="synchronous"), pytest.raises(RuntimeError, match="block 6"):
        write_dask_zarr(
            store,
            "/",
            "X",
            bad,
            zarr_format=3,
            chunks=16,
            nnz=nnz,
            manifest=Manifest.in_staging(store),
        )
    before = recorded(store, "X")
    assert before and "block-6" not in before
    task_log.clear()

    write_dask_zarr(
        store,
        "/",
        "X",
        good,
        zarr_format=3,
        chunks=16,
        nnz=nnz,
        manifest=Manifest.in_staging(store, resume=True),
    )
    assert_same(read_back_zarr(store, "X", "csr"), good.compute())
    # tasks recorded as done did not write again; only missing work ran
    rewritten = {i for kind, i, writes in (t for t in task_log if t[0] == "block") if writes}
    assert rewritten == {i for i in range(10) if f"block-{i}" not in before}
    merged = {f"merge-{k}-{u}" for kind, k, u in (t for t in task_log if t[0] == "merge")}
    assert not merged & before
    assert recorded(store, "X") >= before | {f"block-{i}" for i in range(10)}


def test_failed_dense_write_resumes_and_plan_change_invalidates(new_zarr, task_log):
    good = dense_dask((40, 20), (10, 10), seed=5)
    bad = dense_dask((40, 20), (10, 10), seed=5, fail_block=(2, 1))
    store = new_zarr(2)
    with settings.override(scheduler="synchronous"), pytest.raises(RuntimeError):
        write_dask_zarr(store, "/", "D", bad, zarr_format=2, manifest=Manifest.in_staging(store))
    before = recorded(store, "D")
    assert 0 < len(before) < 8
    task_log.clear()
    write_dask_zarr(
        store, "/", "D", good, zarr_format=2, manifest=Manifest.in_staging(store, resume=True)
    )
    assert {t[1] for t in task_log} == {
        f"block-{i}-{j}" for i in range(4) for j in range(2)
    } - before
    assert_same(read_back_zarr(store, "D", None), good.compute())

    # another chunking is another plan: the manifest is discarded, everything is rewritten
    task_log.clear()
    write_dask_zarr(
        store,
        "/",
        "D",
        good,
        zarr_format=2,
        chunks=(20, 20),
        manifest=Manifest.in_staging(store, resume=True),
    )
    assert len(task_log) == 2
    assert_same(read_back_zarr(store, "D", None), good.compute())


def test_resume_false_starts_afresh(new_zarr, task_log):
    x = sparse_dask((30, 10), 10)
    store = new_zarr(3)
    write_dask_zarr(store, "/", "X", x, zarr_format=3, manifest=Manifest.in_staging(store))
    task_log.clear()
    write_dask_zarr(store, "/", "X", x, zarr_format=3, manifest=Manifest.in_staging(store))
    assert sorted(t[1] for t in task_log if t[0] == "block") == [0, 1, 2]
    task_log.clear()
    # a completed write resumed does nothing more
    write_dask_zarr(
        store, "/", "X", x, zarr_format=3, manifest=Manifest.in_staging(store, resume=True)
    )
    assert task_log == []
    Manifest.in_staging(store).remove()
    assert not Path(store, MANIFEST_DIR).exists()
    assert_same(read_back_zarr(store, "X", "csr"), x.compute())


def test_killed_write_resumes(new_zarr, task_log):
    store = new_zarr(3)
    script = Path(__file__).with_name("writeout_gen.py")
    proc = subprocess.Popen(
        [sys.executable, str(script), store],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    kill_when(proc, lambda: len(recorded(store, "X")) >= 3)
    before = recorded(store, "X")
    blocks_done = {n for n in before if n.startswith("block-")}
    assert 0 < len(blocks_done) < 12

    with settings.override(scheduler="synchronous"):
        write_dask_zarr(
            store,
            "/",
            "X",
            kill_me_array(),
            zarr_format=3,
            chunks=16,
            manifest=Manifest.in_staging(store, resume=True),
        )
    assert_same(read_back_zarr(store, "X", "csr"), kill_me_array().compute())
    rewritten = {t[1] for t in task_log if t[0] == "block" and t[2]}
    assert rewritten == {i for i in range(12) if f"block-{i}" not in before}
