"""Nonzeros per block from stored ``indptr`` (no data read), and the int32 indices of
``concat_on_disk`` (as anndata's)."""

from __future__ import annotations

import os

import anndata
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

import annscale
from annscale.writeout.dispatch import writeout_options
from annscale.writeout.stored_nnz import stored_block_nnz
from annscale.writeout.zarr import block_nnz


def _write(path, n_obs, genes, seed, fmt="csr"):
    rng = np.random.default_rng(seed)
    X = sp.random(n_obs, len(genes), density=0.2, format=fmt, dtype=np.float32, random_state=rng)
    a = anndata.AnnData(X=X, var={"g": np.arange(len(genes))})
    a.var_names = genes
    a.obs_names = [f"c{seed}-{i}" for i in range(n_obs)]
    if str(path).endswith(".zarr"):
        a.write_zarr(path)
    else:
        a.write_h5ad(path)
    return str(path)


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_plain_reads_and_subsets(tmp_path, suffix):
    path = _write(tmp_path / f"a{suffix}", 200, [f"g{i}" for i in range(30)], 0)
    lazy = annscale.read_lazy(path, chunks=37)
    rows = np.r_[3:40, 100:160:3, 190:200]
    for sub in (lazy, lazy[10:150], lazy[rows], lazy[rows[::-1]]):
        counts = stored_block_nnz(sub.X, "csr")
        assert counts is not None
        np.testing.assert_array_equal(counts, block_nnz(sub.X, "csr"))
    # a selection of columns changes the counts: unknown
    assert stored_block_nnz(lazy[:, :10].X, "csr") is None
    # a computed block (not a plain read) is unknown too
    assert stored_block_nnz(lazy.X.map_blocks(lambda b: b, dtype=lazy.X.dtype), "csr") is None


def test_csc_reads(tmp_path):
    path = _write(tmp_path / "c.h5ad", 50, [f"g{i}" for i in range(80)], 1, fmt="csc")
    x = annscale.read_lazy(path, chunks=16).X
    np.testing.assert_array_equal(stored_block_nnz(x, "csc"), block_nnz(x, "csc"))


def test_concatenations(tmp_path):
    paths = [
        _write(tmp_path / f"s{i}.h5ad", 30 + 7 * i, [f"g{j}" for j in range(5 * i, 5 * i + 20)], i)
        for i in range(4)
    ]
    outer = annscale.read_collection(paths, join="outer")
    np.testing.assert_array_equal(stored_block_nnz(outer.X, "csr"), block_nnz(outer.X, "csr"))
    # an inner join drops stored columns: counts must be computed
    inner = annscale.read_collection(paths, join="inner")
    assert stored_block_nnz(inner.X, "csr") is None


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_concat_on_disk_writes_int32_indices_like_anndata(tmp_path, suffix):
    paths = [
        _write(tmp_path / f"s{i}.h5ad", 25, [f"g{j}" for j in range(4 * i, 4 * i + 12)], i)
        for i in range(3)
    ]
    out = tmp_path / f"out{suffix}"
    annscale.concat_on_disk(paths, out, join="outer")
    theirs = tmp_path / f"theirs{suffix}"
    anndata.experimental.concat_on_disk(paths, theirs, join="outer")
    opened = [
        h5py.File(p, "r") if suffix == ".h5ad" else zarr.open_group(p, mode="r")
        for p in (out, theirs)
    ]
    ours, ref = (g["X"] for g in opened)
    for name in ("indices", "indptr", "data"):
        assert ours[name].dtype == ref[name].dtype, name
    read = anndata.read_h5ad if suffix == ".h5ad" else anndata.read_zarr
    a, b = read(out), read(theirs)
    assert (a[:, b.var_names].X != b.X).nnz == 0
    # plain writes of lazy objects keep anndata's int64 indices for dask arrays
    annscale.read_lazy(paths[0]).write_h5ad(tmp_path / "plain.h5ad")
    with h5py.File(tmp_path / "plain.h5ad", "r") as f:
        assert f["X/indices"].dtype == np.int64


def test_whole_inputs_know_their_nonzeros_from_opening(tmp_path, monkeypatch):
    """A collection reads each input whole: the counts come from the indptr ends read at
    open (SparseRead.nnz), without opening the files again."""
    from annscale.lazy import readers
    from annscale.storage import cache

    paths = [
        _write(tmp_path / f"s{i}.h5ad", 30 + 7 * i, [f"g{j}" for j in range(5 * i, 5 * i + 20)], i)
        for i in range(10)  # enough inputs for one chunk per input
    ]
    outer = annscale.read_collection(paths, join="outer")
    x = outer.X
    expected = block_nnz(x, "csr")
    cache.clear()

    def no_indptr(*args, **kwargs):
        raise AssertionError("indptr read again")

    monkeypatch.setattr(readers, "read_indptr", no_indptr)
    np.testing.assert_array_equal(stored_block_nnz(x, "csr"), expected)
    assert len(x.chunks[0]) == len(paths)


def test_an_input_rewritten_after_opening_is_a_clear_error(tmp_path):
    from annscale.errors import CorruptElementError
    from annscale.storage import cache

    genes = [f"g{j}" for j in range(20)]
    paths = [_write(tmp_path / f"s{i}.h5ad", 30, genes, i) for i in range(10)]
    outer = annscale.read_collection(paths, join="outer")
    # replaced by another file of the same shape with more nonzeros
    other = anndata.read_h5ad(paths[3])
    other.X = sp.csr_matrix(np.ones(other.shape, dtype=np.float32))
    other.write_h5ad(tmp_path / "new.h5ad")
    os.replace(tmp_path / "new.h5ad", paths[3])
    cache.clear()
    # written in place as concat_on_disk writes (each block at the offset the counts give)
    with writeout_options(index_dtype="auto"):
        with pytest.raises(CorruptElementError, match="nonzeros") as info:
            outer.write_h5ad(tmp_path / "out.h5ad")
    assert "out.h5ad" in str(info.value) or "s3.h5ad" in str(info.value)
    assert not (tmp_path / "out.h5ad").exists()


def test_stored_sources_with_fixed_chunks_build_without_reading(tmp_path, monkeypatch):
    from annscale.lazy import sources

    path = _write(tmp_path / "a.h5ad", 120, [f"g{i}" for i in range(30)], 0)
    lazy = annscale.read_lazy(path, chunks=50)
    monkeypatch.setattr(sources, "read_indptr", lambda *a, **k: pytest.fail("indptr read"))
    x = lazy.X
    assert x.chunks[0] == (50, 50, 20)
    monkeypatch.undo()
    ref = anndata.read_h5ad(path).X
    assert (x.compute() != ref).nnz == 0
