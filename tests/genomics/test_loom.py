"""Loom: read like anndata.io.read_loom (through loompy), write what anndata.io.write_loom writes."""

from __future__ import annotations

import warnings

import anndata
import anndata.io
import h5py
import numpy as np
import pandas as pd
import pytest
from genomics_compare import assert_same
from scipy import sparse

import annscale as ad
from annscale import settings
from annscale.errors import ElementNotFoundError, FormatError, ShapeMismatchError, StorageError
from annscale.genomics.loom import loom_parts, read_loom, write_loom

loompy = pytest.importorskip("loompy")

TEST_LOOM = "loom/test.loom"


def anndata_read(path, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return anndata.io.read_loom(path, **kw)


@pytest.mark.parametrize(
    "kw", [{}, {"sparse": False}, {"cleanup": True}, {"dtype": "float64"}, {"var_names": "x"}]
)
def test_real_file_equals_anndata(data, kw):
    assert_same(loom_parts(data / TEST_LOOM, **kw), anndata_read(data / TEST_LOOM, **kw))


def test_real_file_names(data):
    parts = loom_parts(data / TEST_LOOM)
    assert parts.var.index.name == "Gene" and parts.var.index[0] == "A"
    assert parts.obs.index.tolist()[:3] == ["0", "1", "2"]  # no CellID: positions as str
    assert parts.obs["Cell"].dtype == np.int64
    assert isinstance(parts.X, sparse.csr_matrix) and parts.X.dtype == np.float32


@pytest.fixture
def rich_loom(tmp_path):
    """A loompy-written file with layers, strings needing escapes, 2-d and bool attributes."""
    rng = np.random.default_rng(1)
    genes, cells = 7, 9
    main = rng.poisson(1.0, size=(genes, cells)).astype(np.float32)
    path = tmp_path / "rich.loom"
    loompy.create(
        str(path),
        {
            "": main,
            "spliced": rng.poisson(1.0, size=(genes, cells)).astype(np.int32),
            "unspliced": sparse.random(genes, cells, density=0.3, random_state=2, dtype="f8"),
        },
        row_attrs={
            "Gene": np.array([f"g&#233;ne-{i}" for i in range(genes)]),
            "Chromosome": np.array(["chr1"] * genes),
            "score": rng.normal(size=genes),
            "pcs": rng.normal(size=(genes, 3)),
        },
        col_attrs={
            "CellID": np.array([f"c<{i}>&" for i in range(cells)]),
            "umap_1": rng.normal(size=cells),
            "umap_2": rng.normal(size=cells),
            "is_good": np.arange(cells) % 2 == 0,
            "batch": np.array(["b1"] * cells),
        },
    )
    return path


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"sparse": False},
        {"cleanup": True},
        {"X_name": "unspliced"},
        {"X_name": "", "obs_names": "batch"},
        {"obsm_mapping": {"X_umap": ["umap_1", "umap_2"]}},
        {"varm_mapping": {"S": ["score"]}, "var_names": "Chromosome"},
    ],
)
def test_loompy_written_file_equals_anndata(rich_loom, kw):
    ours = loom_parts(rich_loom, **kw)
    assert_same(ours, anndata_read(rich_loom, **kw))


def test_layers_and_names_of_loompy_file(rich_loom):
    parts = loom_parts(rich_loom)
    # X is the "spliced" layer; /matrix becomes layers["matrix"]; sparse layers are float64
    assert list(parts.layers) == ["matrix", "spliced", "unspliced"]
    assert parts.layers["spliced"].dtype == np.float64
    assert parts.obs.index[0] == "c<0>&" and parts.var.index[1] == "géne-1"  # unescaped
    assert parts.obs["is_good"].dtype == np.uint8  # loompy stores bools as bytes
    assert parts.varm["pcs"].shape == (7, 3)


def test_deprecated_obsm_names(rich_loom):
    with pytest.warns(FutureWarning, match="obsm_names"):
        adata = read_loom(rich_loom, obsm_names={"X_umap": ["umap_1", "umap_2"]})
    assert adata.obsm["X_umap"].shape == (9, 2)
    with pytest.raises(ValueError, match="ambiguous"), pytest.warns(FutureWarning):
        read_loom(rich_loom, obsm_names={"a": ["umap_1"]}, obsm_mapping={"b": ["umap_2"]})


def test_sparse_read_in_blocks_equals_whole(rich_loom):
    whole = loom_parts(rich_loom)
    with settings.override(chunk_target_bytes=8):  # one 64-cell block at least; 9 cells
        blocked = loom_parts(rich_loom)
    assert_same(blocked, anndata_read(rich_loom))
    assert (whole.X != blocked.X).nnz == 0


# ----------------------------------------------------------------------------- writing


def small_adata(module, *, X=None):
    rng = np.random.default_rng(3)
    X = (
        sparse.random(6, 4, density=0.5, random_state=4, format="csr", dtype="f4")
        if X is None
        else X
    )
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(["a", "b", "a", "c", "b", "a"]),
            "n_counts": np.arange(6, dtype=np.int64),
            "flag": np.array([True, False] * 3),
            "label": ["&#233;", "x<y", "z", "w", "v", "u"],
        },
        index=pd.Index([f"cell{i}" for i in range(6)], name="CellID"),
    )
    var = pd.DataFrame(
        {"score": rng.normal(size=4)}, index=pd.Index([f"g{i}" for i in range(4)], name="Gene")
    )
    adata = module.AnnData(
        X=X,
        obs=obs,
        var=var,
        layers={"counts": np.asarray(rng.integers(0, 5, size=(6, 4)), dtype=np.int32)},
        obsm={"X_pca": rng.normal(size=(6, 2))},
        varm={"PCs": rng.normal(size=(4, 2))},
    )
    return adata


