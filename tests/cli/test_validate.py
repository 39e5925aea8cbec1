"""``annscale validate``: valid stores pass; each kind of corruption is found and named."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import zarr
from cli_helpers import DATA, run_cli


def _problems(res) -> dict[str, str]:
    report = json.loads(res.stdout)
    return {p["element"]: p["message"] for p in report["problems"]}


def test_valid_stores_pass(small):
    _, paths = small
    archives = [
        DATA / "anndata-archives" / v / name
        for v in ("v0.7.8", "v0.11.4")
        for name in ("adata.h5ad", "adata.zarr.zip")
    ]
    res = run_cli("validate", *paths.values(), *archives)
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.count(": valid (") == len(paths) + len(archives)


def _zarr_copy(paths, tmp_path, fmt: str):
    dst = tmp_path / f"bad_{fmt}.zarr"
    shutil.copytree(paths[fmt], dst)
    return dst, zarr.open_group(dst, mode="r+", use_consolidated=False)


@pytest.mark.parametrize("fmt", ["zarr2", "zarr3"])
def test_corrupt_zarr_problems_are_each_named(small, tmp_path, fmt):
    adata, paths = small
    dst, g = _zarr_copy(paths, tmp_path, fmt)
    indptr = g["X/indptr"][:]
    indptr[10] = indptr[12] + 3  # not monotonic
    g["X/indptr"][:] = indptr
    indices = g["X/indices"][:]
    indices[4] = 10_000  # out of range
    g["X/indices"][:] = indices
    g["obs/cell_type"].attrs["encoding-version"] = "9.9.9"
    g["obsm"].create_array("bad", shape=(59, 2), dtype="f8")[:] = 1.0
    g["obsm/bad"].attrs.update({"encoding-type": "array", "encoding-version": "0.2.0"})
    data = g["layers/dense"]  # a dense array: omitted chunks only earn a note
    # delete the stored chunk objects of the sparse X/data (not fill: a real loss)
    chunk_dir = dst / "X" / "data"
    removed = [
        p for p in chunk_dir.rglob("*") if p.is_file() and p.name not in (".zarray", "zarr.json")
    ]
    assert removed
    for p in removed:
        p.unlink()
    assert data.shape == adata.shape
    zarr.consolidate_metadata(str(dst))

    res = run_cli("validate", "--json", dst)
    assert res.returncode == 1, res.stderr
    problems = _problems(res)
    assert "decreases at position 11" in problems["X/indptr"]
    assert "index 10000 at position 4 is outside [0, 25)" in problems["X/indices"]
    assert "chunks are not stored" in problems["X/data"]
    assert "unknown encoding 'categorical' version '9.9.9'" in problems["obs/cell_type"]
    assert "axis 0 has 59, expected 60" in problems["obsm/bad"]
    assert len(problems) == 5

    text = run_cli("validate", dst)
    assert text.returncode == 1
    assert text.stdout.splitlines()[0].endswith(": 5 problems")
    assert "  X/indptr: decreases at position 11" in text.stdout


def test_corrupt_h5ad_problems_are_each_named(small, tmp_path):
    _, paths = small
    dst = tmp_path / "bad.h5ad"
    shutil.copy(paths["h5ad"], dst)
    with h5py.File(dst, "r+") as f:
        codes = f["obs/cell_type/codes"][:]
        codes[5] = 7
        f["obs/cell_type/codes"][...] = codes
        f["X/indptr"][-1] = f["X/indptr"][-1] - 1  # does not end at nnz
        f["X"].attrs["shape"] = np.array([60, 26])
        del f["obs/batch"]  # listed in column-order, but gone
        del f["layers/dense"]
        f["layers"].create_dataset("dense", data=np.zeros((60, 24), dtype="f4"))
        f["layers/dense"].attrs["encoding-type"] = "array"
        f["layers/dense"].attrs["encoding-version"] = "0.2.0"
        f["obs/n_counts"].attrs["encoding-type"] = "no-such-encoding"
        f["uns"].create_dataset("plain", data=np.arange(3))  # no encoding attributes
    res = run_cli("validate", "--json", dst)
    assert res.returncode == 1, res.stderr
    problems = _problems(res)
    assert "code 7 at position 5 is outside [-1, 3)" in problems["obs/cell_type/codes"]
    assert "expected nnz" in problems["X/indptr"]
    assert "axis 1 has 26, expected 25" in problems["X"]
    assert "missing child 'batch'" in problems["obs"]
    assert "axis 1 has 24, expected 25" in problems["layers/dense"]
    assert "unknown encoding 'no-such-encoding'" in problems["obs/n_counts"]
    assert "no encoding attributes" in problems["uns/plain"]


def test_truncated_file_is_a_problem_not_a_crash(small, tmp_path):
    _, paths = small
    dst = tmp_path / "truncated.h5ad"
    data = paths["h5ad"].read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    res = run_cli("validate", dst)
    assert res.returncode == 1
    assert "truncated.h5ad: 1 problem" in res.stdout
    assert "Traceback" not in res.stderr


def test_omitted_fill_chunks_of_dense_arrays_are_notes(tmp_path):
    import anndata

    a = anndata.AnnData(np.zeros((40, 4), dtype=np.float32))
    a.X[:10] = 1.0
    a.write_zarr(tmp_path / "zeros.zarr", chunks=(10, 4))
    res = run_cli("validate", tmp_path / "zeros.zarr")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "3 of 4 chunks are not stored" in res.stderr
    assert "note:" in res.stderr


def test_checks_read_in_bounded_blocks(small, tmp_path, monkeypatch):
    """A decrease across a block boundary is found when arrays are read block by block."""
    from annscale.cli import checks
    from annscale.storage.location import as_location
    from annscale.storage.open import open_root

    _, paths = small
    dst = tmp_path / "blocks.h5ad"
    shutil.copy(paths["h5ad"], dst)
    with h5py.File(dst, "r+") as f:
        indptr = f["X/indptr"][:]
        indptr[33] = indptr[32] - 1
        f["X/indptr"][...] = indptr
    reads = []
    original = checks._blocks

    def spy(arr):
        for start, block in original(arr):
            reads.append((len(block), arr.chunks[0] if arr.chunks else arr.shape[0]))
            yield start, block

    monkeypatch.setattr(checks, "BLOCK_ELEMENTS", 8)
    monkeypatch.setattr(checks, "_blocks", spy)
    with open_root(dst) as root:
        checker = checks.StoreChecker(root, as_location(dst), "h5ad")
        problems = checker.run()
    assert [p.element for p in problems] == ["X/indptr"]
    assert "decreases at position 33" in problems[0].message
    # one storage chunk at a time when chunks exceed the block size, else whole chunks <= 8
    assert reads and all(n <= max(8, chunk) for n, chunk in reads)
