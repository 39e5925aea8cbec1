"""Direct byte-range reads of uncompressed HDF5 datasets agree with h5py."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

from annscale.lazy import h5raw


@pytest.fixture
def h5(tmp_path):
    path = tmp_path / "d.h5"
    rng = np.random.default_rng(0)
    values = rng.random(10_007).astype(np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("contiguous", data=values)
        f.create_dataset("chunked", data=values, chunks=(333,), maxshape=(None,))
        f.create_dataset("big_endian", data=values.astype(">i8"), chunks=(1000,))
        f.create_dataset("gzip", data=values, chunks=(333,), compression="gzip")
        f.create_dataset("partial", shape=(10_000,), dtype="f4", chunks=(100,))
        f["partial"][:100] = 1  # only the first chunk is allocated
    with h5py.File(path, "r") as f:
        yield f, values


@pytest.mark.parametrize("name", ["contiguous", "chunked", "big_endian"])
def test_ranges_equal_h5py(h5, name):
    f, _ = h5
    d = f[name]
    starts = np.array([0, 5, 332, 333, 999, 4000, 10_000], np.int64)
    stops = np.array([3, 5, 700, 334, 2500, 4001, 10_007], np.int64)
    got = h5raw.read_ranges(d, starts, stops)
    assert got is not None and got.dtype == d.dtype
    exp = np.concatenate([d[a:b] for a, b in zip(starts, stops)])
    np.testing.assert_array_equal(got, exp)


@pytest.mark.parametrize("name", ["gzip", "partial"])
def test_filtered_or_unallocated_datasets_are_left_to_h5py(h5, name):
    f, _ = h5
    assert h5raw.read_ranges(f[name], np.array([0]), np.array([10])) is None


def test_ranges_outside_the_dataset_raise(h5):
    f, _ = h5
    with pytest.raises(IndexError):
        h5raw.read_ranges(f["chunked"], np.array([10_000]), np.array([10_008]))


def test_file_replaced_after_open_is_read_through_hdf5(tmp_path):
    """A file renamed over the open one must not be read by path (that would be other data)."""
    path = tmp_path / "f.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("d", data=np.arange(100, dtype=np.int64))
    f = h5py.File(path, "r")
    try:
        assert h5raw.read_ranges(f["d"], np.array([0]), np.array([3])).tolist() == [0, 1, 2]
        other = tmp_path / "g.h5"
        with h5py.File(other, "w") as g:
            g.create_dataset("d", data=np.arange(100, 200, dtype=np.int64))
        os.replace(other, path)
        assert h5raw.read_ranges(f["d"], np.array([0]), np.array([3])) is None
        assert f["d"][:3].tolist() == [0, 1, 2]
    finally:
        f.close()


def test_write_targets_of_allocated_datasets(tmp_path):
    from annscale.storage.open import open_root

    path = str(tmp_path / "w.h5")
    with open_root(path, "w", kind="h5ad") as root:
        arr = root.create_array("a", shape=(10, 3), dtype=np.float32, allocate=True)
        target = h5raw.write_target(arr.handle)
        assert target is not None and target.length == 30
        h5raw.write_at(target, 3, np.arange(27, dtype=np.float64))  # converted to float32
        h5raw.write_at(target, 0, np.array([7, 8, 9]))
        with pytest.raises(IndexError, match=r"elements \[28, 31\) outside \[0, 30\)"):
            h5raw.write_at(target, 28, np.zeros(3))
        # not for datasets HDF5 fills, filters or has not allocated
        plain = root.create_array("b", shape=(10,), dtype=np.int32)
        zipped = root.create_array("c", shape=(10,), dtype=np.int32, compression="gzip")
        empty = root.create_array("e", shape=(0,), dtype=np.int32, allocate=True)
        assert h5raw.write_target(plain.handle) is None  # contiguous storage allocated late
        assert h5raw.write_target(zipped.handle) is None
        assert h5raw.write_target(empty.handle) is None
        with pytest.raises(ValueError, match="allocate=True"):
            root.create_array("d", shape=(10,), dtype=np.int32, allocate=True, chunks=(5,))
    with h5py.File(path, "r") as f:
        expected = np.concatenate([[7, 8, 9], np.arange(27)]).reshape(10, 3)
        np.testing.assert_array_equal(f["a"][()], expected)
    with h5py.File(path, "r") as f:  # read-only files are not written in place
        assert h5raw.write_target(f["a"]) is None


def test_write_at_refuses_a_replaced_file(tmp_path):
    from annscale.storage.open import open_root

    path = str(tmp_path / "w.h5")
    with open_root(path, "w", kind="h5ad") as root:
        arr = root.create_array("a", shape=(4,), dtype=np.int64, allocate=True)
        target = h5raw.write_target(arr.handle)
        os.rename(path, str(tmp_path / "moved.h5"))
        with open(path, "wb") as f:
            f.write(b"\0" * 4096)
        with pytest.raises(OSError, match="replaced while being written"):
            h5raw.write_at(target, 0, np.arange(4))
        assert not h5raw.writable_in_place(arr.handle.file)


def test_write_at_converts_in_pieces(tmp_path, monkeypatch):
    """Values of another dtype are converted a few MiB at a time (here 16 bytes)."""
    from annscale.storage.open import open_root

    monkeypatch.setattr(h5raw, "_CONVERT_BYTES", 16)
    path = str(tmp_path / "w.h5")
    values = np.arange(37, dtype=np.int32)
    with open_root(path, "w", kind="h5ad") as root:
        arr = root.create_array("a", shape=(40,), dtype=np.int64, allocate=True)
        target = h5raw.write_target(arr.handle)
        h5raw.write_at(target, 3, values)
        h5raw.write_at(target, 0, np.array([9, 0, 8, 0, 7])[::2])  # not contiguous
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["a"][()], np.concatenate([[9, 8, 7], values]))


def test_threads_writing_one_file_take_turns(tmp_path, monkeypatch):
    """Writes of one file from many threads are serialised by one lock per file (waiting
    threads sleep instead of spinning on the kernel's inode lock); other files are not
    held up, and every block lands where it belongs."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from annscale.storage.open import open_root

    active: dict[str, int] = {}
    most: dict[str, int] = {}
    guard = threading.Lock()
    real = h5raw._pwrite_all

    def counting(fd, values, offset, path):
        with guard:
            active[path] = active.get(path, 0) + 1
            most[path] = max(most.get(path, 0), active[path])
        try:
            real(fd, values, offset, path)
        finally:
            with guard:
                active[path] -= 1

    monkeypatch.setattr(h5raw, "_pwrite_all", counting)
    paths = [str(tmp_path / f"w{i}.h5") for i in range(2)]
    with open_root(paths[0], "w", kind="h5ad") as r0, open_root(paths[1], "w", kind="h5ad") as r1:
        targets = [
            h5raw.write_target(
                r.create_array("a", shape=(64, 4096), dtype=np.int32, allocate=True).handle
            )
            for r in (r0, r1)
        ]
        assert h5raw._file_lock(targets[0]) is h5raw._file_lock(targets[0])
        assert h5raw._file_lock(targets[0]) is not h5raw._file_lock(targets[1])
        jobs = [(t, row) for row in range(64) for t in targets]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda j: h5raw.write_at(j[0], j[1] * 4096, np.full(4096, j[1])), jobs))
    assert all(most[p] == 1 for p in paths), most
    for p in paths:
        with h5py.File(p, "r") as f:
            np.testing.assert_array_equal(f["a"][:, 0], np.arange(64))
            assert (f["a"][()] == np.arange(64)[:, None]).all()


