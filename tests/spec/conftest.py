"""Fixtures for the format tests: one store per backend (h5ad, zarr v2, zarr v3)."""

from __future__ import annotations

import warnings

import h5py
import pytest
import zarr

BACKENDS = {"h5ad": ("h5ad", None), "zarr2": ("zarr", 2), "zarr3": ("zarr", 3)}


@pytest.fixture(params=list(BACKENDS))
def backend(request) -> str:
    return request.param


def open_raw(path, backend: str, mode: str = "w"):
    """An h5py file or zarr group, as anndata's element API takes them."""
    kind, fmt = BACKENDS[backend]
    if kind == "h5ad":
        return h5py.File(path, mode)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if mode == "w":
            return zarr.open_group(path, mode="w", zarr_format=fmt)
        return zarr.open_group(path, mode=mode)


@pytest.fixture
def raw_store():
    return open_raw
