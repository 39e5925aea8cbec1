"""Chunk read tasks and deferred sources on raw stores written with h5py / zarr / anndata."""

from __future__ import annotations

import os
import pickle

import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

import annscale
from annscale.errors import CorruptElementError
from annscale.lazy.sources import DenseSource, SparseSource, compose
from annscale.lazy.sparse_chunks import CSCChunk, CSRChunk, as_plain
from annscale.storage import cache
from annscale.storage.location import as_location


def _matrix(n=200, m=40, density=0.1, fmt="csr", seed=0, dtype=np.float32):
    return sp.random(n, m, density=density, format=fmt, dtype=dtype, random_state=seed)


def write_sparse_h5(path, mat, key="X", **dataset_kwargs):
    with h5py.File(path, "a") as f:
        g = f.create_group(key)
        g.attrs["encoding-type"] = f"{mat.format}_matrix"
        g.attrs["encoding-version"] = "0.1.0"
        g.attrs["shape"] = np.array(mat.shape, dtype=np.int64)
        for name in ("data", "indices", "indptr"):
            g.create_dataset(
                name, data=getattr(mat, name), chunks=True, maxshape=(None,), **dataset_kwargs
            )


def write_sparse_zarr(path, mat, key="X", *, chunk=16, zarr_format=3):
    root = zarr.open_group(path, mode="a", zarr_format=zarr_format)
    g = root.create_group(key)
    g.attrs.update(
        {"encoding-type": f"{mat.format}_matrix", "encoding-version": "0.1.0",
         "shape": list(mat.shape)}
    )  # fmt: skip
    for name in ("data", "indices", "indptr"):
        values = getattr(mat, name)
        arr = g.create_array(name, shape=values.shape, dtype=values.dtype, chunks=(chunk,))
        arr[...] = values


def source(path, mat, key="X", **kw):
    fmt = mat.format
    return SparseSource(
        as_location(path), "/" + key, mat.shape, mat.dtype, format=fmt,
        bytes_per_nnz=mat.data.itemsize + mat.indices.itemsize, **kw,
    )  # fmt: skip


@pytest.fixture(params=["h5", "zarr2", "zarr3"])
def stored(request, tmp_path):
    """(path, csr matrix, csc matrix) in one store of each kind."""
    csr = _matrix()
    csc = _matrix(fmt="csc", seed=1)
    if request.param == "h5":
        path = str(tmp_path / "m.h5ad")
        write_sparse_h5(path, csr, "X")
        write_sparse_h5(path, csc, "C")
    else:
        path = str(tmp_path / "m.zarr")
        fmt = 2 if request.param == "zarr2" else 3
        write_sparse_zarr(path, csr, "X", zarr_format=fmt)
        write_sparse_zarr(path, csc, "C", zarr_format=fmt)
    yield path, csr, csc
    cache.clear()


def _eq(a, b):
    assert a.shape == b.shape
    assert (sp.csr_matrix(a) != sp.csr_matrix(b)).nnz == 0


def test_full_read_chunked_by_nnz(stored):
    path, csr, csc = stored
    with annscale.settings.override(chunk_target_bytes=400):
        x = source(path, csr).materialize()
        c = source(path, csc, "C").materialize()
    assert x.numblocks[0] > 5 and x.numblocks[1] == 1
    assert c.numblocks[0] == 1 and c.numblocks[1] > 5
    # every chunk holds at most the target (or one larger row)
    for lo, hi in zip(np.cumsum((0, *x.chunks[0][:-1])), np.cumsum(x.chunks[0])):
        assert (csr.indptr[hi] - csr.indptr[lo]) * 8 <= 400 or hi - lo == 1
    assert isinstance(x._meta, CSRChunk) and isinstance(c._meta, CSCChunk)
    got = x.compute()
    assert isinstance(got, sp.csr_matrix)
    _eq(got, csr)
    got = c.compute()
    assert isinstance(got, sp.csc_matrix)
    _eq(got, csc)


def test_rows_per_chunk(stored):
    path, csr, _ = stored
    x = source(path, csr, chunks=(50, -1)).materialize()
    assert x.chunks[0] == (50, 50, 50, 50)


