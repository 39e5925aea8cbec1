"""Text formats: same results as anndata.io's read_mtx/read_csv/read_text/read_umi_tools/
read_excel, and write_csvs writing the same bytes as anndata's."""

from __future__ import annotations

import bz2
import gzip
import io
import warnings

import anndata
import anndata.io
import numpy as np
import pandas as pd
import pytest
from genomics_compare import assert_same
from scipy import sparse

import annscale as ad
from annscale.errors import FormatError, ShapeMismatchError, StorageError
from annscale.genomics._mtx import read_mtx_header
from annscale.genomics.text import (
    excel_parts,
    mtx_parts,
    text_parts,
    umi_tools_parts,
    write_csvs,
)


def quiet(fn, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kw)


# ----------------------------------------------------------------------------- csv / text


def test_shared_csv_equals_anndata(data):
    path = data / "text/adata.csv"
    assert_same(text_parts(path, ","), quiet(anndata.io.read_csv, path))
    parts = text_parts(path, ",")
    assert parts.obs.index.tolist() == ["r1", "r2", "r3"]
    assert parts.var.index.tolist() == ["c1", "c2"]


@pytest.mark.parametrize("rel", ["text/adata-comments.tsv", "text/krumsiek11.txt"])
def test_shared_text_equals_anndata(data, rel):
    assert_same(text_parts(data / rel), quiet(anndata.io.read_text, data / rel))


def test_column_names_from_last_comment(data):
    parts = text_parts(data / "text/adata-comments.tsv")
    assert parts.var.index.tolist() == ["c1", "c2"]
    krumsiek = text_parts(data / "text/krumsiek11.txt")
    # the time column "it" is numeric, so it stays data; rows are named by position
    assert krumsiek.var.index[:3].tolist() == ["it", "Gata2", "Gata1"]
    assert krumsiek.obs.index[:2].tolist() == ["0", "1"]
    assert krumsiek.X.shape == (640, 12) and krumsiek.X.dtype == np.float32


TABLES = {
    "plain numbers": ("1 2 3\n4 5 6\n", None, {}),
    "header, no row names": ("a b\n1 2\n3 4\n", None, {}),
    "row names, no header": ("r1 1 2\nr2 3 4\n", None, {}),
    "integer header over integer row names": ("1 2 3\n10 0.5 0.6 0.7\n11 1 2 3\n", None, {}),
    "forced first column names": ("1 2 3\n4 5 6\n", None, {"first_column_names": True}),
    "quoted names": ('"","a","b"\n"r1",1,2\n"r2",3,4\n', ",", {}),
    "blank lines and CRLF": ("# x y\r\n\r\n1\t2\r\n\r\n3\t4\r\n", "\t", {}),
    "single data line": ("name,a,b\nr1,1,2\n", ",", {}),
    "float64": ("a b\n1.5 2.25\n", None, {"dtype": "float64"}),
    "comments without names": ("#\n# \n1 2\n", None, {}),
}


@pytest.mark.parametrize("name", list(TABLES))
def test_layout_detection_as_anndata(tmp_path, name):
    content, delimiter, kw = TABLES[name]
    path = tmp_path / "t.txt"
    path.write_bytes(content.encode())
    expected = quiet(anndata.io.read_text, path, delimiter, **kw)
    assert_same(text_parts(path, delimiter, **kw), expected)
    # an iterable of lines works too
    assert_same(text_parts(io.StringIO(content), delimiter, **kw), expected)


@pytest.mark.parametrize("compress", [gzip.compress, bz2.compress])
def test_compressed_text_detected_from_content(data, tmp_path, compress):
    raw = (data / "text/krumsiek11.txt").read_bytes()
    path = tmp_path / "krumsiek.txt"  # no .gz/.bz2 suffix: the content tells
    path.write_bytes(compress(raw))
    assert_same(text_parts(path), quiet(anndata.io.read_text, data / "text/krumsiek11.txt"))


