"""10x mtx directories: same result as scanpy's read_10x_mtx, gzip detected from content."""

from __future__ import annotations

import gzip
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest
from genomics_compare import assert_same
from scipy import sparse

from annscale.errors import FormatError, ShapeMismatchError, StorageError
from annscale.genomics.tenx import tenx_h5_parts, tenx_mtx_parts

sc = pytest.importorskip("scanpy")

V2 = "10x/1.2.0/filtered_gene_bc_matrices/hg19_chr21"
V3 = "10x/3.0.0/filtered_feature_bc_matrix"


def scanpy_read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sc.read_10x_mtx(path, **kw)


def gunzip_dir(src, dst):
    """A copy of a v3 directory with plain (not gzipped) files under the same names minus .gz."""
    dst.mkdir()
    for item in src.iterdir():
        with gzip.open(item, "rb") as f:
            (dst / item.name.removesuffix(".gz")).write_bytes(f.read())
    return dst


@pytest.mark.parametrize("rel", [V2, V3])
@pytest.mark.parametrize("var_names", ["gene_symbols", "gene_ids"])
def test_real_directories_equal_scanpy(data, rel, var_names):
    ours = tenx_mtx_parts(data / rel, var_names=var_names)
    assert_same(ours, scanpy_read(data / rel, var_names=var_names))
    # as scanpy: the transposed Matrix Market matrix, CSC float32
    assert isinstance(ours.X, sparse.csc_matrix) and ours.X.dtype == np.float32


def test_v3_matches_the_h5_file(data):
    mtx = tenx_mtx_parts(data / V3)
    h5 = tenx_h5_parts(data / "10x/3.0.0/filtered_feature_bc_matrix.h5")
    assert (mtx.X != h5.X).nnz == 0
    pd.testing.assert_frame_equal(mtx.var, h5.var.drop(columns="genome"))
    pd.testing.assert_frame_equal(mtx.obs, h5.obs)


def test_prefix(data, tmp_path):
    folder = tmp_path / "prefixed"
    folder.mkdir()
    for item in (data / V3).iterdir():
        shutil.copy(item, folder / f"sampleA_{item.name}")
    assert_same(tenx_mtx_parts(folder, prefix="sampleA_"), scanpy_read(folder, prefix="sampleA_"))
    with pytest.raises(StorageError, match=r"no sampleB_matrix\.mtx"):
        tenx_mtx_parts(folder, prefix="sampleB_")


def test_plain_v3_files_are_read(data, tmp_path):
    plain = gunzip_dir(data / V3, tmp_path / "plain")
    assert_same(tenx_mtx_parts(plain), scanpy_read(data / V3))


def test_compression_is_detected_from_content(data, tmp_path):
    # plain text under .gz names, and gzip under plain names: both read the same
    plain = gunzip_dir(data / V3, tmp_path / "plain")
    misnamed = tmp_path / "misnamed"
    misnamed.mkdir()
    for item in plain.iterdir():
        shutil.copy(item, misnamed / f"{item.name}.gz")
    assert_same(tenx_mtx_parts(misnamed), scanpy_read(data / V3))
    gz_v2 = tmp_path / "gz_v2"
    gz_v2.mkdir()
    for item in (data / V2).iterdir():
        (gz_v2 / item.name).write_bytes(gzip.compress(item.read_bytes()))
    assert_same(tenx_mtx_parts(gz_v2), scanpy_read(data / V2))


def test_integer_like_ids_stay_strings(data):
    """Expectations from the files: features.tsv holds numeric NCBI ids, plain text, v3 layout."""
    parts = tenx_mtx_parts(data / "10x/int-ids")
    assert parts.shape == (5, 6)
    assert parts.var.index.tolist() == [
        "Pwwp4b", "Pwwp4a", "Insyn2b", "Gpr17", "Btbd35f22", "Btbd35f21",
    ]  # fmt: skip
    assert parts.var["gene_ids"].tolist() == [
        "574405", "574404", "574403", "574402", "100862323", "100862329",
    ]  # fmt: skip
    assert parts.var["gene_ids"].dtype == object
    assert parts.var["feature_types"].unique().tolist() == ["Gene Expression"]
    assert parts.obs.index[0] == "AAACCCAAGATTAGCA-1"
    X = parts.X
    assert isinstance(X, sparse.csc_matrix) and X.dtype == np.float32
    expected = np.zeros((5, 6), dtype=np.float32)
    expected[2, 3:] = [6, 1, 1]  # matrix.mtx: (4,3)=6, (5,3)=1, (6,3)=1, 1-based gene, cell
    np.testing.assert_array_equal(X.toarray(), expected)
    by_id = tenx_mtx_parts(data / "10x/int-ids", var_names="gene_ids")
    assert by_id.var.index.tolist()[:2] == ["574405", "574404"]
    assert by_id.var["gene_symbols"].tolist()[0] == "Pwwp4b"