@pytest.mark.parametrize(
    "rows, cols",
    [
        (np.array([5, 3, 3, 199, 0]), None),
        (slice(10, 120), np.array([39, 0, 7])),
        (np.array([1, 2, 3, 100, 150]), slice(5, 30)),
        (np.array([], dtype=np.int64), None),
        (slice(None), np.array([3, 3, 1])),
    ],
)
def test_selection_pushdown(stored, rows, cols):
    path, csr, csc = stored
    with annscale.settings.override(chunk_target_bytes=200):
        for mat, key in ((csr, "X"), (csc, "C")):
            v = source(path, mat, key).subset(rows, cols)
            exp = mat[rows][:, cols if cols is not None else slice(None)]
            assert v.shape == exp.shape
            got = v.materialize().compute()
            assert got.format == mat.format
            _eq(got, exp)


def test_views_of_views_compose(stored):
    path, csr, _ = stored
    s = source(path, csr)
    v = s.subset(slice(10, 150)).subset(np.array([0, 5, 5, 100])).subset(np.array([3, 0]))
    v = v.subset(slice(None), slice(5, 25)).subset(slice(None), np.array([2, 0]))
    exp = csr[10:150][[0, 5, 5, 100]][[3, 0]][:, 5:25][:, [2, 0]]
    _eq(v.materialize().compute(), exp)


def test_compose_algebra():
    n = 50
    base = np.arange(n)
    for outer in (None, slice(3, 40), slice(0, 50, 3), np.array([7, 1, 1, 30])):
        o = base if outer is None else base[outer]
        for inner in (slice(1, 4), np.array([0, 2, 2]), slice(None), slice(0, 3, 2)):
            got = compose(outer, inner, n)
            got = base if got is None else base[got]
            assert got.tolist() == o[inner].tolist()


def test_dense_source(tmp_path):
    dense = np.arange(300 * 7, dtype=np.float64).reshape(300, 7)
    z = zarr.open_group(str(tmp_path / "d.zarr"), mode="w", zarr_format=3)
    arr = z.create_array("A", shape=dense.shape, dtype=dense.dtype, chunks=(10, 7), shards=(40, 7))
    arr[...] = dense
    arr.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    s = DenseSource(as_location(str(tmp_path / "d.zarr")), "/A", dense.shape, dense.dtype,
                    storage_chunks=(40, 7))  # fmt: skip
    with annscale.settings.override(chunk_target_bytes=40 * 7 * 8 * 2):
        x = s.materialize()
    # never finer than a shard; two shards merged per chunk
    assert x.chunks[0] == (80, 80, 80, 60)
    np.testing.assert_array_equal(x.compute(), dense)
    rows = np.array([299, 0, 0, 41, 42])
    np.testing.assert_array_equal(s.subset(rows, np.array([6, 1])).materialize().compute(),
                                  dense[rows][:, [6, 1]])  # fmt: skip
    np.testing.assert_array_equal(s.subset(slice(5, 17)).materialize().compute(), dense[5:17])


def test_sources_pickle_and_names_are_deterministic(stored):
    path, csr, _ = stored
    s = source(path, csr).subset(np.array([4, 2]))
    s2 = pickle.loads(pickle.dumps(s))
    assert s2.materialize().name == s.materialize().name
    assert s.materialize().name != source(path, csr).materialize().name


# ------------------------------------------------------------------------------ bad data


def test_bad_indptr_error_names_file_element_chunk(tmp_path):
    path = str(tmp_path / "bad.h5ad")
    csr = _matrix()
    write_sparse_h5(path, csr)
    with h5py.File(path, "a") as f:
        ip = f["X/indptr"][...]
        ip[150] = ip[149] - 1  # not monotonic
        f["X/indptr"][...] = ip
    x = source(path, csr).subset(slice(100, 200))
    # chunking by nonzeros reads indptr of the selection when materialising: it notices
    with pytest.raises(CorruptElementError) as e:
        x.materialize()
    assert path in str(e.value) and "/X/indptr" in str(e.value)
    # a chunk task notices too (the graph was built before the corruption)
    cache.clear()
    with h5py.File(path, "a") as f:
        f["X/indptr"][...] = csr.indptr
    y = source(path, csr, chunks=50).materialize()
    cache.clear()
    with h5py.File(path, "a") as f:
        f["X/indptr"][150] = csr.indptr[149] - 1
    with pytest.raises(CorruptElementError) as e:
        y.compute(scheduler="synchronous")
    msg = str(e.value)
    # indptr[150] ends chunk [100, 150) and starts chunk [150, 200): either names itself
    assert path in msg and "/X/indptr" in msg
    assert "chunk rows [100, 150)" in msg or "chunk rows [150, 200)" in msg
    cache.clear()


