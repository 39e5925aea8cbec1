"""``annscale.experimental``: read_dispatched / write_dispatched / read_elem_lazy, compared
with anndata's (same elements, names and encodings handed to the callbacks)."""

from __future__ import annotations

import warnings

import anndata
import anndata.experimental
import dask.array as da
import h5py
import numpy as np
import pytest
import scipy.sparse as sp
import zarr

import annscale
import annscale.experimental


def _open(path, mode):
    if str(path).endswith(".h5"):
        return h5py.File(path, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return zarr.open_group(path, mode=mode, zarr_format=3 if mode == "w" else None)


def _close(f):
    if isinstance(f, h5py.File):
        f.close()


@pytest.fixture(params=["h5", "zarr"])
def ext(request):
    return request.param


def _record_writes(lib, adata, path):
    seen = []

    def callback(write_func, store, elem_name, elem, *, iospec, dataset_kwargs):
        seen.append((elem_name, iospec.encoding_type, iospec.encoding_version))
        kwargs = dict(dataset_kwargs)
        if elem_name in ("/layers/dense", "dense"):  # callbacks can change how it is written
            kwargs["chunks"] = (2, 4)
        write_func(store, elem_name, elem, dataset_kwargs=kwargs)

    f = _open(path, "w")
    with (
        anndata.settings.override(allow_write_nullable_strings=True),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        lib.experimental.write_dispatched(f, "/", adata, callback=callback)
    _close(f)
    return seen


def _record_reads(lib, path):
    seen = []

    def callback(read_func, elem_name, elem, *, iospec):
        seen.append((elem_name, iospec.encoding_type, type(elem).__module__.split(".")[0]))
        if iospec.encoding_type == "dict" and elem_name == "/uns":
            return {"replaced": True}  # callbacks can replace what is read
        return read_func(elem)

    f = _open(path, "r")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = lib.experimental.read_dispatched(f, callback)
    _close(f)
    return out, seen


def test_write_dispatched_matches_anndata(tmp_path, ext, compat):
    ours_path, theirs_path = tmp_path / f"ours.{ext}", tmp_path / f"theirs.{ext}"
    ours = _record_writes(annscale, compat.build(annscale, compat.rich_parts()), ours_path)
    theirs = _record_writes(anndata, compat.build(anndata, compat.rich_parts()), theirs_path)
    assert sorted(ours) == sorted(theirs)
    f = _open(ours_path, "r")
    assert f["layers/dense"].chunks == (2, 4)
    _close(f)
    expected = compat.read_with(anndata, theirs_path if ext == "zarr" else _as_h5ad(theirs_path))
    got = compat.read_with(anndata, ours_path if ext == "zarr" else _as_h5ad(ours_path))
    compat.assert_adata_equal(got, expected)


def _as_h5ad(path):
    target = path.with_suffix(".h5ad")
    path.rename(target)
    return target


def test_read_dispatched_matches_anndata(tmp_path, ext, compat):
    path = tmp_path / f"a.{ext}"
    f = _open(path, "w")
    with (
        anndata.settings.override(allow_write_nullable_strings=True),
        warnings.catch_warnings(),
    ):
        warnings.simplefilter("ignore")
        anndata.io.write_elem(f, "/", compat.build(anndata, compat.rich_parts()))
    _close(f)
    ours, ours_seen = _record_reads(annscale, path)
    theirs, theirs_seen = _record_reads(anndata, path)
    assert sorted(ours_seen) == sorted(theirs_seen)
    assert isinstance(ours, annscale.AnnData) and ours.uns == {"replaced": True}
    theirs.uns = {}
    ours.uns = {}
    compat.assert_adata_equal(ours, theirs)


@pytest.mark.parametrize("fmt", ["csr", "csc", "dense"])
def test_read_elem_lazy(tmp_path, ext, fmt):
    path = tmp_path / f"e.{ext}"
    if fmt == "dense":
        value = np.arange(60, dtype=np.float32).reshape(10, 6)
    else:
        value = sp.random(10, 6, density=0.5, format=fmt, random_state=0, dtype=np.float32)
    f = _open(path, "w")
    anndata.io.write_elem(f, "m", value)
    anndata.io.write_elem(f, "s", "a string")
    _close(f)
    f = _open(path, "r")
    lazy = annscale.experimental.read_elem_lazy(f["m"], chunks=(4, 6) if fmt != "csc" else (10, 4))
    assert isinstance(lazy, da.Array) and lazy.shape == (10, 6)
    got = lazy.compute()
    np.testing.assert_array_equal(
        got.toarray() if sp.issparse(got) else got,
        value.toarray() if sp.issparse(value) else value,
    )
    assert annscale.experimental.read_elem_lazy(f["s"]) == "a string"
    _close(f)