def write_v3_dir(folder, features, matrix_lines, barcodes):
    """A gzipped Cell Ranger 3 directory (the layout scanpy 1.11 reads)."""
    folder.mkdir()
    for name, lines in (
        ("features.tsv.gz", ["\t".join(f) for f in features]),
        ("barcodes.tsv.gz", barcodes),
        ("matrix.mtx.gz", matrix_lines),
    ):
        (folder / name).write_bytes(gzip.compress("".join(f"{x}\n" for x in lines).encode()))
    return folder


FEATURES = [
    ("ID1", "A", "Gene Expression"),
    ("ID2", "A", "Gene Expression"),
    ("ID3", "A-1", "Gene Expression"),
    ("ID4", "CD3", "Antibody Capture"),
    ("ID5", "A", "Gene Expression"),
]
MATRIX = [
    "%%MatrixMarket matrix coordinate integer general",
    '%metadata_json: {"format_version": 2}',
    "5 2 4",
    "1 1 3",
    "4 1 7",
    "2 2 1",
    "5 2 2",
]


def test_make_unique_and_gex_only(tmp_path):
    folder = write_v3_dir(tmp_path / "d", FEATURES, MATRIX, ["c1", "c2"])
    for kw in ({}, {"gex_only": False}, {"make_unique": False}, {"var_names": "gene_ids"}):
        assert_same(tenx_mtx_parts(folder, **kw), scanpy_read(folder, **kw))
    parts = tenx_mtx_parts(folder)
    # "A-1" exists, so the second repeat of "A" skips to "A-2" (anndata's algorithm)
    assert parts.var.index.tolist() == ["A", "A-2", "A-1", "A-3"]
    assert tenx_mtx_parts(folder, gex_only=False).shape == (2, 5)


def test_missing_files_are_named(data, tmp_path):
    folder = gunzip_dir(data / V3, tmp_path / "d")
    (folder / "barcodes.tsv").unlink()
    with pytest.raises(StorageError, match=r"barcodes\.tsv") as e:
        tenx_mtx_parts(folder)
    assert e.value.source.endswith("/d")
    with pytest.raises(StorageError, match=r"matrix\.mtx"):
        tenx_mtx_parts(tmp_path / "does-not-exist")


def test_row_counts_must_match_the_matrix(tmp_path):
    folder = write_v3_dir(tmp_path / "d", FEATURES[:4], MATRIX, ["c1", "c2"])
    with pytest.raises(ShapeMismatchError, match="5 features x 2 barcodes"):
        tenx_mtx_parts(folder)


def test_too_few_feature_columns(tmp_path):
    features = [f[:2] for f in FEATURES]
    folder = write_v3_dir(tmp_path / "d", features, MATRIX, ["c1", "c2"])
    with pytest.raises(FormatError, match="at least 3 tab-separated columns") as e:
        tenx_mtx_parts(folder)
    assert e.value.source.endswith("features.tsv.gz")


def test_malformed_matrix_header(tmp_path):
    folder = write_v3_dir(tmp_path / "d", FEATURES, ["%%MatrixMarket matrix", *MATRIX[2:]], "ab")
    with pytest.raises(FormatError, match="malformed Matrix Market header") as e:
        tenx_mtx_parts(folder)
    assert e.value.source.endswith("matrix.mtx.gz")


def test_bad_var_names_argument(data):
    with pytest.raises(ValueError, match="gene_symbols"):
        tenx_mtx_parts(data / V3, var_names="symbols")
