"""annscale graphs honour ``settings.scheduler`` and a default distributed client unchanged."""

from __future__ import annotations

import os

import anndata
import numpy as np
import pytest
from cluster_helpers import executed_tasks, write_samples
from cluster_jobs import CONCAT, lazy_concat

import annscale as ad
from annscale.core.arrays import to_memory
from annscale.errors import StorageError
from annscale.scheduler import active_client


def _same_sparse(got, expected) -> None:
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    assert abs(got - expected).max() == 0


@pytest.fixture(scope="module")
def samples(tmp_path_factory):
    return write_samples(tmp_path_factory.mktemp("samples"), 3, cells=60, genes=40)


def test_address_setting_runs_every_graph_on_the_cluster(cluster, samples, no_client_cache):
    paths, adatas = samples
    with cluster.client() as watch, ad.settings.override(scheduler=cluster.address):
        client = active_client()
        assert client is not None and client.scheduler.address == cluster.address

        before = executed_tasks(watch)
        lazy = ad.read_lazy(paths[0], chunks=16)
        sub = lazy[lazy.obs_names[5:50], lazy.var_names[::2]]
        mem = sub.to_memory()
        _same_sparse(mem.X, adatas[0][5:50, ::2].X)
        assert executed_tasks(watch) > before

        # reductions: lazy on the client, computed on the workers
        before = executed_tasks(watch)
        sums = to_memory(lazy.X.sum(axis=0))
        np.testing.assert_allclose(sums, np.asarray(adatas[0].X.sum(axis=0)).ravel(), rtol=1e-6)
        nnz = to_memory(ad.lazy.count_nonzero(lazy.X, axis=1))
        np.testing.assert_array_equal(nnz, np.diff(adatas[0].X.indptr))
        assert executed_tasks(watch) > before

        # a lazy concatenation
        before = executed_tasks(watch)
        joined = lazy_concat(paths).to_memory()
        expected = anndata.concat(adatas, **CONCAT)
        _same_sparse(joined.X, expected.X)
        assert list(joined.obs_names) == list(expected.obs_names)
        assert executed_tasks(watch) > before


def test_default_client_needs_no_setting(cluster, samples):
    from distributed import Client

    paths, adatas = samples
    with Client(cluster.address) as client:  # the default client from now on
        assert ad.settings.scheduler is None
        assert active_client() is client
        before = executed_tasks(client)
        lazy = ad.read_lazy(paths[1], chunks=16)
        # the user's own .compute() of a derived array runs there too
        sums = lazy.X.sum(axis=1).compute()
        np.testing.assert_allclose(sums, np.asarray(adatas[1].X.sum(axis=1)).ravel(), rtol=1e-6)
        _same_sparse(lazy.to_memory().X, adatas[1].X)
        assert executed_tasks(client) > before


@pytest.mark.parametrize("name", ["threads", "processes", "synchronous"])
def test_local_scheduler_names_win_over_a_default_client(cluster, samples, name):
    from distributed import Client

    paths, adatas = samples
    with Client(cluster.address) as client, ad.settings.override(scheduler=name):
        assert active_client() is None
        before = executed_tasks(client)
        _same_sparse(ad.read_lazy(paths[2], chunks=16).to_memory().X, adatas[2].X)
        assert executed_tasks(client) == before


def test_worker_that_cannot_open_an_input_says_so(cluster, tmp_path, no_client_cache):
    paths, _ = write_samples(tmp_path, 1, cells=30, genes=10, seed=7)
    lazy = ad.read_lazy(paths[0], chunks=10)  # metadata read here, on the client
    # now the file exists nowhere a worker can see (as a path only on the client's disk)
    os.rename(paths[0], paths[0] + ".moved")
    with ad.settings.override(scheduler=cluster.address):
        with pytest.raises(StorageError) as info:
            lazy.to_memory()
    err = info.value
    assert err.source == paths[0]
    message = str(err)
    assert paths[0] in message
    assert "on dask worker tcp://127.0.0.1:" in message
    assert f"host {os.uname().nodename}" in message
    assert "shared filesystem or an object store" in message
