"""write_dask_zarr: dense and sparse, zarr v2/v3, with and without shards, read back by anndata."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import dask.array as da
import numpy as np
import pytest
import scipy.sparse as sp
import zarr
from dask.delayed import Delayed
from writeout_check import assert_same, read_back_zarr
from writeout_gen import dense_dask, sparse_dask

import annscale.writeout.zarr as wz
from annscale import settings
from annscale.errors import FormatError
from annscale.writeout import write_dask_zarr
from annscale.writeout.zarr import block_nnz, sparse_format

LAYOUTS = [
    pytest.param(2, None, id="v2"),
    pytest.param(3, None, id="v3"),
    pytest.param(3, "shards", id="v3-sharded"),
]


@pytest.fixture
def write_log(monkeypatch):
    """Record every (array path, selection) a write task sends to zarr."""
    log: list[tuple[str, tuple[slice, ...]]] = []
    real = wz.open_target

    class Spy:
        def __init__(self, arr, path):
            self.arr, self.path = arr, path

        def __setitem__(self, sel, value):
            sel = sel if isinstance(sel, tuple) else (sel,)
            log.append((self.path, sel))
            self.arr[sel] = value

    monkeypatch.setattr(wz, "open_target", lambda t: Spy(real(t), t.path))
    return log


def units_written(log, path, unit):
    """How many writes touched each unit (chunk/shard) of array ``path``."""
    counts: Counter = Counter()
    for p, sel in log:
        if p != path:
            continue
        ranges = [range(s.start // u, -(-s.stop // u)) for s, u in zip(sel, unit)]
        for idx in np.ndindex(*(len(r) for r in ranges)):
            counts[tuple(r[i] for r, i in zip(ranges, idx))] += 1
    return counts


@pytest.mark.parametrize(("zarr_format", "shards"), LAYOUTS)
@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_roundtrip(new_zarr, write_log, zarr_format, shards, fmt):
    # blocks of 9 major slices: nonzeros per block do not line up with chunks of 16
    x = sparse_dask((53, 31), 9, fmt=fmt, density=0.15, seed=1)
    store = new_zarr(zarr_format)
    write_dask_zarr(
        store, "/", "X", x, zarr_format=zarr_format, chunks=16, shards=64 if shards else None
    )
    expected = x.compute()
    got = read_back_zarr(store, "X", fmt)
    assert_same(got, expected)
    g = zarr.open_group(store)
    assert g["X"].attrs["shape"] == [53, 31]
    for name in ("data", "indices", "indptr"):
        assert dict(g[f"X/{name}"].attrs) == {}, "no encoding attrs on the three arrays"
        assert g[f"X/{name}"].chunks == (16,)
    assert g["X/indptr"].dtype == np.int32 and g["X/indices"].dtype == np.int32
    # no two tasks ever wrote the same chunk (shard), and every one was written
    unit = 64 if shards else 16
    n_major = expected.shape[0 if fmt == "csr" else 1]
    for name, length in (
        ("data", expected.nnz),
        ("indices", expected.nnz),
        ("indptr", n_major + 1),
    ):
        counts = units_written(write_log, f"X/{name}", (unit,))
        assert set(counts.values()) == {1}, counts
        assert len(counts) == -(-length // unit)


@pytest.mark.parametrize(("zarr_format", "shards"), LAYOUTS)
def test_dense_roundtrip_chunk_aligned(new_zarr, write_log, zarr_format, shards):
    # dask chunks (7, 11) do not fit the zarr grid: the engine rechunks to whole units
    x = dense_dask((50, 30), (7, 11), seed=3)
    store = new_zarr(zarr_format)
    write_dask_zarr(
        store,
        "layers",
        "dense",
        x,
        zarr_format=zarr_format,
        chunks=(8, 8),
        shards=(16, 16) if shards else None,
    )
    assert_same(read_back_zarr(store, "layers/dense", None), x.compute())
    arr = zarr.open_group(store)["layers/dense"]
    assert arr.chunks == (8, 8)
    unit = (16, 16) if shards else (8, 8)
    if shards:
        assert arr.shards == (16, 16)
    counts = units_written(write_log, "layers/dense", unit)
    assert set(counts.values()) == {1}, counts
    assert len(counts) == -(-50 // unit[0]) * -(-30 // unit[1])


def test_dense_default_chunks_follow_dask(new_zarr):
    x = dense_dask((40, 12), (10, 12), dtype=np.float64)
    store = new_zarr(3)
    write_dask_zarr(store, "/", "X", x, zarr_format=3)
    assert zarr.open_group(store)["X"].chunks == (10, 12)
    assert_same(read_back_zarr(store, "X", None), x.compute())


def test_dense_1d_and_int(new_zarr):
    x = da.arange(1000, chunks=70, dtype=np.int64)
    store = new_zarr(2)
    write_dask_zarr(store, "/", "v", x, zarr_format=2, chunks=64)
    assert_same(read_back_zarr(store, "v", None), np.arange(1000))


@pytest.mark.parametrize(
    "case",
    ["empty-blocks", "all-zero", "one-block", "tiny-blocks", "minor-chunked", "no-rows"],
)
def test_sparse_edge_cases(new_zarr, write_log, case):
    if case == "empty-blocks":
        x = sparse_dask((40, 20), 5, empty=(0, 3, 4, 7))
    elif case == "all-zero":
        x = sparse_dask((30, 20), 7, density=0.0)
    elif case == "one-block":
        x = sparse_dask((60, 25), 60, density=0.3)
    elif case == "tiny-blocks":  # each block far smaller than a chunk
        x = sparse_dask((50, 10), 1, density=0.2)
    elif case == "minor-chunked":  # blocks along the minor axis too
        x = da.from_array(
            sp.random(45, 33, density=0.2, format="csr", random_state=4, dtype=np.float64),
            chunks=(10, 8),
            asarray=False,
        )
    else:
        x = sparse_dask((0, 10), 4)
    store = new_zarr(3)
    write_dask_zarr(store, "/", "X", x, zarr_format=3, chunks=16)
    expected = x.compute()
    assert_same(read_back_zarr(store, "X", "csr"), sp.csr_matrix(expected))
    counts = units_written(write_log, "X/data", (16,))
    assert all(c == 1 for c in counts.values())
    assert len(counts) == -(-expected.nnz // 16)


def test_sparse_with_known_nnz_and_compute_false(new_zarr):
    x = sparse_dask((70, 15), 12, density=0.2, seed=5)
    nnz = block_nnz(x, "csr")
    assert nnz.sum() == x.compute().nnz
    store = new_zarr(3)
    graph = write_dask_zarr(store, "/", "X", x, zarr_format=3, chunks=32, nnz=nnz, compute=False)
    assert isinstance(graph, Delayed)
    # nothing written yet but the empty arrays
    assert zarr.open_group(store)["X/data"].nchunks_initialized == 0
    assert graph.compute() is None
    assert_same(read_back_zarr(store, "X", "csr"), x.compute())


def test_sparse_wrong_nnz_is_reported(new_zarr):
    x = sparse_dask((30, 10), 10, density=0.3)
    nnz = block_nnz(x, "csr")
    nnz[1] += 1
    store = new_zarr(3)
    with pytest.raises(Exception, match="planned"):
        write_dask_zarr(store, "/", "X", x, zarr_format=3, nnz=nnz)


def test_large_nnz_dtypes_follow_anndata(new_zarr, monkeypatch):
    # pretend the threshold is small to check the switch without 2**31 values
    import annscale.writeout.plan as plan

    monkeypatch.setattr(plan, "INT32_MAX", 100)
    monkeypatch.setattr(
        plan, "indptr_dtype", lambda n: np.dtype(np.int64) if n >= 100 else np.dtype(np.int32)
    )
    x = sparse_dask((40, 20), 10, density=0.3)
    store = new_zarr(3)
    write_dask_zarr(store, "/", "X", x, zarr_format=3)
    assert zarr.open_group(store)["X/indptr"].dtype == np.int64
    assert_same(read_back_zarr(store, "X", "csr"), x.compute())


def test_overwrites_existing_element_and_checks_format(new_zarr):
    store = new_zarr(2)
    write_dask_zarr(store, "/", "X", dense_dask((10, 4), 5), zarr_format=2)
    x = sparse_dask((12, 6), 5)
    write_dask_zarr(store, "/", "X", x, zarr_format=2)
    assert_same(read_back_zarr(store, "X", "csr"), x.compute())
    with pytest.raises(FormatError, match="zarr format 2"):
        write_dask_zarr(store, "/", "Y", x, zarr_format=3)
    with pytest.raises(ValueError, match="shards need"):
        write_dask_zarr(store, "/", "Y", x, zarr_format=2, shards=8)


def test_sparse_format_detection():
    assert sparse_format(dense_dask((4, 4), 2)) is None
    assert sparse_format(sparse_dask((4, 4), 2)) == "csr"
    assert sparse_format(sparse_dask((4, 4), 2, fmt="csc")) == "csc"


def test_synchronous_scheduler_setting(new_zarr):
    x = sparse_dask((20, 8), 6)
    store = new_zarr(3)
    with settings.override(scheduler="synchronous"):
        write_dask_zarr(store, "/", "X", x, zarr_format=3, chunks=8)
    assert_same(read_back_zarr(store, "X", "csr"), x.compute())


def test_sparse_pieces_wait_in_storage_and_are_removed(new_zarr, monkeypatch):
    """Partial-chunk pieces go from block tasks to merge tasks through files beside the
    arrays (so they cannot pile up in memory, whatever order blocks run in); every merge
    reads its pieces from there, and nothing is left once the write is done."""
    from annscale.writeout import pieces

    loads: list[str] = []
    real_load = pieces.load_piece
    monkeypatch.setattr(wz, "load_piece", lambda ref: loads.append(ref.path) or real_load(ref))
    x = sparse_dask((200, 40), 7, fmt="csr", density=0.2, seed=3)
    store = new_zarr(3)
    write_dask_zarr(store, "/", "X", x, zarr_format=3, chunks=32)
    assert loads and all(f"/{pieces.PIECES_DIR}/X/" in p for p in loads)
    assert not (Path(store) / pieces.PIECES_DIR).exists()
    assert_same(read_back_zarr(store, "X", "csr"), x.compute())
