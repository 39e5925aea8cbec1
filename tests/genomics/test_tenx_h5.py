"""10x h5 matrices: same obs/var/X as scanpy's read_10x_h5, lazy reads equal to eager ones."""

from __future__ import annotations

import pickle
import shutil
import warnings

import dask
import h5py
import numpy as np
import pandas as pd
import pytest
from genomics_compare import assert_matrix_equal, assert_same
from scipy import sparse

from annscale import settings
from annscale.errors import CorruptElementError, ElementNotFoundError, FormatError, StorageError
from annscale.genomics._tenx_lazy import row_blocks
from annscale.genomics.tenx import tenx_h5_parts

sc = pytest.importorskip("scanpy")

LEGACY = "10x/1.2.0/filtered_gene_bc_matrices_h5.h5"
MULTI = "10x/1.2.0/multiple_genomes.h5"
V3 = "10x/3.0.0/filtered_feature_bc_matrix.h5"


def scanpy_read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sc.read_10x_h5(path, **kw)


# ----------------------------------------------------------------------------- real files


@pytest.mark.parametrize("rel", [LEGACY, V3])
def test_real_files_equal_scanpy(data, rel):
    ours = tenx_h5_parts(data / rel)
    assert_same(ours, scanpy_read(data / rel))


def test_v3_columns_as_scanpy_gives_them(data):
    parts = tenx_h5_parts(data / V3)
    assert isinstance(parts.X, sparse.csr_matrix) and parts.X.dtype == np.float32
    assert list(parts.var.columns) == ["gene_ids", "feature_types", "genome"]
    assert all(dt == np.dtype(object) for dt in parts.var.dtypes)
    assert parts.var["genome"].unique().tolist() == ["GRCh38_chr21"]
    assert parts.obs.index[0] == "AAACCCAAGGAGAGTA-1"
    assert parts.shape == (1107, 507)


def test_v3_genome_filter_and_gex_only(data):
    chosen = tenx_h5_parts(data / V3, genome="GRCh38_chr21")
    assert_same(chosen, scanpy_read(data / V3, genome="GRCh38_chr21"))
    assert_same(tenx_h5_parts(data / V3, gex_only=False), scanpy_read(data / V3, gex_only=False))


def test_legacy_genome_selection(data):
    for genome in ("hg19_chr21", "another_genome"):
        assert_same(
            tenx_h5_parts(data / MULTI, genome=genome), scanpy_read(data / MULTI, genome=genome)
        )
    a = tenx_h5_parts(data / MULTI, genome="hg19_chr21").X
    b = tenx_h5_parts(data / MULTI, genome="another_genome").X
    assert (a != b).nnz > 0
    # a single-genome file needs no genome=
    assert_same(tenx_h5_parts(data / LEGACY, genome="hg19_chr21"), scanpy_read(data / LEGACY))


def test_several_legacy_genomes_need_a_choice(data):
    with pytest.raises(FormatError, match=r"more than one genome.*another_genome.*hg19_chr21"):
        tenx_h5_parts(data / MULTI)
    with pytest.raises(ValueError):  # scanpy users catch ValueError: still works
        tenx_h5_parts(data / MULTI)


@pytest.mark.parametrize(("rel", "listed"), [(LEGACY, "hg19_chr21"), (V3, "GRCh38_chr21")])
def test_unknown_genome_lists_the_available_ones(data, rel, listed):
    with pytest.raises(FormatError, match=rf"'mm10'.*Available genomes are: \['{listed}'\]") as e:
        tenx_h5_parts(data / rel, genome="mm10")
    assert e.value.source.endswith(rel.rsplit("/", 1)[-1])


# ----------------------------------------------------------------------------- lazy


@pytest.mark.parametrize(("rel", "target_bytes"), [(LEGACY, 36), (V3, 20_000)])
def test_lazy_equals_eager_with_several_chunks(data, rel, target_bytes):
    eager = tenx_h5_parts(data / rel)
    with settings.override(chunk_target_bytes=target_bytes):
        lazy = tenx_h5_parts(data / rel, lazy=True)
    X = lazy.X
    assert isinstance(X, dask.array.Array)
    assert isinstance(X._meta, sparse.csr_matrix) and X.dtype == np.float32
    assert X.numblocks[0] > 1 and X.numblocks[1] == 1
    assert_matrix_equal(X, eager.X)
    assert isinstance(X.blocks[1].compute(), sparse.csr_matrix)
    # row ranges read only their own cells
    assert_matrix_equal(X[3:9], eager.X[3:9])
    pd.testing.assert_frame_equal(lazy.obs, eager.obs)
    pd.testing.assert_frame_equal(lazy.var, eager.var)


