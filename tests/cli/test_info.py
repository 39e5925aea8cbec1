"""``annscale info``: facts read from metadata, checked against the files themselves."""

from __future__ import annotations

import json
import os

import h5py
import pytest
import zarr
from cli_helpers import DATA, run_cli


@pytest.mark.parametrize("fmt", ["h5ad", "zarr2", "zarr3"])
def test_info_json_matches_the_store(small, fmt):
    adata, paths = small
    res = run_cli("info", "--json", paths[fmt])
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["format"] == fmt
    assert info["encoding"] == "anndata 0.1.0"
    assert (info["n_obs"], info["n_vars"]) == adata.shape
    elements = {e["path"]: e for e in info["elements"]}
    x = elements["X"]
    assert x["encoding"] == "csr_matrix 0.1.0"
    assert x["nnz"] == adata.X.nnz
    assert x["shape"] == list(adata.shape)
    assert x["dtype"] == "float32"
    assert elements["layers/dense"]["shape"] == list(adata.shape)
    assert elements["obs/cell_type"]["encoding"] == "categorical 0.2.0"
    assert elements["obs/cell_type"]["extra"]["categories"] == 3
    assert elements["uns/seed"]["encoding"] == "numeric-scalar 0.2.0"
    assert elements["obsm/pca"]["shape"] == [60, 3]
    if fmt == "h5ad":
        assert info["size_bytes"] == os.path.getsize(paths[fmt])
        with h5py.File(paths[fmt]) as f:
            assert elements["X"]["chunks"] == list(f["X/data"].chunks)
    else:
        g = zarr.open_group(paths[fmt], mode="r")
        assert elements["obsm/pca"]["chunks"] == list(g["obsm/pca"].chunks)
        assert info["size_bytes"] == sum(
            os.path.getsize(os.path.join(b, f)) for b, _, fs in os.walk(paths[fmt]) for f in fs
        )


def test_info_text_and_several_inputs_by_glob(small, tmp_path):
    res = run_cli("info", tmp_path / "small*")
    assert res.returncode == 0, res.stderr
    for name in ("small.h5ad", "small_v2.zarr", "small_v3.zarr"):
        assert name in res.stdout
    assert "shape: 60 obs x 25 vars" in res.stdout
    assert "csr_matrix 0.1.0" in res.stdout
    assert "nnz" in res.stdout


def test_info_legacy_archive():
    res = run_cli("info", "--json", DATA / "anndata-archives" / "v0.5.0" / "adata.h5ad")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert info["encoding"].startswith("legacy")
    import anndata

    expected = anndata.read_h5ad(DATA / "anndata-archives" / "v0.5.0" / "adata.h5ad")
    assert (info["n_obs"], info["n_vars"]) == expected.shape


def test_info_on_s3_with_storage_options(small, s3_store):
    _, paths = small
    url = s3_store.upload(paths["zarr3"])
    opts = s3_store.storage_options
    res = run_cli(
        "info", "--json", url,
        "--storage-option", f"key={opts['key']}",
        "--storage-option", f"secret={opts['secret']}",
        "--storage-option", f"client_kwargs.endpoint_url={opts['client_kwargs']['endpoint_url']}",
        "--storage-option", "skip_instance_cache=true",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    assert (info["n_obs"], info["n_vars"]) == (60, 25)
    assert info["size_bytes"] > 0


def test_info_missing_file_is_one_clear_line(tmp_path):
    res = run_cli("info", tmp_path / "nope.h5ad")
    assert res.returncode == 1
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "nope.h5ad" in lines[0] and "Traceback" not in res.stderr


def test_info_glob_without_match_is_a_usage_error(tmp_path):
    res = run_cli("info", tmp_path / "*.h5ad")
    assert res.returncode == 2
    assert "no file matches" in res.stderr