def test_text_errors_name_file_and_line(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("a;b\n1;2\n")
    with pytest.raises(FormatError, match="delimiter ','") as e:
        text_parts(path, ",")
    assert e.value.source.endswith("t.csv")
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(FormatError, match="line 3 has 3 values"):
        text_parts(path, ",")
    path.write_text("a,b\n1,2\n3,x\n")
    with pytest.raises(FormatError, match="line 3"):
        text_parts(path, ",")
    path.write_text("a,b\n1,2,3\n4,5,6\n")
    with pytest.raises(ShapeMismatchError, match="2 column names for 3 columns"):
        text_parts(path, ",")
    path.write_text("# only comments\n")
    with pytest.raises(FormatError, match="no data"):
        text_parts(path)
    with pytest.raises(StorageError, match=r"missing\.csv"):
        text_parts(tmp_path / "missing.csv", ",")


# ----------------------------------------------------------------------------- mtx


@pytest.mark.parametrize(
    "rel",
    [
        "10x/1.2.0/filtered_gene_bc_matrices/hg19_chr21/matrix.mtx",
        "10x/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz",
        "10x/int-ids/matrix.mtx",
    ],
)
def test_shared_mtx_equals_anndata(data, rel):
    assert_same(mtx_parts(data / rel), quiet(anndata.io.read_mtx, data / rel))


def test_metadata_json_comment(data):
    header = read_mtx_header(data / "10x/3.0.0/filtered_feature_bc_matrix/matrix.mtx.gz")
    assert header.format == "coordinate" and header.field == "integer"
    assert header.shape == (507, 1107) and header.nnz == 23866
    assert header.comments[0].startswith('metadata_json: {"format_version": 2')


MTX = {
    "array": "%%MatrixMarket matrix array real general\n2 3\n1\n2\n0\n4\n5\n0\n",
    "pattern symmetric": "%%MatrixMarket matrix coordinate pattern symmetric\n3 3 2\n1 1\n3 1\n",
    "integer": "%%MatrixMarket matrix coordinate integer general\n%c\n\n2 2 1\n2 1 -7\n",
    "empty": "%%MatrixMarket matrix coordinate real general\n0 0 0\n",
}


@pytest.mark.parametrize("name", list(MTX))
@pytest.mark.parametrize("dtype", ["float32", "int64"])
def test_mtx_variants_equal_anndata(tmp_path, name, dtype):
    path = tmp_path / "m.mtx"
    path.write_text(MTX[name])
    ours = mtx_parts(path, dtype=dtype)
    assert_same(ours, quiet(anndata.io.read_mtx, path, dtype=dtype))
    assert isinstance(ours.X, sparse.csr_matrix)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("hello\n1 1 1\n", "must start with '%%MatrixMarket'"),
        ("%%MatrixMarket matrix coordinate real\n1 1 0\n", "banner must be"),
        ("%%MatrixMarket tensor coordinate real general\n1 1 0\n", "banner must be"),
        ("%%MatrixMarket matrix sparse real general\n1 1 0\n", "format must be"),
        ("%%MatrixMarket matrix coordinate text general\n1 1 0\n", "field must be"),
        ("%%MatrixMarket matrix coordinate real upper\n1 1 0\n", "symmetry must be"),
        ("%%MatrixMarket matrix coordinate real general\n1 1\n", "3 non-negative integers"),
        ("%%MatrixMarket matrix array real general\n1 x\n", "2 non-negative integers"),
        ("%%MatrixMarket matrix coordinate real general\n", "3 non-negative integers"),
    ],
)
def test_malformed_mtx_headers(tmp_path, content, message):
    path = tmp_path / "bad.mtx"
    path.write_text(content)
    with pytest.raises(FormatError, match="malformed Matrix Market header") as e:
        mtx_parts(path)
    assert message in str(e.value)
    assert e.value.source.endswith("bad.mtx")


