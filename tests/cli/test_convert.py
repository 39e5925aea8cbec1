"""``annscale convert``: what anndata reads back equals what it wrote (or read) itself."""

from __future__ import annotations

import json

import anndata
import numpy as np
import pytest
import zarr
from anndata.tests.helpers import assert_equal
from cli_helpers import DATA, run_cli


@pytest.mark.parametrize(("source", "target", "fmt"), [
    ("h5ad", "out.zarr", "2"),
    ("h5ad", "out.zarr", "3"),
    ("zarr3", "out.h5ad", None),
    ("zarr2", "out.zarr.zip", "3"),
])  # fmt: skip
def test_convert_round_trips_through_anndata(small, tmp_path, source, target, fmt):
    adata, paths = small
    out = tmp_path / target
    args = ["convert", paths[source], "-o", out]
    if fmt:
        args += ["--zarr-format", fmt]
    res = run_cli(*args)
    assert res.returncode == 0, res.stderr
    if target.endswith(".h5ad"):
        back = anndata.read_h5ad(out)
    elif target.endswith(".zip"):
        back = anndata.read_zarr(zarr.storage.ZipStore(out, mode="r"))
    else:
        back = anndata.read_zarr(out)
    assert_equal(back, adata)
    if fmt:
        info = json.loads(run_cli("info", "--json", out).stdout)
        assert info["format"] == f"zarr{fmt}"


def test_convert_10x_h5_streams_to_h5ad(tmp_path):
    src = DATA / "10x" / "3.0.0" / "filtered_feature_bc_matrix.h5"
    out = tmp_path / "tenx.h5ad"
    res = run_cli("convert", src, "-o", out)
    assert res.returncode == 0, res.stderr
    assert "as 10x-h5" in res.stderr
    import annscale

    expected = annscale.read_10x_h5(src).to_memory()
    back = anndata.read_h5ad(out)
    assert back.shape == expected.shape
    assert (back.X != expected.X).nnz == 0
    assert list(back.obs_names) == list(expected.obs_names)
    assert list(back.var["gene_ids"]) == list(expected.var["gene_ids"])


def test_convert_mtx_dir_and_loom_and_mtx(tmp_path):
    import anndata.io

    mtx_dir = DATA / "10x" / "1.2.0" / "filtered_gene_bc_matrices" / "hg19_chr21"
    res = run_cli("convert", mtx_dir, "-o", tmp_path / "mtx.zarr", "--zarr-format", "2")
    assert res.returncode == 0, res.stderr
    assert "as 10x-mtx" in res.stderr
    back = anndata.read_zarr(tmp_path / "mtx.zarr")
    assert back.shape[1] == sum(1 for _ in open(mtx_dir / "genes.tsv"))

    loom = DATA / "loom" / "test.loom"
    res = run_cli("convert", loom, "-o", tmp_path / "loom.h5ad")
    assert res.returncode == 0, res.stderr
    expected = anndata.io.read_loom(loom)
    back = anndata.read_h5ad(tmp_path / "loom.h5ad")
    assert back.shape == expected.shape
    np.testing.assert_allclose(back.X.toarray(), expected.X.toarray())

    res = run_cli("convert", mtx_dir / "matrix.mtx", "-o", tmp_path / "m.h5ad")
    assert res.returncode == 0, res.stderr
    expected = anndata.io.read_mtx(mtx_dir / "matrix.mtx")
    back = anndata.read_h5ad(tmp_path / "m.h5ad")
    assert (back.X != expected.X).nnz == 0


def test_convert_refuses_to_clobber_and_bad_names(small, tmp_path):
    _, paths = small
    existing = tmp_path / "exists.h5ad"
    existing.write_bytes(b"keep me")
    res = run_cli("convert", paths["zarr3"], "-o", existing)
    assert res.returncode == 2
    assert "--overwrite" in res.stderr
    assert existing.read_bytes() == b"keep me"

    res = run_cli("convert", paths["h5ad"], "-o", tmp_path / "out.parquet")
    assert res.returncode == 2
    assert "output format" in res.stderr

    res = run_cli("convert", paths["h5ad"], "-o", paths["h5ad"], "--overwrite")
    assert res.returncode == 2
    assert "also an input" in res.stderr

    res = run_cli("convert", paths["h5ad"], "-o", tmp_path / "x.h5ad", "--zarr-format", "3")
    assert res.returncode == 2

    res = run_cli("convert", paths["h5ad"], "-o", existing, "--overwrite", "--quiet")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    assert anndata.read_h5ad(existing).shape == (60, 25)
