"""Fixtures: a module-wide cluster of real scheduler/worker processes on loopback."""

from __future__ import annotations

import cloudpickle
import cluster_helpers
import pytest
from cluster_helpers import ScriptCluster

# workers cannot import the test helpers they run (client.run): ship them by value
cloudpickle.register_pickle_by_value(cluster_helpers)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Three workers with nannies, one thread and ``MEMORY_LIMIT`` bytes each."""
    c = ScriptCluster(tmp_path_factory.mktemp("cluster"), workers=3).start()
    try:
        yield c
    finally:
        c.stop()


@pytest.fixture
def no_client_cache():
    """Close the clients annscale opened for ``settings.scheduler`` addresses afterwards."""
    yield
    from annscale.scheduler import close_clients

    close_clients()