def test_bad_mtx_body_and_missing_file(tmp_path):
    path = tmp_path / "short.mtx"
    path.write_text("%%MatrixMarket matrix coordinate real general\n3 3 2\n1 1 1\n")
    with pytest.raises(FormatError, match="invalid Matrix Market data") as e:
        mtx_parts(path)
    assert e.value.source.endswith("short.mtx")
    with pytest.raises(StorageError, match=r"nope\.mtx"):
        mtx_parts(tmp_path / "nope.mtx")


# ----------------------------------------------------------------------------- umi_tools, excel


def test_umi_tools_equals_anndata(data):
    path = data / "text/umi_tools.tsv.gz"
    parts = umi_tools_parts(path)
    assert_same(parts, quiet(anndata.io.read_umi_tools, path))
    assert parts.obs.index.name == "cell" and parts.var.index.name == "gene"
    assert_same(umi_tools_parts(path, "float32"), anndata.io.read_umi_tools(path, "float32"))


def test_umi_tools_missing_column(tmp_path):
    path = tmp_path / "u.tsv"
    path.write_text("gene\tcell\tn\nA\tc1\t1\n")
    with pytest.raises(FormatError, match=r"missing \['count'\]"):
        umi_tools_parts(path)


def test_excel_equals_anndata(tmp_path):
    pytest.importorskip("openpyxl")
    path = tmp_path / "x.xlsx"
    df = pd.DataFrame({"cell": ["r1", "r2"], "g1": [1.0, 2.0], "g2": [3, 4]})
    df.to_excel(path, sheet_name="counts", index=False)
    assert_same(excel_parts(path, "counts"), anndata.io.read_excel(path, "counts"))
    with pytest.raises(FormatError, match="nope"):
        excel_parts(path, "nope")


# ----------------------------------------------------------------------------- write_csvs


def csv_adata(module):
    rng = np.random.default_rng(5)
    obs = pd.DataFrame(
        {"kind": pd.Categorical(["a", "b", "a"]), "n": [1, 2, 3]},
        index=pd.Index(["c1", "c2", "c3"]),
    )
    var = pd.DataFrame({"mean": [0.5, 1.25]}, index=pd.Index(["g1", "g2"]))
    return module.AnnData(
        X=np.arange(6, dtype=np.float32).reshape(3, 2),
        obs=obs,
        var=var,
        obsm={"X_pca": rng.normal(size=(3, 2)), "X_1d": np.arange(3.0)[:, None]},
        varm={"PCs": rng.normal(size=(2, 3))},
        uns={
            "scalar": 3,
            "name": "hello",
            "vector": np.arange(4),
            "table": pd.DataFrame({"x": [1, 2]}),
            "nested": {"a": 1},
        },
    )


def listing(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.csv")}


@pytest.mark.parametrize("skip_data", [True, False])
@pytest.mark.parametrize("sep", [",", "\t"])
def test_write_csvs_writes_anndatas_bytes(tmp_path, skip_data, sep):
    quiet(
        anndata.io.write_csvs, tmp_path / "theirs", csv_adata(anndata), skip_data=skip_data, sep=sep
    )
    write_csvs(tmp_path / "ours", csv_adata(ad), skip_data=skip_data, sep=sep)
    theirs, ours = listing(tmp_path / "theirs"), listing(tmp_path / "ours")
    assert sorted(ours) == sorted(theirs)
    assert ("X.csv" in ours) is not skip_data
    for name in theirs:
        assert ours[name] == theirs[name], name


def test_write_csvs_drops_csv_suffix_and_skips_sparse_uns(tmp_path):
    adata = csv_adata(ad)
    adata.uns["graph"] = sparse.eye(3, format="csr")
    with pytest.warns(UserWarning, match="Omitting to write sparse annotation"):
        write_csvs(tmp_path / "out.csv", adata)
    written = listing(tmp_path / "out")
    assert "uns/graph.csv" not in written
    assert written["obsm.csv"].decode().splitlines()[0] == "X_pca1,X_pca2,X_1d1"
    assert written["obs.csv"].decode().splitlines()[1] == "c1,a,1"