@pytest.mark.parametrize("write_obsm_varm", [False, True])
def test_write_loom_is_read_by_anndata_as_its_own_output(tmp_path, write_obsm_varm):
    theirs_path, ours_path = tmp_path / "theirs.loom", tmp_path / "ours.loom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anndata.io.write_loom(theirs_path, small_adata(anndata), write_obsm_varm=write_obsm_varm)
        write_loom(ours_path, small_adata(ad), write_obsm_varm=write_obsm_varm)
    for kw in ({}, {"sparse": False}):
        expected = anndata_read(theirs_path, **kw)
        assert_same(anndata_read(ours_path, **kw), expected)
        assert_same(loom_parts(ours_path, **kw), expected)


def _structure(path):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            kind = "str" if h5py.check_string_dtype(obj.dtype) else obj.dtype.str
            out[name] = (kind, obj.shape, obj.compression, obj.chunks if obj.ndim == 2 else None)
        else:
            out[name] = "group"

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return out


def test_write_loom_layout_matches_loompy(tmp_path):
    theirs_path, ours_path = tmp_path / "theirs.loom", tmp_path / "ours.loom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anndata.io.write_loom(theirs_path, small_adata(anndata))
        write_loom(ours_path, small_adata(ad))
    assert _structure(ours_path) == _structure(theirs_path)
    with loompy.connect(str(ours_path), "r") as lc:  # loompy validates the file
        assert lc.shape == (4, 6)
        assert lc.attrs["LOOM_SPEC_VERSION"] == "3.0.0"
        assert lc.ca["label"].tolist()[:2] == ["é", "x<y"]


@pytest.mark.filterwarnings("ignore:The loom file will lack")
def test_non_ascii_strings_are_kept(tmp_path):
    """A deliberate difference: loompy (so anndata) decodes strings as ASCII and drops the
    other bytes; we decode UTF-8. Everything else about the file reads the same."""
    adata = small_adata(ad)
    adata.obs["label"] = ["gène", "b", "c", "d", "e", "f"]
    path = tmp_path / "utf8.loom"
    write_loom(path, adata)
    assert loom_parts(path).obs["label"].tolist()[0] == "gène"
    assert anndata_read(path).obs["label"].tolist()[0] == "gne"
    with h5py.File(path, "r") as f:
        assert f["col_attrs/label"].asstr()[0] == "gène"


def test_write_loom_warns_about_obsm_varm(tmp_path):
    with pytest.warns(UserWarning, match="will lack these fields"):
        write_loom(tmp_path / "x.loom", small_adata(ad))


def test_round_trip_with_lazy_x(data, tmp_path):
    lazy = ad.read_10x_h5(data / "10x/3.0.0/filtered_feature_bc_matrix.h5", lazy=True)
    eager = ad.read_10x_h5(data / "10x/3.0.0/filtered_feature_bc_matrix.h5")
    path = tmp_path / "pbmc.loom"
    with settings.override(chunk_target_bytes=100_000):  # several blocks of cells
        write_loom(path, lazy)
    back = read_loom(path, obs_names="obs_names", var_names="var_names")
    assert (back.X != eager.X).nnz == 0
    pd.testing.assert_index_equal(back.obs_names, eager.obs_names.rename("obs_names"))
    assert back.var["gene_ids"].tolist() == eager.var["gene_ids"].tolist()


@pytest.mark.filterwarnings("ignore:The loom file will lack")
def test_write_loom_replaces_an_existing_file_atomically(tmp_path):
    path = tmp_path / "x.loom"
    path.write_text("old")
    write_loom(path, small_adata(ad))
    assert loom_parts(path).shape == (6, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.loom"]


@pytest.mark.filterwarnings("ignore:The loom file will lack")
def test_write_loom_refuses_what_loompy_refuses(tmp_path):
    X = np.ones((6, 4), dtype=np.float32)
    X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        write_loom(tmp_path / "nan.loom", small_adata(ad, X=X))
    assert not (tmp_path / "nan.loom").exists()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="empty"):
        write_loom(tmp_path / "e.loom", ad.AnnData(X=np.zeros((0, 3), dtype=np.float32)))
    with pytest.raises(StorageError, match="local disk"):
        write_loom("memory://x.loom", small_adata(ad))


# ----------------------------------------------------------------------------- bad input


def test_missing_file(tmp_path):
    with pytest.raises(StorageError, match=r"nope\.loom"):
        loom_parts(tmp_path / "nope.loom")


def test_missing_matrix_is_named(rich_loom):
    with h5py.File(rich_loom, "a") as f:
        del f["matrix"]
    with pytest.raises(ElementNotFoundError, match="missing 'matrix'") as e:
        loom_parts(rich_loom)
    assert e.value.source.endswith("rich.loom") and e.value.element == "/"


def test_bad_shapes_are_named(rich_loom):
    with h5py.File(rich_loom, "a") as f:
        del f["col_attrs/batch"]
        f["col_attrs/batch"] = np.arange(3)
    with pytest.raises(ShapeMismatchError) as e:
        loom_parts(rich_loom)
    assert e.value.element == "/col_attrs/batch"


def test_unknown_mapping_attribute(rich_loom):
    with pytest.raises(ElementNotFoundError, match="'umap_9'") as e:
        loom_parts(rich_loom, obsm_mapping={"X_umap": ["umap_1", "umap_9"]})
    assert e.value.element == "/col_attrs"


def test_matrix_must_be_2d(tmp_path):
    path = tmp_path / "bad.loom"
    with h5py.File(path, "w") as f:
        f["matrix"] = np.arange(3)
    with pytest.raises(FormatError, match="2-d"):
        loom_parts(path)
