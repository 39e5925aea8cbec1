"""``annscale subset``: the result equals the same selection made with anndata."""

from __future__ import annotations

import anndata
import numpy as np
import pytest
from anndata.tests.helpers import assert_equal
from cli_helpers import run_cli


def test_subset_by_obs_expression_matches_anndata(small, tmp_path):
    adata, paths = small
    out = tmp_path / "nk.h5ad"
    expr = 'cell_type in ["NK", "T"] and n_counts >= 2 and not is_doublet'
    res = run_cli("subset", paths["zarr3"], "-o", out, "--obs", expr)
    assert res.returncode == 0, res.stderr
    mask = (
        adata.obs["cell_type"].isin(["NK", "T"])
        & (adata.obs["n_counts"] >= 2)
        & ~adata.obs["is_doublet"]
    )
    assert 0 < mask.sum() < adata.n_obs
    assert_equal(anndata.read_h5ad(out), adata[mask.to_numpy()].copy())


def test_subset_by_name_files_keeps_stored_order(small, tmp_path):
    adata, paths = small
    cells = ["cell7", "cell3", "cell40", "cell3"]  # order and repeats do not matter
    genes = ["g20", "g1", "g2"]
    (tmp_path / "cells.txt").write_text("\n".join(cells) + "\n\n")
    (tmp_path / "genes.txt").write_text("\n".join(genes) + "\n")
    out = tmp_path / "named.zarr"
    res = run_cli(
        "subset", paths["h5ad"], "-o", out,
        "--obs-names", tmp_path / "cells.txt", "--var-names", tmp_path / "genes.txt",
        "--obs", "batch != 99",
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    back = anndata.read_zarr(out)
    rows = adata.obs_names.isin(cells)
    cols = adata.var_names.isin(genes)
    assert_equal(back, adata[rows, cols].copy())
    assert list(back.obs_names) == ["cell3", "cell7", "cell40"]


def test_subset_unknown_names_are_named(small, tmp_path):
    _, paths = small
    (tmp_path / "genes.txt").write_text("g1\nnot_a_gene\nalso_missing\n")
    res = run_cli(
        "subset", paths["h5ad"], "-o", tmp_path / "x.h5ad", "--var-names", tmp_path / "genes.txt"
    )
    assert res.returncode == 2
    assert "2 gene names" in res.stderr and "'not_a_gene'" in res.stderr
    assert not (tmp_path / "x.h5ad").exists()


@pytest.mark.parametrize(("expr", "expected"), [
    ('cell_type == "NK" and len(cell_type) > 2', "function calls are not allowed at column 23"),
    ("__import__('os').system('touch pwned') == 0", "not allowed"),
    ("cel_type == 'NK'", "no obs column 'cel_type'; did you mean 'cell_type'?"),
])  # fmt: skip
def test_bad_obs_expressions_point_at_the_problem(small, tmp_path, expr, expected):
    _, paths = small
    out = tmp_path / "bad.h5ad"
    res = run_cli("subset", paths["h5ad"], "-o", out, "--obs", expr, cwd=tmp_path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    assert expected in lines[0]
    assert not out.exists()
    assert not (tmp_path / "pwned").exists()


def test_subset_needs_a_selection(small, tmp_path):
    _, paths = small
    res = run_cli("subset", paths["h5ad"], "-o", tmp_path / "x.h5ad")
    assert res.returncode == 2
    assert "nothing to select" in res.stderr


def test_subset_empty_selection_writes_an_empty_object(small, tmp_path):
    adata, paths = small
    out = tmp_path / "none.h5ad"
    res = run_cli("subset", paths["h5ad"], "-o", out, "--obs", "n_counts < -1")
    assert res.returncode == 0, res.stderr
    back = anndata.read_h5ad(out)
    assert back.shape == (0, adata.n_vars)
    assert np.asarray(back.X.sum()) == 0