def test_lazy_graph_pickles_and_keeps_feature_filters(data, tmp_path):
    # a file with non-gene-expression features, so gex_only selects columns in each task
    path = tmp_path / "mixed.h5"
    write_v3(path, feature_types=["Gene Expression", "Antibody Capture"] * 3)
    with settings.override(chunk_target_bytes=24):
        lazy = tenx_h5_parts(path, lazy=True)
    eager = tenx_h5_parts(path)
    assert lazy.X.shape == (4, 3) and lazy.X.numblocks[0] > 1
    clone = pickle.loads(pickle.dumps(lazy.X))
    assert_matrix_equal(clone, eager.X)
    assert_same(eager, scanpy_read(path))


def test_lazy_tasks_open_the_file_themselves(data, tmp_path):
    path = tmp_path / "copy.h5"
    shutil.copy(data / V3, path)
    lazy = tenx_h5_parts(path, lazy=True)  # the file is closed again here
    path.rename(tmp_path / "moved.h5")
    with pytest.raises(StorageError):
        lazy.X.compute()


def test_row_blocks_balance_nonzeros():
    indptr = np.array([0, 5, 5, 6, 20, 21, 22])
    assert row_blocks(indptr, 6) == [(0, 3), (3, 4), (4, 6)]
    # empty rows join their neighbours; a row above the target stands alone
    assert row_blocks(indptr, 1) == [(0, 1), (1, 3), (3, 4), (4, 5), (5, 6)]
    assert row_blocks(indptr, 100) == [(0, 6)]
    assert row_blocks(np.array([0]), 10) == []
    blocks = row_blocks(np.array([0, 0, 0, 0]), 3)
    assert blocks == [(0, 3)]


# ----------------------------------------------------------------------------- synthetic files


def write_v3(
    path,
    *,
    feature_types=("Gene Expression",) * 3,
    genomes=None,
    probe=False,
    extra=True,
    filtered_barcodes=False,
    filetype_attr="matrix",
    string_kind="S",
):
    """A small Cell Ranger 3+ style file: 4 cells, len(feature_types) features, int32 counts."""
    n_genes, n_cells = len(feature_types), 4
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 3, size=(n_cells, n_genes)).astype(np.int32)
    csr = sparse.csr_matrix(dense)

    def strings(values):
        if string_kind == "S":
            return np.array(values, dtype="S")
        return np.array(values, dtype=h5py.string_dtype())

    with h5py.File(path, "w") as f:
        f.attrs["filetype"] = filetype_attr
        f.attrs["library_ids"] = np.array([b"lib"])
        m = f.create_group("matrix")
        m["barcodes"] = strings([f"CELL{i}-1" for i in range(n_cells)])
        m["data"] = csr.data
        m["indices"] = csr.indices.astype(np.int64)
        m["indptr"] = csr.indptr.astype(np.int64)
        m["shape"] = np.array([n_genes, n_cells], dtype=np.int32)
        if filtered_barcodes:
            m["filtered_barcodes"] = np.array([1, 0, 1, 1], dtype=bool)
        ft = m.create_group("features")
        ft["id"] = strings([f"ID{i}" for i in range(n_genes)])
        ft["name"] = strings([f"G{i % 2}" for i in range(n_genes)])  # repeated names
        ft["feature_type"] = strings(list(feature_types))
        ft["genome"] = strings(list(genomes or ["GRCh38"] * n_genes))
        ft["_all_tag_keys"] = np.array([b"genome"])
        if probe:
            ft["gene_id"] = strings([f"ENSG{i}" for i in range(n_genes)])
        if extra:
            ft["filtered_probes"] = np.arange(n_genes) % 2 == 0
            ft["probe_region"] = strings(["spliced"] * n_genes)
            ft["tag_number"] = np.arange(n_genes, dtype=np.int64)
    return dense


