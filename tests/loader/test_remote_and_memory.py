"""Loading from S3 (moto server on loopback), and the bound on what prefetch holds."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import anndata as ad
import dask
import pytest

import annscale
from annscale.minibatch import fetch
from annscale.minibatch.prefetch import LazyTasks, prefetched
from annscale.storage import cache

from .test_loader import OBS_KEYS, check_epoch


@pytest.mark.parametrize("name", ["s0.h5ad", "s0-v3.zarr"])
def test_s3_url(s3_store, stores, name):
    url = s3_store.upload(stores["tmp"] / name)
    exp = stores["samples"][0]
    try:
        loader = annscale.loader(
            url, storage_options=s3_store.storage_options, batch_size=48, block_size=40,
            obs_keys=OBS_KEYS, obsm_keys="emb", seed=1,
        )  # fmt: skip
        check_epoch(loader, exp)
    finally:
        cache.clear()


def test_s3_collection(s3_store, stores):
    urls = [s3_store.upload(p) for p in stores["h5ad"][:2]]
    exp = ad.concat(stores["samples"][:2])
    try:
        coll = annscale.concat(
            [annscale.read_lazy(u, storage_options=s3_store.storage_options) for u in urls]
        )
        loader = annscale.loader(
            coll, batch_size=100, obs_keys=OBS_KEYS, obsm_keys="emb", seed=2, as_torch=False
        )
        check_epoch(loader, exp)
    finally:
        cache.clear()


class _Live:
    """Counts the values alive at once (created by tasks, freed when dropped)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.alive = 0
        self.peak = 0

    def make(self, i):
        with self.lock:
            self.alive += 1
            self.peak = max(self.peak, self.alive)
        time.sleep(0.002)
        return _Value(self, i)


class _Value:
    def __init__(self, live, i):
        self.live, self.i = live, i

    def __repr__(self):
        return f"<counted {self.i}>"

    def __del__(self):
        with self.live.lock:
            self.live.alive -= 1


@pytest.mark.parametrize("prefetch", [0, 1, 3])
def test_prefetch_buffer_is_bounded(prefetch):
    live = _Live()
    tasks = LazyTasks(30, lambda i: dask.delayed(live.make, pure=False)(i))
    got = []
    for value in prefetched(tasks, prefetch):
        time.sleep(0.005)  # a slow consumer: the readers would run ahead if unbounded
        got.append(value.i)
        del value
    assert got == list(range(30))
    assert live.peak <= prefetch + 1
    assert live.alive == 0


def test_loader_holds_at_most_prefetch_plus_one_groups(stores, monkeypatch):
    """At any time at most (prefetch + 1) fetch groups are held (read, or being batched)."""
    live = _Live()
    real = fetch._assemble

    def counted(*args):
        rows = real(*args)
        # the group holds a counted token: counted in when read, out when the group is freed
        return _Counted(rows.X, rows.obsm, rows.positions, live.make(0))

    monkeypatch.setattr(fetch, "_assemble", counted)
    data = annscale.read_lazy(stores["h5ad"][2])  # 301 rows: 31 blocks of <= 10 rows
    loader = annscale.loader(data, batch_size=7, block_size=10, fetch_blocks=2, prefetch=2)
    n = 0
    for batch in loader:
        time.sleep(0.002)  # a slow consumer
        n += batch.n_obs
        del batch
    assert n == data.n_obs
    assert 2 <= live.peak <= 3
    assert live.alive == 0


@dataclass(frozen=True)
class _Counted(fetch.Rows):
    token: Any = None
