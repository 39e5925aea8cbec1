"""Fixtures of the write-out tests: fresh zarr stores, reading back with anndata, a cluster.

The S3 server is the session fixture ``s3_store`` of ``tests/conftest.py`` (moto on loopback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from annscale import settings
from annscale.storage.open import open_root

sys.path.insert(0, str(Path(__file__).parent))  # writeout_gen, also for the subprocess


@pytest.fixture(autouse=True)
def _quiet():
    with settings.override(progress=False):
        yield


@pytest.fixture(autouse=True)
def _dense_by_blocks(monkeypatch):
    """The tests here write small dense arrays to exercise the block writers; arrays that
    small are otherwise computed at once (test_h5.py tests that path on its own)."""
    from annscale.writeout import h5

    monkeypatch.setattr(h5, "WHOLE_DENSE_BYTES", 0)


@pytest.fixture
def new_zarr(tmp_path):
    """``new_zarr(zarr_format) -> path`` of an empty zarr store."""
    counter = iter(range(10**6))

    def make(zarr_format: int = 3) -> str:
        path = str(tmp_path / f"store{next(counter)}.zarr")
        with open_root(path, "w", kind="zarr", zarr_format=zarr_format):
            pass
        return path

    return make


@pytest.fixture(scope="module")
def cluster_client():
    """A LocalCluster with two worker processes (one thread each) and its client."""
    import cloudpickle
    import writeout_gen
    from distributed import Client, LocalCluster

    # workers cannot import the test helpers: ship them by value
    cloudpickle.register_pickle_by_value(writeout_gen)
    cluster = LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0"
    )
    client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        cluster.close()
        cloudpickle.unregister_pickle_by_value(writeout_gen)