@pytest.mark.parametrize("string_kind", ["S", "vlen"])
@pytest.mark.parametrize(
    "filetype_attr", ["matrix", b"matrix", np.array([b"matrix"]), np.array(["matrix"], dtype="O")]
)
def test_attribute_forms_and_string_kinds(tmp_path, string_kind, filetype_attr):
    path = tmp_path / "x.h5"
    dense = write_v3(path, string_kind=string_kind, filetype_attr=filetype_attr)
    parts = tenx_h5_parts(path)
    np.testing.assert_array_equal(parts.X.toarray(), dense.astype(np.float32))
    assert_same(parts, scanpy_read(path))


def test_probe_matrix_extra_features_and_filtered_barcodes(tmp_path):
    path = tmp_path / "probe.h5"
    write_v3(path, probe=True, filtered_barcodes=True)
    parts = tenx_h5_parts(path)
    assert_same(parts, scanpy_read(path))
    assert list(parts.var.columns) == [
        "gene_ids",
        "probe_ids",
        "feature_types",
        "filtered_probes",
        "genome",
        "probe_region",
        "tag_number",
    ]
    assert parts.var["filtered_probes"].dtype == bool
    assert parts.var["tag_number"].tolist() == ["0", "1", "2"]  # as scanpy: str
    assert parts.obs["filtered_barcodes"].dtype == bool


def test_mixed_genomes_and_feature_types(tmp_path):
    path = tmp_path / "mixed.h5"
    write_v3(
        path,
        feature_types=["Gene Expression", "Antibody Capture", "Gene Expression", "Custom"],
        genomes=["hg", "hg", "mm", "mm"],
    )
    for kw in ({}, {"genome": "mm"}, {"genome": "hg", "gex_only": False}, {"gex_only": False}):
        assert_same(tenx_h5_parts(path, **kw), scanpy_read(path, **kw))
    with settings.override(chunk_target_bytes=24):
        lazy = tenx_h5_parts(path, genome="hg", lazy=True)
    assert_matrix_equal(lazy.X, tenx_h5_parts(path, genome="hg").X)


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(StorageError) as e:
        tenx_h5_parts(tmp_path / "nope.h5")
    assert "nope.h5" in str(e.value)


def test_not_hdf5(tmp_path):
    path = tmp_path / "x.h5"
    path.write_text("hello")
    with pytest.raises(StorageError, match=r"x\.h5"):
        tenx_h5_parts(path)


@pytest.mark.parametrize("missing", ["matrix/indptr", "matrix/features", "matrix/features/id"])
def test_missing_v3_elements_are_named(tmp_path, missing):
    path = tmp_path / "x.h5"
    write_v3(path)
    with h5py.File(path, "a") as f:
        del f[missing]
    parent, key = missing.rsplit("/", 1)
    with pytest.raises(ElementNotFoundError, match=rf"missing '{key}'") as e:
        tenx_h5_parts(path)
    assert e.value.element == "/" + parent
    assert e.value.source.endswith("x.h5")


def test_missing_legacy_dataset_is_named(data, tmp_path):
    path = tmp_path / "legacy.h5"
    shutil.copy(data / LEGACY, path)
    with h5py.File(path, "a") as f:
        del f["hg19_chr21/gene_names"]
    with pytest.raises(ElementNotFoundError, match="gene_names") as e:
        tenx_h5_parts(path)
    assert e.value.element == "/hg19_chr21"


def test_inconsistent_shape_and_indptr(tmp_path):
    path = tmp_path / "x.h5"
    write_v3(path)
    with h5py.File(path, "a") as f:
        f["matrix/shape"][...] = [3, 5]
    with pytest.raises(CorruptElementError, match="5 cells"):
        tenx_h5_parts(path)
    write_v3(path)
    with h5py.File(path, "a") as f:
        del f["matrix/indptr"]
        f["matrix/indptr"] = np.array([0, 1, 2], dtype=np.int64)
    with pytest.raises(CorruptElementError) as e:
        tenx_h5_parts(path)
    assert e.value.element == "/matrix/indptr"


def test_molecule_info_is_not_a_matrix(tmp_path):
    path = tmp_path / "mol.h5"
    write_v3(path, filetype_attr="molecule")
    with pytest.raises(FormatError, match="filetype='molecule'"):
        tenx_h5_parts(path)
