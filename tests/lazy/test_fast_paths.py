"""The lazy engine's fast paths give the same results as the general ones.

Local uncompressed ``.h5ad`` row selections are not merged (direct reads); other stores merge
nearby rows; big selections are split for the threads; per-gene sums of a stored CSR matrix
are computed by the read tasks (from a memory map of a local file); computing skips dask's
search for a distributed client when none can exist, and still uses one when it is active.
None of this is timed here (see benchmarks/).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import scipy.sparse as sp

import annscale
from annscale.errors import CorruptElementError
from annscale.lazy import h5raw, sources
from annscale.lazy.planning import plan_row_groups
from annscale.lazy.sources import (
    MERGE_GAP_BYTES,
    SPLIT_MIN_BYTES,
    merge_gap_bytes,
    parallel_target,
)
from annscale.storage import cache
from annscale.storage.location import as_location

from .test_readers import _matrix, source, write_sparse_h5, write_sparse_zarr


@pytest.fixture(autouse=True)
def _clear_cache():
    yield
    cache.clear()


def _store(tmp_path, mat, kind):
    """Write ``mat`` as ``/X`` of a store: ``raw`` (uncompressed h5ad), ``gzip`` or ``zarr``."""
    if kind == "zarr":
        path = str(tmp_path / "m.zarr")
        write_sparse_zarr(path, mat)
    else:
        path = str(tmp_path / f"{kind}.h5ad")
        write_sparse_h5(path, mat, **({"compression": "gzip"} if kind == "gzip" else {}))
    return path


# ------------------------------------------------------------------------ merging row ranges


def test_merge_gap_depends_on_the_store(tmp_path):
    csr = _matrix()
    raw, gz, zr = (_store(tmp_path, csr, kind) for kind in ("raw", "gzip", "zarr"))
    # read directly at microseconds per range: never merged
    assert merge_gap_bytes(as_location(raw), "/X") == 0
    # compressed HDF5 and zarr decode whole chunks per range read: merged
    assert merge_gap_bytes(as_location(gz), "/X") == MERGE_GAP_BYTES
    assert merge_gap_bytes(as_location(zr), "/X") == MERGE_GAP_BYTES


def test_remote_stores_merge(tmp_path, monkeypatch):
    # a Location that is not local merges without looking at the store
    class Remote:
        is_local = False

    assert merge_gap_bytes(Remote(), "/X") == MERGE_GAP_BYTES


@pytest.mark.parametrize("kind", ["raw", "gzip", "zarr"])
@pytest.mark.parametrize(
    "rows",
    [
        np.arange(0, 200, 3),
        np.array([5, 6, 7, 100, 101, 199]),
        np.array([150, 3, 3, 80, 2]),  # unsorted, duplicates
        np.array([], dtype=np.int64),
    ],
)
def test_row_selections_equal_memory_in_every_store(tmp_path, kind, rows):
    csr = _matrix()
    path = _store(tmp_path, csr, kind)
    got = source(path, csr).subset(rows).materialize().compute()
    assert got.shape == (len(rows), csr.shape[1])
    assert (sp.csr_matrix(got) != csr[rows]).nnz == 0


def test_rows_read_without_merging_need_no_take(tmp_path):
    csr = _matrix()
    path = str(tmp_path / "m.h5ad")
    write_sparse_h5(path, csr)
    x = source(path, csr).subset(np.array([1, 2, 9, 50, 51, 52, 120])).materialize()
    (task,) = [v[0] for v in x.dask.layers[x.name].values()]
    assert task.take is None  # exactly the selected rows are read, in order
    assert task.starts.tolist() == [1, 9, 50, 120] and task.stops.tolist() == [3, 10, 53, 121]


def test_gap_bytes_count_towards_the_group_target():
    rows = np.array([0, 100, 200, 300])
    row_bytes = np.full(4, 10)
    gap_units = np.arange(401) * 10  # 10 bytes per stored row
    kw = dict(target_bytes=1000, max_gap=10_000, gap_units=gap_units)
    # selected bytes alone fit one group; with the 990 bytes read between rows they do not
    assert len(plan_row_groups(rows, row_bytes, **kw)) == 1
    groups = plan_row_groups(rows, row_bytes, **kw, unit_bytes=1)
    assert len(groups) == 4
    for g in groups:
        read = gap_units[g.stops] - gap_units[g.starts]
        assert int(read.sum()) <= 1000


def test_reads_only_selected():
    (g,) = plan_row_groups(np.array([1, 2, 5]), np.ones(3), target_bytes=100, max_gap=0)
    assert g.reads_only_selected
    (g,) = plan_row_groups(np.array([1, 2, 5]), np.ones(3), target_bytes=100, max_gap=5)
    assert not g.reads_only_selected  # rows 3 and 4 are read too
    (g,) = plan_row_groups(np.array([2, 1]), np.ones(2), target_bytes=100, max_gap=0)
    assert not g.reads_only_selected  # reordered


def test_parallel_target():
    target = 64 << 20
    assert parallel_target(SPLIT_MIN_BYTES, target) == target  # small: one chunk is fine
    big = 4 * SPLIT_MIN_BYTES
    assert parallel_target(big, target) < big  # split so the threads share the work
    assert parallel_target(10 * target, target) == target  # already many chunks


def test_big_selection_is_split_for_the_threads(tmp_path, monkeypatch):
    csr = _matrix(n=400, m=50, density=0.5)
    path = str(tmp_path / "m.h5ad")
    write_sparse_h5(path, csr)
    nbytes = csr.nnz * 8
    monkeypatch.setattr(sources, "SPLIT_MIN_BYTES", nbytes // 8)
    x = source(path, csr).materialize()
    assert x.numblocks[0] >= 2
    assert (sp.csr_matrix(x.compute()) != csr).nnz == 0
    rows = np.arange(0, 400, 2)
    y = source(path, csr).subset(rows).materialize()
    assert y.numblocks[0] >= 2
    assert (sp.csr_matrix(y.compute()) != csr[rows]).nnz == 0


# ---------------------------------------------------------------------- direct reads (h5raw)


def test_adjacent_pieces_are_read_at_once(tmp_path):
    path = tmp_path / "d.h5"
    values = np.arange(1000, dtype=np.float32)
    with h5py.File(path, "w") as f:
        f.create_dataset("v", data=values)
    with h5py.File(path, "r") as f:
        _, layout = h5raw.raw_layout(f["v"])
        _, sizes = layout.pieces(np.array([0, 10, 20, 500]), np.array([10, 10, 5, 0]))
        assert sizes.tolist() == [25 * 4]  # [0, 25) in one read; the empty range adds none
        got = h5raw.read_ranges(f["v"], np.array([0, 10, 30]), np.array([10, 20, 35]))
        assert got.tolist() == [*range(20), *range(30, 35)]


def test_mapped_pairs_cover_chunk_boundaries(tmp_path):
    path = tmp_path / "d.h5"
    a = np.arange(5000, dtype=np.float32)
    b = np.arange(5000, dtype=np.int32) * 2
    with h5py.File(path, "w") as f:
        f.create_dataset("a", data=a, chunks=(333,), maxshape=(None,))
        f.create_dataset("b", data=b, chunks=(500,), maxshape=(None,))
    with h5py.File(path, "r") as f:
        pairs = list(h5raw.mapped_pairs(f["a"], f["b"], 100, 4321))
        got_a = np.concatenate([p[0] for p in pairs])
        got_b = np.concatenate([p[1] for p in pairs])
        del pairs
        assert got_a.tolist() == a[100:4321].tolist()
        assert got_b.tolist() == b[100:4321].tolist()
        with pytest.raises(IndexError):
            h5raw.mapped_pairs(f["a"], f["b"], 0, 6000)


# ------------------------------------------------------------- sums computed by the read tasks


@pytest.mark.parametrize("store", ["raw", "gzip", "zarr"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.uint16, np.bool_])
def test_major_sums_equal_numpy(tmp_path, store, fmt, dtype):
    mat = sp.random(130, 70, density=0.2, format=fmt, random_state=3)
    mat.data = mat.data * 10 + 1
    mat = mat.astype(dtype)
    path = _store(tmp_path, mat, store)
    dense = mat.toarray()
    for chunks in (None, 17):
        x = source(path, mat, chunks=chunks).materialize()
        for axis in (0, 1, None, (0,), -1):
            for name in ("sum", "mean"):
                for keepdims in (False, True):
                    got = np.asarray(getattr(x, name)(axis=axis, keepdims=keepdims).compute())
                    want = getattr(np, name)(dense, axis=axis, keepdims=keepdims)
                    assert got.dtype == want.dtype and got.shape == want.shape
                    np.testing.assert_allclose(got, want, rtol=1e-5)


def test_major_sums_are_computed_by_the_read_tasks(tmp_path):
    csr = _matrix()
    path = str(tmp_path / "m.h5ad")
    write_sparse_h5(path, csr)
    x = source(path, csr).materialize()
    assert any(name.startswith("annscale-majorsum-") for name in x.sum(axis=0).dask.layers)
    assert any(name.startswith("annscale-majorsum-") for name in x.mean(axis=0).dask.layers)
    # other axes, and derived arrays, use dask's reductions
    assert not any(name.startswith("annscale-majorsum-") for name in x.sum(axis=1).dask.layers)
    assert not any(n.startswith("annscale-majorsum-") for n in x[:10].sum(axis=0).dask.layers)
    # subset sources read only their rows and sum them
    rows = np.array([3, 50, 51, 199])
    y = source(path, csr).subset(rows).materialize()
    np.testing.assert_allclose(
        y.sum(axis=0).compute(), np.asarray(csr[rows].sum(axis=0)).ravel(), rtol=1e-6
    )


def test_major_sums_check_indices(tmp_path):
    path = str(tmp_path / "bad.h5ad")
    csr = _matrix()
    write_sparse_h5(path, csr)
    with h5py.File(path, "a") as f:
        f["X/indices"][csr.indptr[60]] = -3
    x = source(path, csr, chunks=50).materialize()
    with pytest.raises(CorruptElementError) as e:
        x.sum(axis=0).compute()
    msg = str(e.value)
    assert path in msg and "/X/indices" in msg and "rows [50, 100)" in msg


# ---------------------------------------------------------------------------- the scheduler


def test_first_compute_does_not_import_distributed(tmp_path):
    path = str(tmp_path / "m.h5ad")
    write_sparse_h5(path, _matrix())
    code = textwrap.dedent(
        f"""
        import sys
        import annscale
        x = annscale.read_lazy({path!r}).X
        x.sum(axis=0).compute()
        x.compute()
        annscale.read_lazy({path!r})[:5].to_memory()
        assert "distributed" not in sys.modules, "distributed was imported"
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", ["synchronous", "threads", "sync", "processes"])
def test_named_local_schedulers(tmp_path, name):
    csr = _matrix()
    path = str(tmp_path / "m.h5ad")
    write_sparse_h5(path, csr)
    with annscale.settings.override(scheduler=name):
        x = annscale.read_lazy(path).X
        assert (sp.csr_matrix(x.compute()) != csr).nnz == 0
        np.testing.assert_allclose(
            x.sum(axis=0).compute(), np.asarray(csr.sum(axis=0)).ravel(), rtol=1e-6
        )


def test_an_active_client_still_runs_the_graphs(tmp_path):
    distributed = pytest.importorskip("distributed")
    csr = _matrix()
    path = str(tmp_path / "m.h5ad")
    write_sparse_h5(path, csr)
    x = annscale.read_lazy(path).X
    with distributed.Client(processes=False, n_workers=1, dashboard_address=None) as client:
        with distributed.get_task_stream(client=client) as ts:
            total = x.sum(axis=0).compute()
            dense = annscale.read_lazy(path)[:7].to_memory().X
        assert ts.data, "nothing ran on the client"
    np.testing.assert_allclose(total, np.asarray(csr.sum(axis=0)).ravel(), rtol=1e-6)
    assert (sp.csr_matrix(dense) != csr[:7]).nnz == 0
