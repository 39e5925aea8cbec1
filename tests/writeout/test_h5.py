"""write_dask_h5: one in-order writer, bounded lookahead, read back by anndata."""

from __future__ import annotations

import threading
import time
import tracemalloc

import dask
import h5py
import numpy as np
import pytest
from writeout_check import assert_same, read_back_h5
from writeout_gen import dense_dask, sparse_dask

from annscale.scheduler import ordered_results
from annscale.storage.open import open_root
from annscale.writeout import write_dask_h5


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_roundtrip(tmp_path, fmt):
    x = sparse_dask((57, 23), 8, fmt=fmt, density=0.2, seed=2, empty=(2,))
    path = str(tmp_path / "a.h5ad")
    with open_root(path, "w", kind="h5ad") as root:
        write_dask_h5(root, "X", x, compression="gzip", compression_opts=4, lookahead=3)
    with h5py.File(path, "r") as f:
        assert f["X/data"].maxshape == (None,)
        assert f["X/data"].compression == "gzip"
        assert f["X/indptr"].dtype == np.int32  # 57 * 23 values cannot overflow int32
        assert dict(f["X/data"].attrs) == {}
    assert_same(read_back_h5(path, "X", fmt), x.compute())


def test_sparse_int64_indptr_unless_known_small(tmp_path):
    x = sparse_dask((2**16, 2**16), 2**15, density=0.0)  # shape product >= 2**31
    path = str(tmp_path / "b.h5ad")
    with open_root(path, "w", kind="h5ad") as root:
        write_dask_h5(root, "X", x)
        write_dask_h5(root, "Y", x, nnz=0)
    with h5py.File(path, "r") as f:
        assert f["X/indptr"].dtype == np.int64
        assert f["Y/indptr"].dtype == np.int32
    assert read_back_h5(path, "X", "csr").nnz == 0


def test_dense_roundtrip_in_nested_group(tmp_path):
    x = dense_dask((45, 17), (10, 6), seed=4, dtype=np.float64)
    path = str(tmp_path / "c.h5ad")
    with open_root(path, "w", kind="h5ad") as root:
        layers = root.create_group("layers")
        write_dask_h5(layers, "dense", x, lookahead=2)
        write_dask_h5(layers, "dense", x, lookahead=2)  # replacing an element works
    assert_same(read_back_h5(path, "layers/dense", None), x.compute())


def _peak_while(x, fn) -> int:
    """Peak traced allocation (bytes) while ``fn`` runs.

    Two blocks are computed through the same path first, so that one-off imports and
    caches (scipy submodules, dask's tokenizer) are not counted as memory of the write.
    """
    for _ in ordered_results(x.to_delayed().reshape(-1)[:2], 2):
        pass
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_sparse_memory_is_bounded_by_lookahead(tmp_path):
    # 40 blocks of ~100,000 nonzeros; the writer may hold about `lookahead` of them
    x = sparse_dask((40 * 200, 5000), 200, density=0.1, seed=9)
    one = x.blocks[0].compute()
    block_bytes = one.data.nbytes + one.indices.nbytes + one.indptr.nbytes
    total_bytes = int(x.map_blocks(lambda m: np.array([[m.data.nbytes * 2]]), dtype=int).sum())
    assert total_bytes >= 20 * block_bytes * 0.9
    path = str(tmp_path / "m.h5ad")

    def write():
        with open_root(path, "w", kind="h5ad") as root:
            write_dask_h5(root, "X", x, lookahead=2)

    peak = _peak_while(x, write)
    assert peak < 6 * block_bytes, (peak, block_bytes)
    with h5py.File(path, "r") as f:
        assert f["X/data"].shape[0] * 8 == total_bytes


def test_dense_memory_is_bounded_by_lookahead(tmp_path):
    x = dense_dask((30 * 100, 2000), (100, 2000), seed=1)
    block_bytes = 100 * 2000 * 4
    path = str(tmp_path / "d.h5ad")

    def write():
        with open_root(path, "w", kind="h5ad") as root:
            write_dask_h5(root, "X", x, lookahead=2)

    peak = _peak_while(x, write)
    assert peak < 6 * block_bytes, (peak, block_bytes)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["X"][2900:], x[2900:].compute())


def test_ordered_results_keeps_order_and_bounds_work_in_flight():
    live = {"now": 0, "max": 0}
    lock = threading.Lock()

    def make(i):
        with lock:
            live["now"] += 1
            live["max"] = max(live["max"], live["now"])
        time.sleep(0.01 * (i % 3))  # later blocks may finish first
        return i

    blocks = [dask.delayed(make)(i) for i in range(20)]
    seen = []
    for i, value in ordered_results(blocks, lookahead=3):
        assert i == value
        seen.append(value)
        with lock:
            live["now"] -= 1  # consumed: the block's memory may be freed
    assert seen == list(range(20))
    assert live["max"] <= 3


def _block_counts(x, fmt):
    """Nonzeros of each major-axis block (``x`` has one block along the minor axis)."""
    return np.array([int(b.compute().nnz) for b in x.to_delayed().reshape(-1)])


