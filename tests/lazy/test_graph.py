"""Task graphs carry addresses: they pickle, run on worker processes, and build fast."""

from __future__ import annotations

import cProfile
import pstats
import warnings

import anndata as ad
import cloudpickle
import dask
import dask.array
import dask.base
import numpy as np
import pytest
import scipy.sparse as sp

import annscale
from annscale.lazy.readers import SparseRead
from annscale.lazy.sources import SparseSource
from annscale.storage import cache
from annscale.storage.location import as_location

from .helpers import make_adata


@pytest.fixture(scope="module")
def h5ad_file(tmp_path_factory):
    adata = make_adata(n_obs=300, n_vars=40, seed=5)
    path = tmp_path_factory.mktemp("graph") / "a.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adata.write_h5ad(path)
    return adata, str(path)


def test_graph_holds_addresses_not_handles(h5ad_file):
    _, path = h5ad_file
    lazy = annscale.read_lazy(path, chunks=25)
    graph = dict(lazy.X.__dask_graph__())
    tasks = [v for v in graph.values() if isinstance(getattr(v, "func", None), SparseRead)
             or (isinstance(v, tuple) and isinstance(v[0], SparseRead))]  # fmt: skip
    assert len(tasks) == 12
    blob = cloudpickle.dumps(graph)
    assert b"h5py" not in blob and len(blob) < 100_000
    # a round trip through pickle computes the same result in a fresh cache
    x2 = cloudpickle.loads(cloudpickle.dumps(lazy.X))
    cache.clear()
    assert (x2.compute(scheduler="synchronous") != lazy.X.compute()).nnz == 0


def test_names_are_deterministic(h5ad_file):
    _, path = h5ad_file
    a = annscale.read_lazy(path)
    b = annscale.read_lazy(path)
    assert a.X.name == b.X.name
    assert a[[1, 2]].X.name == b[[1, 2]].X.name != a[[2, 1]].X.name


@pytest.mark.slow
def test_runs_on_a_process_cluster(h5ad_file):
    distributed = pytest.importorskip("distributed")
    adata, path = h5ad_file
    lazy = annscale.read_lazy(path, chunks=40)
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        got = client.compute(lazy[::3].X).result()
        assert type(got) is sp.csr_matrix and (got != adata.X[::3]).nnz == 0
        sums = client.compute(lazy.X.sum(axis=0)).result()
        np.testing.assert_allclose(sums, adata.X.toarray().sum(axis=0), rtol=1e-5)
        mem = lazy[[5, 1]].to_memory()  # uses the client as the default scheduler
        assert (mem.X != adata.X[[5, 1]]).nnz == 0


def _build_calls(src: SparseSource) -> tuple[object, int]:
    """Build ``src``'s dask array under a profiler; return it and the Python calls made."""
    prof = cProfile.Profile()
    x = prof.runcall(src.materialize)
    return x, pstats.Stats(prof).total_calls


def test_graph_build_is_linear_in_chunks_and_tokenizes_nothing(tmp_path, monkeypatch):
    # 10,000 rows, one row per chunk: 10,000 read tasks
    mat = sp.random(10_000, 8, density=0.3, format="csr", dtype=np.float32, random_state=0)
    path = tmp_path / "big.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ad.AnnData(X=mat).write_h5ad(path)

    def src(n_rows):
        return SparseSource(as_location(str(path)), "/X", mat.shape, mat.dtype, format="csr",
                            bytes_per_nnz=8, chunks=1).subset(slice(0, n_rows))  # fmt: skip

    tokenized = []
    real_tokenize = dask.base.tokenize

    def tokenize(*args, **kwargs):
        tokenized.append(args)
        return real_tokenize(*args, **kwargs)

    monkeypatch.setattr(dask.base, "tokenize", tokenize)
    monkeypatch.setattr(dask.array.core, "tokenize", tokenize)
    src(10).materialize()  # warm the store cache and imports
    small, calls_small = _build_calls(src(1_000))
    x, calls = _build_calls(src(10_000))
    assert small.numblocks == (1_000, 1) and x.numblocks == (10_000, 1)
    assert not tokenized  # names come from digests of addresses, not dask's tokenize
    # a fixed number of Python calls per chunk: ten times the chunks, about ten times the work
    assert calls < 11 * calls_small, (calls, calls_small)
    assert calls < 20 * 10_000, calls
    with dask.config.set(scheduler="synchronous"):
        np.testing.assert_allclose(x[:100].sum(axis=0).compute(), mat[:100].toarray().sum(0),
                                   rtol=1e-5)  # fmt: skip
    cache.clear()