def test_indices_out_of_range(tmp_path):
    path = str(tmp_path / "bad.h5ad")
    csr = _matrix()
    write_sparse_h5(path, csr)
    with h5py.File(path, "a") as f:
        f["X/indices"][csr.indptr[60]] = 4000
    x = source(path, csr, chunks=50).materialize()
    with pytest.raises(CorruptElementError) as e:
        x.compute(scheduler="synchronous")
    msg = str(e.value)
    assert path in msg and "/X/indices" in msg and "rows [50, 100)" in msg
    cache.clear()


@pytest.mark.parametrize("zarr_format", [2, 3])
@pytest.mark.parametrize("component", ["data", "indices", "indptr"])
def test_missing_zarr_chunk_is_an_error(tmp_path, zarr_format, component):
    path = str(tmp_path / "m.zarr")
    csr = _matrix()
    write_sparse_zarr(path, csr, zarr_format=zarr_format, chunk=16)
    x = source(path, csr, chunks=50).materialize()  # reads indptr: intact so far
    arr = zarr.open_array(path, path=f"X/{component}")
    key = arr.metadata.encode_chunk_key((3,))
    os.remove(os.path.join(path, "X", component, *key.split("/")))
    with pytest.raises(CorruptElementError) as e:
        x.compute(scheduler="synchronous")
    msg = str(e.value)
    assert path in msg and f"/X/{component}" in msg and "missing" in msg and "chunk rows" in msg
    cache.clear()


def test_absent_leading_indptr_chunk_of_empty_rows_is_fine(tmp_path):
    # zarr does not store chunks equal to the fill value: leading empty rows give an absent
    # indptr chunk that is legitimately all zeros
    dense = np.zeros((60, 5), dtype=np.float32)
    dense[40:, 2] = 1
    csr = sp.csr_matrix(dense)
    path = str(tmp_path / "m.zarr")
    write_sparse_zarr(path, csr, chunk=16)
    # first indptr chunk (rows 0-15) is all zeros: zarr skipped writing it
    assert not os.path.exists(os.path.join(path, "X", "indptr", "c", "0"))
    assert (as_plain(source(path, csr).materialize().compute()) != csr).nnz == 0
    cache.clear()


# ------------------------------------------------------------------------------ cache


def test_cache_lru_and_fork_safety(tmp_path):
    paths = []
    for i in range(3):
        p = str(tmp_path / f"{i}.h5ad")
        write_sparse_h5(p, _matrix(seed=i))
        paths.append(p)
    cache.clear()
    cache.set_capacity(2)
    try:
        roots = [cache.get_root(p) for p in paths]
        assert [loc.url for loc in cache.cached_locations()] == paths[1:]
        assert not roots[0].handle.id.valid  # evicted: closed
        assert cache.get_root(paths[2]) is roots[2]
        # a forked child starts with an empty cache and leaves the parent's handles alone
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            ok = cache.cached_locations() == []
            os._exit(0 if ok else 1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert roots[2].handle.id.valid
    finally:
        cache.set_capacity(32)
        cache.clear()


def test_absent_indices_chunk_of_column_zero_is_fine(tmp_path):
    # a one-column matrix stores only zeros in indices: zarr writes no indices chunk at all
    csr = sp.csr_matrix(np.arange(1, 41, dtype=np.float32).reshape(40, 1))
    path = str(tmp_path / "m.zarr")
    write_sparse_zarr(path, csr, chunk=16)
    assert not os.path.exists(os.path.join(path, "X", "indices", "c", "0"))
    assert (as_plain(source(path, csr, chunks=10).materialize().compute()) != csr).nnz == 0
    cache.clear()