def test_dense_arrays_are_read_without_hdf5_after_opening(tmp_path, monkeypatch):
    """read_lazy looks up the layout of a contiguous dense array while the file is open;
    tasks then read its rows with pread (no HDF5 handle). A file changed since is read
    through HDF5 again, never from the stale layout."""
    import anndata

    import annscale
    from annscale.lazy import readers
    from annscale.storage import cache

    path = str(tmp_path / "d.h5ad")
    pca = np.arange(40 * 6, dtype=np.float32).reshape(40, 6)
    anndata.AnnData(np.zeros((40, 3), np.float32), obsm={"X_pca": pca}).write_h5ad(path)
    lazy = annscale.read_lazy(path, chunks=15)
    x = lazy.obsm["X_pca"]
    layout = h5raw.known_layout(path, "/obsm/X_pca")
    assert layout is not None and layout.shape == (40, 6)
    cache.clear()
    monkeypatch.setattr(readers, "get_root", lambda *a: pytest.fail("opened through HDF5"))
    np.testing.assert_array_equal(x.compute(scheduler="sync"), pca)
    np.testing.assert_array_equal(
        x[[3, 30, 7], 2:5].compute(scheduler="sync"), pca[[3, 30, 7], 2:5]
    )
    np.testing.assert_array_equal(h5raw.read_rows(path, "/obsm/X_pca", 5, 9), pca[5:9])
    with pytest.raises(IndexError):
        h5raw.read_rows(path, "/obsm/X_pca", 30, 41)
    monkeypatch.undo()
    # rewritten in place (same size): the layout is not trusted any more
    with h5py.File(path, "r+") as f:
        f["obsm/X_pca"][...] = -pca
    assert h5raw.known_layout(path, "/obsm/X_pca") is None
    cache.clear()
    np.testing.assert_array_equal(x.compute(scheduler="sync"), -pca)


def test_sparse_ranges_are_read_without_hdf5_after_opening(tmp_path, monkeypatch):
    """read_lazy looks up the layouts of a sparse group's arrays while the file is open; a
    chunk of one row range is then read with pread alone, with the same checks."""
    import anndata
    import scipy.sparse as sp

    import annscale
    from annscale.errors import CorruptElementError
    from annscale.lazy import readers
    from annscale.storage import cache

    x = sp.random(50, 30, density=0.2, format="csr", random_state=0, dtype=np.float32)
    good, bad_ip, bad_ix = (str(tmp_path / f"{n}.h5ad") for n in ("good", "ip", "ix"))
    for path in (good, bad_ip, bad_ix):
        anndata.AnnData(x).write_h5ad(path)
    with h5py.File(bad_ip, "r+") as f:
        f["X/indptr"][20] = f["X/indptr"][19] - 1  # not non-decreasing
    with h5py.File(bad_ix, "r+") as f:
        f["X/indices"][5] = 30  # past the last column
    lazy = {p: annscale.read_lazy(p, chunks=20).X for p in (good, bad_ip, bad_ix)}
    cache.clear()
    monkeypatch.setattr(readers, "get_root", lambda *a: pytest.fail("opened through HDF5"))
    got = lazy[good].compute(scheduler="sync")
    assert (sp.csr_matrix(got) != x).nnz == 0
    with pytest.raises(CorruptElementError, match="indptr") as info:
        lazy[bad_ip].compute(scheduler="sync")
    assert bad_ip in str(info.value) and "/X/indptr" in str(info.value)
    with pytest.raises(CorruptElementError, match="indices out of range") as info:
        lazy[bad_ix].compute(scheduler="sync")
    assert bad_ix in str(info.value) and "/X/indices" in str(info.value)
