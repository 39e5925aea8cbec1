"""Writes are atomic: a failing writer leaves the previous store intact and nothing behind."""

from __future__ import annotations

import os

import numpy as np
import pytest

import annscale
from annscale.errors import WriteConflictError
from annscale.storage.atomic import atomic_write, check_not_reading


class Boom:
    """A value whose writer fails midway (after other elements were written)."""

    __annscale_deferred__ = True

    def materialize(self):
        raise RuntimeError("disk on fire")


def _leftovers(directory):
    return [p for p in os.listdir(directory) if ".annscale-" in p]


@pytest.mark.parametrize("name", ["a.h5ad", "a.zarr", "a.zarr.zip"])
def test_failed_write_keeps_previous_store(tmp_path, name):
    path = tmp_path / name
    good = annscale.AnnData(np.arange(12.0).reshape(3, 4))
    if name.endswith(".h5ad"):
        good.write_h5ad(path)
    else:
        good.write_zarr(path)
    before = annscale.read_h5ad(path) if name.endswith(".h5ad") else annscale.read_zarr(path)

    bad = annscale.AnnData(np.zeros((3, 4)))
    bad.uns["boom"] = Boom()
    with pytest.raises(RuntimeError, match="disk on fire"):
        if name.endswith(".h5ad"):
            bad.write_h5ad(path)
        else:
            bad.write_zarr(path)
    after = annscale.read_h5ad(path) if name.endswith(".h5ad") else annscale.read_zarr(path)
    np.testing.assert_array_equal(after.X, before.X)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("name", ["b.h5ad", "b.zarr"])
def test_overwrite_replaces_completely(tmp_path, name):
    path = tmp_path / name
    first = annscale.AnnData(np.ones((2, 2)), layers={"old": np.ones((2, 2))})
    second = annscale.AnnData(np.full((3, 2), 2.0))
    for adata in (first, second):
        if name.endswith(".h5ad"):
            adata.write_h5ad(path)
        else:
            adata.write_zarr(path)
    back = annscale.read_h5ad(path) if name.endswith(".h5ad") else annscale.read_zarr(path)
    assert back.shape == (3, 2) and "old" not in back.layers
    assert _leftovers(tmp_path) == []


def test_failed_first_write_creates_nothing(tmp_path):
    bad = annscale.AnnData(np.zeros((3, 4)))
    bad.uns["boom"] = Boom()
    with pytest.raises(RuntimeError):
        bad.write_h5ad(tmp_path / "new.h5ad")
    assert os.listdir(tmp_path) == []


def test_staging_path_is_beside_the_target(tmp_path):
    target = tmp_path / "c.h5ad"
    with atomic_write(target) as staging:
        assert os.path.dirname(staging) == str(tmp_path)
        assert os.path.basename(staging).startswith(".c.h5ad.annscale-staging-")
        assert not os.path.exists(target)
        with open(staging, "w") as f:
            f.write("x")
    assert target.read_text() == "x"


def test_writing_over_the_store_being_read_lazily_is_refused(tmp_path):
    path = tmp_path / "d.h5ad"

    class Lazy:
        __annscale_sources__ = (str(path),)

    with pytest.raises(WriteConflictError, match=r"d\.h5ad"):
        check_not_reading(path, Lazy())
    check_not_reading(tmp_path / "other.h5ad", Lazy())  # a different target is fine


def test_upload_to_object_store(tmp_path, s3_store):
    adata = annscale.AnnData(np.arange(6.0).reshape(2, 3))
    url = s3_store.url("atomic/e.h5ad")
    annscale.write_h5ad(url, adata, storage_options=s3_store.storage_options)
    back = annscale.read_h5ad(url, storage_options=s3_store.storage_options)
    np.testing.assert_array_equal(back.X, adata.X)
    zurl = s3_store.url("atomic/e.zarr")
    annscale.write_zarr(zurl, adata, storage_options=s3_store.storage_options)
    back = annscale.read_zarr(zurl, storage_options=s3_store.storage_options)
    np.testing.assert_array_equal(back.X, adata.X)
