"""Public writes of lazy objects that are killed, resumed, remote, distributed, or large."""

from __future__ import annotations

import glob
import os
import subprocess
import sys
from pathlib import Path

import anndata
import numpy as np
import pytest
import scipy.sparse as sp
import zarr
from test_public import assert_equal_adata, make_adata, read_any
from writeout_check import kill_when

import annscale
from annscale.errors import WriteConflictError

SCRIPT = str(Path(__file__).with_name("public_writer.py"))


def run_script(*args: str, sleep: float = 0.0, env_extra=None) -> subprocess.Popen:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(sys.path),
        "ANNSCALE_TEST_SLEEP": str(sleep),
        **(env_extra or {}),
    }
    return subprocess.Popen(
        [sys.executable, SCRIPT, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )


@pytest.fixture(scope="module")
def slow_source(tmp_path_factory):
    """A file to write slowly (X in 10-row blocks) and the in-memory object it holds."""
    adata = make_adata(120, 30, seed=5)
    adata.raw = None
    path = str(tmp_path_factory.mktemp("slow") / "slow.h5ad")
    adata.write_h5ad(path)
    return path, adata


def previous_output(path: str) -> anndata.AnnData:
    """Write an older, different object at ``path`` (what a failed write must keep)."""
    old = anndata.AnnData(np.arange(12.0).reshape(3, 4))
    if path.endswith(".h5ad"):
        old.write_h5ad(path)
    else:
        old.write_zarr(path)
    return old


def done_records(target: str) -> list[str]:
    parent, name = os.path.split(target)
    return glob.glob(f"{parent}/.{name}.annscale-staging-*/.annscale-manifest/X/done/*")


def test_killed_zarr_write_keeps_previous_and_resumes(tmp_path, slow_source):
    source, expected = slow_source
    target = str(tmp_path / "out.zarr")
    old = previous_output(target)
    proc = run_script("write", "zarr", source, target, sleep=0.3)
    kill_when(proc, lambda: len(done_records(target)) >= 3)
    # the previous output is intact and readable by anndata
    assert_equal_adata(anndata.read_zarr(target), old)
    before = {os.path.basename(p) for p in done_records(target)}
    assert 0 < len([n for n in before if n.startswith("block-")]) < 12

    # another object cannot resume it: refused, naming the fingerprint
    other = annscale.read_lazy(source, chunks=12)
    with pytest.raises(WriteConflictError, match="fingerprint differs"):
        other.write_zarr(target, resume=True)
    assert_equal_adata(anndata.read_zarr(target), old)

    # the same object resumes (in another process): only missing blocks run again
    proc = run_script("write", "zarr", source, target, "resume")
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    assert_equal_adata(anndata.read_zarr(target), expected)
    assert [p for p in os.listdir(tmp_path) if ".annscale-" in p] == []


def test_resume_reuses_completed_chunks(tmp_path, slow_source, monkeypatch):
    """In-process: a failed write is resumed and completed blocks are not written again."""
    from public_writer import open_slow

    import annscale.writeout.zarr as wz

    source, expected = slow_source
    target = str(tmp_path / "r.zarr")
    adata = open_slow(source)
    real = wz._write_sparse_block
    written: list[int] = []
    fail = {"block": 7}

    def spy(block, job):
        if job.data.path == "X/data":
            if job.index == fail["block"]:
                raise RuntimeError("block 7 failed on purpose")
            if job.write_owned:
                written.append(job.index)
        return real(block, job)

    monkeypatch.setattr(wz, "_write_sparse_block", spy)
    with annscale.settings.override(scheduler="synchronous"), pytest.raises(RuntimeError) as info:
        adata.write_zarr(target)
    assert any("resume=True" in n for n in getattr(info.value, "__notes__", []))
    assert not os.path.exists(target)
    first = set(written)
    assert 0 < len(first) < 12
    written.clear()
    fail["block"] = None
    open_slow(source).write_zarr(target, resume=True)
    assert set(written) == set(range(12)) - first
    assert_equal_adata(anndata.read_zarr(target), expected)


def test_failed_write_without_progress_leaves_nothing(tmp_path, slow_source):
    source, _ = slow_source
    target = str(tmp_path / "n.zarr")
    old = previous_output(target)
    adata = annscale.read_lazy(source)
    adata.uns["bad"] = object()
    with pytest.raises(TypeError):
        adata.write_zarr(target)
    assert_equal_adata(anndata.read_zarr(target), old)
    assert [p for p in os.listdir(tmp_path) if ".annscale-" in p] == []


def test_killed_h5ad_write_keeps_previous(tmp_path, slow_source):
    source, expected = slow_source
    target = str(tmp_path / "out.h5ad")
    old = previous_output(target)

    def staging_has_data():
        files = glob.glob(str(tmp_path / ".out.h5ad.annscale-staging-*"))
        return bool(files) and os.path.getsize(files[0]) > 20_000

    proc = run_script("write", "h5ad", source, target, sleep=0.3)
    kill_when(proc, staging_has_data)
    assert_equal_adata(anndata.read_h5ad(target), old)
    annscale.read_lazy(source, chunks=10).write_h5ad(target)
    assert_equal_adata(anndata.read_h5ad(target), expected)


def test_s3_targets(s3_store, slow_source):
    source, expected = slow_source
    opts = s3_store.storage_options
    fs = s3_store.filesystem()
    for zarr_format in (2, 3):
        url = s3_store.url(f"public/out{zarr_format}.zarr")
        annscale.write_zarr(url, anndata.AnnData(np.ones((2, 2))), storage_options=opts)
        lazy = annscale.read_lazy(source, chunks=25)
        annscale.write_zarr(url, lazy, zarr_format=zarr_format, storage_options=opts)
        store = zarr.storage.FsspecStore.from_url(url, storage_options=opts, read_only=True)
        assert_equal_adata(anndata.read_zarr(store), expected)
        # nothing of the old store, the staging area or the manifest is left
        keys = fs.find(f"{s3_store.bucket}/public/out{zarr_format}.zarr")
        assert not [k for k in keys if ".annscale-" in k]
    assert not [k for k in fs.ls(f"{s3_store.bucket}/public") if "annscale-staging" in k]
    url = s3_store.url("public/out.h5ad")
    annscale.write_h5ad(url, annscale.read_lazy(source, chunks=25), storage_options=opts)
    fs.invalidate_cache()
    with fs.open(f"{s3_store.bucket}/public/out.h5ad", "rb") as f:
        assert_equal_adata(anndata.read_h5ad(f), expected)


def test_local_cluster_public_writes(cluster_client, tmp_path, slow_source, s3_store):
    from annscale.scheduler import active_client

    assert active_client() is cluster_client
    source, expected = slow_source
    lazy = annscale.read_lazy(source, chunks=20)
    for name in ("c.zarr", "c.h5ad"):
        out = str(tmp_path / name)
        write = lazy.write_zarr if name.endswith(".zarr") else lazy.write_h5ad
        write(out)
        assert_equal_adata(read_any(out), expected)
    # workers write straight to the object store's staging prefix
    url = s3_store.url("cluster/c.zarr")
    lazy.write_zarr(url, storage_options=s3_store.storage_options)
    store = zarr.storage.FsspecStore.from_url(url, storage_options=s3_store.storage_options)
    assert_equal_adata(anndata.read_zarr(store), expected)


@pytest.mark.parametrize("kind", ["zarr", "h5ad"])
def test_memory_stays_bounded(tmp_path, kind):
    """Writing lazy arrays many times larger than the per-chunk budget holds a few chunks."""
    n_obs, n_vars = 4000, 1000
    rng = np.random.default_rng(0)
    dense = rng.random((n_obs, n_vars), dtype=np.float32)  # 16 MB
    x = sp.random(n_obs, n_vars, density=0.25, format="csr", random_state=1, dtype=np.float32)
    source = str(tmp_path / "big.h5ad")
    anndata.AnnData(X=x, layers={"dense": dense}).write_h5ad(source)
    full = dense.nbytes + x.data.nbytes + x.indices.nbytes  # 16 MB + 8 MB
    del dense, x
    target = str(tmp_path / f"out.{kind}")
    budget = 2**19  # bytes of stored data per lazy chunk: 16 blocks of X, 31 of the layer
    proc = run_script(
        "memory", kind, source, target, env_extra={"ANNSCALE_CHUNK_TARGET_BYTES": str(budget)}
    )
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    peak = int(out.split()[-1])
    assert peak < full / 3, (peak, full)
    back = read_any(target)
    assert back.X.nnz > 0 and back.layers["dense"].shape == (n_obs, n_vars)
