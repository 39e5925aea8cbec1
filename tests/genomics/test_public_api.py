"""The public names (``annscale.read_10x_h5`` etc.) give annscale AnnData objects equal to what
anndata and scanpy give, from local paths and from fsspec URLs."""

from __future__ import annotations

import uuid
import warnings

import anndata
import anndata.io
import dask.array
import fsspec
import numpy as np
import pytest
from genomics_compare import assert_same
from scipy import sparse

import annscale as ad

sc = pytest.importorskip("scanpy")

H5_V3 = "10x/3.0.0/filtered_feature_bc_matrix.h5"
H5_LEGACY = "10x/1.2.0/filtered_gene_bc_matrices_h5.h5"
MTX_V3 = "10x/3.0.0/filtered_feature_bc_matrix"
MTX_V2 = "10x/1.2.0/filtered_gene_bc_matrices/hg19_chr21"


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


@pytest.mark.parametrize("rel", [H5_V3, H5_LEGACY])
def test_read_10x_h5(data, rel):
    adata = ad.read_10x_h5(data / rel)
    assert isinstance(adata, ad.AnnData)
    assert_same(adata, quiet(sc.read_10x_h5, data / rel))


@pytest.mark.parametrize("how", [{"lazy": True}, {"backed": "r"}])
def test_read_10x_h5_lazy(data, how):
    adata = ad.read_10x_h5(data / H5_V3, **how)
    assert isinstance(adata.X, dask.array.Array)
    assert_same(adata, quiet(sc.read_10x_h5, data / H5_V3))
    with pytest.raises(ValueError, match="backed"):
        ad.read_10x_h5(data / H5_V3, backed="r+")


@pytest.mark.parametrize("rel", [MTX_V3, MTX_V2])
def test_read_10x_mtx(data, rel):
    assert_same(ad.read_10x_mtx(data / rel), quiet(sc.read_10x_mtx, data / rel))


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_read_loom_and_write_loom(data, tmp_path):
    adata = ad.read_loom(data / "loom/test.loom")
    assert_same(adata, quiet(anndata.io.read_loom, data / "loom/test.loom"))
    ad.write_loom(tmp_path / "again.loom", adata)
    back = ad.read_loom(tmp_path / "again.loom", obs_names="obs_names")
    assert (back.X != adata.X).nnz == 0
    assert back.var_names.tolist() == adata.var_names.tolist()
    assert back.obs["Cell"].tolist() == adata.obs["Cell"].tolist()


def test_text_readers(data):
    assert_same(ad.read_csv(data / "text/adata.csv"), anndata.io.read_csv(data / "text/adata.csv"))
    path = data / "text/adata-comments.tsv"
    assert_same(ad.read_text(path), anndata.io.read_text(path))
    path = data / "text/umi_tools.tsv.gz"
    assert_same(ad.read_umi_tools(path), anndata.io.read_umi_tools(path))
    path = data / f"{MTX_V3}/matrix.mtx.gz"
    assert_same(ad.read_mtx(path), anndata.io.read_mtx(path))


@pytest.fixture
def memory_copy(data):
    """Copy shared files into fsspec's in-memory filesystem; yields a function rel -> URL."""
    fs = fsspec.filesystem("memory")
    root = f"/annscale-genomics-{uuid.uuid4().hex[:8]}"

    def put(rel):
        src = data / rel
        if src.is_dir():
            for item in src.iterdir():
                fs.pipe(f"{root}/{rel}/{item.name}", item.read_bytes())
        else:
            fs.pipe(f"{root}/{rel}", src.read_bytes())
        return f"memory://{root}/{rel}"

    yield put
    fs.rm(root, recursive=True)


@pytest.mark.filterwarnings("ignore:Variable names are not unique")
def test_fsspec_urls(data, memory_copy):
    url = memory_copy(H5_V3)
    expected = quiet(sc.read_10x_h5, data / H5_V3)
    assert_same(ad.read_10x_h5(url), expected)
    assert_same(ad.read_10x_h5(url, lazy=True), expected)  # tasks open the URL themselves
    assert_same(ad.read_10x_mtx(memory_copy(MTX_V3)), quiet(sc.read_10x_mtx, data / MTX_V3))
    assert_same(
        ad.read_loom(memory_copy("loom/test.loom")),
        quiet(anndata.io.read_loom, data / "loom/test.loom"),
    )
    assert_same(
        ad.read_text(memory_copy("text/adata-comments.tsv")),
        anndata.io.read_text(data / "text/adata-comments.tsv"),
    )


def test_lazy_10x_x_computes_to_csr_blocks(data):
    adata = ad.read_10x_h5(data / H5_V3, lazy=True)
    block = adata.X.blocks[0].compute()
    assert isinstance(block, sparse.csr_matrix) and block.dtype == np.float32