@pytest.mark.parametrize("fmt", ["csr", "csc"])
def test_sparse_blocks_write_themselves_in_place(tmp_path, fmt, monkeypatch):
    """With every block's nonzeros known, datasets are allocated at their final size and
    each block's task writes its bytes itself (h5raw.write_at), in parallel."""
    from annscale.lazy import h5raw

    x = sparse_dask((57, 23), 8, fmt=fmt, density=0.2, seed=2, empty=(2,))
    counts = _block_counts(x, fmt)
    threads = set()
    real = h5raw.write_at

    def spy(target, start, values):
        threads.add(threading.get_ident())
        real(target, start, values)

    monkeypatch.setattr(h5raw, "write_at", spy)
    path = str(tmp_path / "a.h5ad")
    with open_root(path, "w", kind="h5ad") as root:
        write_dask_h5(root, "X", x, lookahead=3, block_nnz=counts)
    assert threads - {threading.get_ident()}  # written by the computing threads
    with h5py.File(path, "r") as f:
        for name in ("data", "indices", "indptr"):
            assert f[f"X/{name}"].chunks is None  # contiguous, as anndata writes
        assert f["X/indptr"].dtype == np.int32
        assert f["X/data"].shape == (int(counts.sum()),)
    assert_same(read_back_h5(path, "X", fmt), x.compute())


def test_sparse_in_place_wrong_block_nnz_is_a_clear_error(tmp_path):
    from annscale.errors import CorruptElementError

    x = sparse_dask((40, 10), 10, density=0.3, seed=3)
    counts = _block_counts(x, "csr")
    counts[1] += 1
    path = str(tmp_path / "bad.h5ad")
    with pytest.raises(CorruptElementError, match=r"block 1 has \d+ nonzeros") as info:
        with open_root(path, "w", kind="h5ad") as root:
            write_dask_h5(root, "X", x, lookahead=2, block_nnz=counts)
    assert info.value.element == "/X" and "bad.h5ad" in str(info.value)


def test_sparse_with_compression_or_chunks_is_written_through_hdf5(tmp_path):
    x = sparse_dask((30, 12), 7, density=0.3, seed=5)
    counts = _block_counts(x, "csr")
    path = str(tmp_path / "c.h5ad")
    with open_root(path, "w", kind="h5ad") as root:
        write_dask_h5(root, "X", x, compression="gzip", block_nnz=counts)
        write_dask_h5(root, "Y", x, chunks=16, block_nnz=counts)
    with h5py.File(path, "r") as f:
        assert f["X/data"].compression == "gzip"
        assert f["Y/data"].chunks == (16,)
        assert f["Y/indptr"].dtype == np.int32  # the total is known
    for key in ("X", "Y"):
        assert_same(read_back_h5(path, key, "csr"), x.compute())


@pytest.mark.parametrize(
    ("chunks", "in_place"), [((10, 17), True), ((10, 6), False), ((45, 17), True)]
)
def test_dense_row_blocks_write_themselves_in_place(tmp_path, monkeypatch, chunks, in_place):
    from annscale.lazy import h5raw

    calls = []
    real = h5raw.write_at
    monkeypatch.setattr(h5raw, "write_at", lambda *a: calls.append(a[1]) or real(*a))
    x = dense_dask((45, 17), chunks, seed=4, dtype=np.float64)
    path = str(tmp_path / "d.h5ad")
    with open_root(path, "w", kind="h5ad") as root:
        write_dask_h5(root, "X", x, lookahead=3)
    assert bool(calls) == in_place
    if in_place:  # flat element offsets of the row blocks
        assert sorted(calls) == [r * 17 for r in range(0, 45, chunks[0])]
    assert_same(read_back_h5(path, "X", None), x.compute())


def test_small_dense_arrays_are_computed_at_once(tmp_path, monkeypatch):
    """Up to WHOLE_DENSE_BYTES a dense array is one compute and one write (no per-block
    tasks); the file is the same as written by blocks."""
    from annscale.lazy import h5raw
    from annscale.writeout import h5

    x = dense_dask((45, 17), (10, 17), seed=4, dtype=np.float64)
    paths = {}
    for whole in (True, False):
        monkeypatch.setattr(h5, "WHOLE_DENSE_BYTES", 16 * 2**20 if whole else 0)
        calls: list[int] = []
        real = h5raw.write_at

        def counting(*a, calls=calls, real=real):
            calls.append(a[1])
            return real(*a)

        monkeypatch.setattr(h5raw, "write_at", counting)
        paths[whole] = str(tmp_path / f"d{whole}.h5ad")
        with open_root(paths[whole], "w", kind="h5ad") as root:
            write_dask_h5(root, "X", x, lookahead=3)
        assert bool(calls) != whole  # blocks write themselves only when written by blocks
        monkeypatch.undo()
    with h5py.File(paths[True], "r") as a, h5py.File(paths[False], "r") as b:
        assert a["X"].chunks is None and a["X"].dtype == b["X"].dtype
        np.testing.assert_array_equal(a["X"][()], b["X"][()])
    np.testing.assert_array_equal(read_back_h5(paths[True], "X", None), x.compute())
    # a block that fails fails the write, naming its error
    bad = dense_dask((40, 20), (10, 20), seed=5, fail_block=(2, 0))
    with pytest.raises(Exception, match="block"):
        with open_root(str(tmp_path / "bad.h5ad"), "w", kind="h5ad") as root:
            write_dask_h5(root, "X", bad)


def test_in_place_writes_from_a_process_pool(tmp_path):
    """Tasks carry the file's address (path, inode, offset): blocks computed in other
    processes write their bytes themselves."""
    import annscale

    x = sparse_dask((60, 20), 15, density=0.2, seed=8)
    counts = _block_counts(x, "csr")
    d = dense_dask((60, 5), (15, 5), seed=8)
    path = str(tmp_path / "p.h5ad")
    with annscale.settings.override(scheduler="processes"):
        with open_root(path, "w", kind="h5ad") as root:
            write_dask_h5(root, "X", x, lookahead=2, block_nnz=counts)
            write_dask_h5(root, "D", d, lookahead=2)
    assert_same(read_back_h5(path, "X", "csr"), x.compute())
    assert_same(read_back_h5(path, "D", None), d.compute())
