"""Files written by old anndata versions read exactly as anndata 0.12.19 reads them."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata
import pytest

import annscale
from annscale.errors import OldFormatWarning

ARCHIVES = Path(__file__).resolve().parents[3] / "shared" / "data" / "anndata-archives"
FILES = sorted(str(p.relative_to(ARCHIVES)) for p in ARCHIVES.glob("*/*") if p.name != "LICENSE")


def test_all_archives_are_found():
    assert len(FILES) == 7


@pytest.mark.parametrize("name", FILES)
def test_archive_reads_like_anndata(name, compat):
    path = ARCHIVES / name
    expected = compat.read_with(anndata, path)
    got = compat.read_with(annscale, path)
    compat.assert_adata_equal(got, expected)


def test_pre_0_7_layout_is_upgraded_with_warnings():
    path = ARCHIVES / "v0.5.0" / "adata.h5ad"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        adata = annscale.read_h5ad(path)
    kinds = {type(w.message) for w in caught}
    assert OldFormatWarning in kinds and FutureWarning in kinds  # neighbors graphs moved
    assert set(adata.obsp) == {"distances", "connectivities"}
    assert "neighbors" in adata.uns and "connectivities" not in adata.uns["neighbors"]
    assert str(adata.obs["louvain"].dtype) == "category"
    assert not any(k.endswith("_categories") for k in adata.uns)
    assert adata.raw is not None and adata.raw.X.format == "csr"
    assert set(adata.obsm) == {"X_pca", "X_umap"}


def test_zip_with_duplicate_members_takes_the_last_one():
    import zipfile

    path = ARCHIVES / "v0.11.4" / "adata.zarr.zip"
    names = [i.filename for i in zipfile.ZipFile(path).infolist()]
    assert len(names) != len(set(names))  # the archive really has duplicates
    adata = annscale.read_zarr(path)
    assert adata.shape == (10, 20) and adata.X is None
