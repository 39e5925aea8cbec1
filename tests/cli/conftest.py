"""Fixtures of the command-line tests."""

from __future__ import annotations

import pytest
from cli_helpers import make_adata


@pytest.fixture
def small(tmp_path):
    """An h5ad file and zarr v2/v3 stores of the same small dataset (written by anndata)."""
    import anndata

    adata = make_adata(60, [f"g{i}" for i in range(25)], 0)
    paths = {"h5ad": tmp_path / "small.h5ad"}
    adata.write_h5ad(paths["h5ad"])
    for fmt in (2, 3):
        paths[f"zarr{fmt}"] = tmp_path / f"small_v{fmt}.zarr"
        with anndata.settings.override(zarr_write_format=fmt):
            adata.write_zarr(paths[f"zarr{fmt}"])
    return adata, paths
