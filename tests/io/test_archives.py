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


def test_duplicate_zip_members_last_one_wins(tmp_path, compat):
    """A zip whose members repeat (a store updated by appending to the zip): the last copy of
    each member is the one read, by annscale as by anndata (zipfile's rule)."""
    import zipfile

    import numpy as np

    first, second = tmp_path / "first.zarr", tmp_path / "second.zarr"
    for path, values in ((first, [1, 2, 3]), (second, [7, 8, 9])):
        adata = annscale.AnnData(np.ones((2, 2)), uns={"v": np.array(values)})
        annscale.write_zarr(path, adata, zarr_format=2, consolidate_metadata=False)
    chunk = "uns/v/0"
    assert (first / chunk).exists()
    archive = tmp_path / "dup.zarr.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for p in sorted(first.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(first).as_posix())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns about the duplicate name
            zf.write(second / chunk, chunk)
    names = [i.filename for i in zipfile.ZipFile(archive).infolist()]
    assert names.count(chunk) == 2
    got = annscale.read_zarr(archive)
    assert got.uns["v"].tolist() == [7, 8, 9]
    compat.assert_adata_equal(got, compat.read_with(anndata, archive))
