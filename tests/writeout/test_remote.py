"""Writes to S3 (moto on loopback) and from a distributed LocalCluster of worker processes."""

from __future__ import annotations

import pickle

import pytest
from writeout_check import assert_same, read_back_h5, read_back_zarr
from writeout_gen import dense_dask, sparse_dask

from annscale import settings
from annscale.scheduler import active_client, close_clients
from annscale.storage.location import Location
from annscale.storage.open import open_root
from annscale.writeout import Manifest, write_dask_h5, write_dask_zarr


def _s3_store(s3_store, name: str, zarr_format: int) -> Location:
    loc = Location(s3_store.url(name), s3_store.storage_options)
    with open_root(loc, "w", kind="zarr", zarr_format=zarr_format):
        pass
    return loc


@pytest.mark.parametrize("zarr_format", [2, 3])
def test_s3_sparse_and_dense(s3_store, zarr_format):
    loc = _s3_store(s3_store, f"writeout/s3-{zarr_format}.zarr", zarr_format)
    x = sparse_dask((60, 20), 7, fmt="csc", density=0.2, seed=3)
    d = dense_dask((30, 12), (8, 5), seed=2)
    manifest = Manifest.in_staging(loc)
    write_dask_zarr(loc, "/", "X", x, zarr_format=zarr_format, chunks=16, manifest=manifest)
    shards = (16, 12) if zarr_format == 3 else None
    write_dask_zarr(loc, "layers", "d", d, zarr_format=zarr_format, chunks=(8, 6), shards=shards)
    # the manifest lives in the staging area on S3 too
    fs = loc.filesystem()
    assert fs.ls(f"{loc.path}/.annscale-manifest/X/done", detail=False)
    opts = s3_store.storage_options
    assert_same(read_back_zarr(loc.url, "X", "csc", opts), x.compute())
    assert_same(read_back_zarr(loc.url, "layers/d", None, opts), d.compute())
    manifest.remove()
    assert not fs.exists(f"{loc.path}/.annscale-manifest")


def test_graph_carries_addresses_not_handles(tmp_path):
    path = str(tmp_path / "p.zarr")
    with open_root(path, "w", kind="zarr", zarr_format=3):
        pass
    graph = write_dask_zarr(
        path, "/", "X", sparse_dask((20, 5), 5), zarr_format=3, chunks=8, compute=False
    )
    # the whole graph pickles (no zarr/h5py handle inside) and still runs after a round trip
    again = pickle.loads(pickle.dumps(graph))
    again.compute()
    assert_same(read_back_zarr(path, "X", "csr"), sparse_dask((20, 5), 5).compute())


def test_local_cluster_writes(cluster_client, tmp_path, s3_store):
    assert active_client() is cluster_client
    x = sparse_dask((90, 25), 11, density=0.2, seed=21)
    d = dense_dask((40, 18), (9, 7), seed=22)

    path = str(tmp_path / "c.zarr")
    with open_root(path, "w", kind="zarr", zarr_format=3):
        pass
    write_dask_zarr(path, "/", "X", x, zarr_format=3, chunks=16, manifest=Manifest.in_staging(path))
    write_dask_zarr(path, "/", "D", d, zarr_format=3, chunks=(4, 6), shards=(8, 6))
    assert_same(read_back_zarr(path, "X", "csr"), x.compute())
    assert_same(read_back_zarr(path, "D", None), d.compute())

    # workers write straight to the object store
    loc = _s3_store(s3_store, "writeout/cluster.zarr", 3)
    write_dask_zarr(loc, "/", "X", x, zarr_format=3, chunks=16)
    assert_same(read_back_zarr(loc.url, "X", "csr", s3_store.storage_options), x.compute())

    # HDF5: blocks computed on the workers, written in order by this process
    h5 = str(tmp_path / "c.h5ad")
    with open_root(h5, "w", kind="h5ad") as root:
        write_dask_h5(root, "X", x, lookahead=2)
        write_dask_h5(root, "D", d, lookahead=2)
    assert_same(read_back_h5(h5, "X", "csr"), x.compute())
    assert_same(read_back_h5(h5, "D", None), d.compute())


def test_scheduler_address_setting(cluster_client, tmp_path):
    address = cluster_client.scheduler.address
    x = sparse_dask((30, 10), 7, seed=4)
    path = str(tmp_path / "a.zarr")
    with open_root(path, "w", kind="zarr", zarr_format=2):
        pass
    with settings.override(scheduler=address):
        client = active_client()
        assert client is not None and client is not cluster_client
        assert client.scheduler.address == address
        write_dask_zarr(path, "/", "X", x, zarr_format=2, chunks=8)
    close_clients()
    assert_same(read_back_zarr(path, "X", "csr"), x.compute())
