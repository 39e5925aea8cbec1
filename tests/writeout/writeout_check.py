"""Checks shared by the write-out tests: stamp encoding attrs, read back with anndata, compare,
kill a writing subprocess."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import scipy.sparse as sp
import zarr


def stamp(group_or_array, fmt: str | None) -> None:
    """What the format writer does after the engine: the encoding attributes."""
    if fmt is None:
        group_or_array.attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    else:
        group_or_array.attrs.update({"encoding-type": f"{fmt}_matrix", "encoding-version": "0.1.0"})


def read_back_zarr(url: str, element: str, fmt: str | None, storage_options=None):
    """Stamp encoding attrs on a written element and read it with anndata."""
    import anndata

    store = (
        zarr.storage.FsspecStore.from_url(url, storage_options=storage_options)
        if "://" in url
        else url
    )
    g = zarr.open_group(store, mode="r+")
    stamp(g[element.strip("/")], fmt)
    return anndata.io.read_elem(g[element.strip("/")])


def read_back_h5(path: str, element: str, fmt: str | None):
    import anndata
    import h5py

    with h5py.File(path, "r+") as f:
        stamp(f[element], fmt)
        return anndata.io.read_elem(f[element])


def assert_same(got, expected) -> None:
    if sp.issparse(expected):
        assert sp.issparse(got), type(got)
        assert got.format == expected.format
        assert got.shape == expected.shape
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got.indptr, expected.indptr)
        np.testing.assert_array_equal(got.indices, expected.indices)
        np.testing.assert_array_equal(got.data, expected.data)
    else:
        assert isinstance(got, np.ndarray), type(got)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)


def kill_when(proc: subprocess.Popen, ready, timeout: float = 120.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` is true (it must not finish first)."""
    deadline = time.monotonic() + timeout
    try:
        while not ready():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the writer made no progress"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert b"finished" not in out
