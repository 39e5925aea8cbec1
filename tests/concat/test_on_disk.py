"""``annscale.concat_on_disk``: the result read back with anndata equals ``anndata.concat`` of
the loaded inputs (everything, including uns, raw and pairwise obsp), and equals anndata's own
``concat_on_disk`` for the elements that one writes. Memory stays bounded as inputs grow."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import anndata
import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from anndata.experimental import concat_on_disk as anndata_concat_on_disk
from concat_builders import assert_array_same, assert_same
from test_collection import _read, _sample, _write_samples

import annscale


def _theirs(paths: list[str], tmp_path: Path, **kwargs) -> anndata.AnnData:
    """anndata.concat of the loaded inputs, written and read back by anndata."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = anndata.concat([_read(p) for p in paths], **kwargs)
        result.write_h5ad(tmp_path / "expected.h5ad")
        return anndata.read_h5ad(tmp_path / "expected.h5ad")


def _ours(paths, out: Path, **kwargs) -> anndata.AnnData:
    annscale.concat_on_disk(paths, out, **kwargs)
    return _read(str(out))


def test_signature_accepts_every_anndata_parameter():
    ours = inspect.signature(annscale.concat_on_disk).parameters
    theirs = inspect.signature(anndata_concat_on_disk).parameters
    for name, p in theirs.items():
        assert name in ours, name
        assert ours[name].kind == p.kind, name
        assert ours[name].default == p.default, name


@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("out_suffix", [".h5ad", ".zarr"])
def test_complete_result_matches_anndata_concat(tmp_path, join, out_suffix):
    paths = _write_samples(tmp_path, 3)
    kwargs = dict(
        join=join, merge="same", uns_merge="same", label="sample", index_unique="-", pairwise=True
    )
    ours = _ours(paths, tmp_path / f"out{out_suffix}", **kwargs)
    theirs = _theirs(paths, tmp_path, keys=["0", "1", "2"], **kwargs)
    # uns (merged), raw, obsp (block diagonal) and layers of an outer join are all there
    assert ours.uns == {"pipeline": {"version": "1.0"}, "shared": 3}
    assert ours.raw is not None and "distances" in ours.obsp and "counts" in ours.layers
    assert_same(ours, theirs)


@pytest.mark.parametrize("join", ["inner", "outer"])
@pytest.mark.parametrize("options", [{}, {"label": "batch", "index_unique": "_", "merge": "same"}])
def test_same_as_anndata_concat_on_disk_where_it_writes(tmp_path, join, options):
    paths = _write_samples(tmp_path, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        anndata_concat_on_disk(paths, tmp_path / "anndata.h5ad", join=join, **options)
    ref = anndata.read_h5ad(tmp_path / "anndata.h5ad")
    ours = _ours(paths, tmp_path / "ours.h5ad", join=join, **options)
    assert ours.shape == ref.shape
    pd.testing.assert_frame_equal(ours.obs, ref.obs)
    pd.testing.assert_frame_equal(ours.var, ref.var)
    assert_array_same(ours.X, ref.X, "X")
    for attr in ("layers", "obsm", "varm"):
        assert set(getattr(ref, attr)) <= set(getattr(ours, attr)), attr
        for k, v in getattr(ref, attr).items():
            assert_array_same(getattr(ours, attr)[k], v, f"{attr}[{k!r}]")


def test_axis_var_mapping_keys_and_dense(tmp_path):
    paths = _write_samples(tmp_path, 2, dense=True, n_obs=10)
    mapping = {"first": paths[0], "second": paths[1]}
    kwargs = dict(axis="var", join="outer", label="src", fill_value=-1)
    ours = _ours(mapping, tmp_path / "out.zarr", **kwargs)
    theirs = _theirs(paths, tmp_path, keys=["first", "second"], **kwargs)
    assert_same(ours, theirs)
    # explicit keys; the inputs may also be open root groups
    with h5py.File(paths[0], "r") as f0, h5py.File(paths[1], "r") as f1:
        ours = _ours([f0, f1], tmp_path / "keys.h5ad", keys=["a", "b"], label="src")
    theirs = _theirs(paths, tmp_path, keys=["a", "b"], label="src")
    assert_same(ours, theirs)


def test_errors(tmp_path):
    paths = _write_samples(tmp_path, 2)
    with pytest.raises(ValueError, match="output format"):
        annscale.concat_on_disk(paths, tmp_path / "out.txt")
    with pytest.raises(ValueError, match="No objects"):
        annscale.concat_on_disk([], tmp_path / "out.h5ad")
    with pytest.raises(TypeError, match="root groups"):
        with h5py.File(paths[0], "r") as f:
            annscale.concat_on_disk([f["X"]], tmp_path / "out.h5ad")
    assert not (tmp_path / "out.h5ad").exists()
    # max_loaded_elems is accepted (and has no effect on the result)
    annscale.concat_on_disk(paths, tmp_path / "a.h5ad", max_loaded_elems=10)
    annscale.concat_on_disk(paths, tmp_path / "b.h5ad")
    assert_same(_read(str(tmp_path / "a.h5ad")), _read(str(tmp_path / "b.h5ad")))
    # resume: zarr outputs only; an h5ad output is refused before anything is written
    with pytest.raises(ValueError, match="zarr outputs only"):
        annscale.concat_on_disk(paths, tmp_path / "c.h5ad", resume=True)
    assert not (tmp_path / "c.h5ad").exists()
    # with nothing to resume, resume=True simply writes
    annscale.concat_on_disk(paths, tmp_path / "c.zarr", resume=True)
    assert_same(_read(str(tmp_path / "c.zarr")), _read(str(tmp_path / "b.h5ad")))


def test_empty_intersection_and_single_input(tmp_path):
    a, b = _sample(0, n_genes=3), _sample(4, n_genes=3)  # no gene in common
    b.obs_names = [f"b{j}" for j in range(b.n_obs)]
    for name, ad in (("a", a), ("b", b)):
        ad.write_h5ad(tmp_path / f"{name}.h5ad")
    paths = [str(tmp_path / "a.h5ad"), str(tmp_path / "b.h5ad")]
    ours = _ours(paths, tmp_path / "inner.h5ad", join="inner")
    assert_same(ours, _theirs(paths, tmp_path, keys=["0", "1"], join="inner"))
    ours = _ours(paths[:1], tmp_path / "one.h5ad", uns_merge="first")
    assert_same(ours, _theirs(paths[:1], tmp_path, keys=["0"], uns_merge="first"))


# ---------------------------------------------------------------------------- memory

_CHILD = textwrap.dedent(
    """
    import json, sys
    import annscale
    from annscale.combine import on_disk  # noqa: F401  (imported before measuring)
    import annscale.io.h5ad  # noqa: F401

    def peak_kib():
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))

    out, *inputs = sys.argv[1:]
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS to the current RSS
    before = peak_kib()
    with annscale.settings.override(chunk_target_bytes=1 << 20, progress=False):
        annscale.concat_on_disk(inputs, out, join="outer", label="sample", index_unique="-")
    print(json.dumps({"peak_growth_kib": peak_kib() - before}))
    """
)


def _write_wide_inputs(folder: Path, n: int) -> list[str]:
    """``n`` inputs of 1000 cells x 2000 genes (200k nonzeros, ~1.6 MB stored each): stored
    data dominate the annotations (names), which every concatenation holds in memory."""
    rng = np.random.default_rng(0)
    paths = []
    n_obs, n_var, per_row = 1000, 2000, 200
    for i in range(n):
        columns = rng.permuted(np.tile(np.arange(n_var), (n_obs, 1)), axis=1)[:, :per_row]
        indices = np.sort(columns, axis=1).ravel()
        indptr = np.arange(n_obs + 1) * per_row
        X = sp.csr_matrix(
            (rng.random(len(indices), dtype=np.float32), indices, indptr), shape=(n_obs, n_var)
        )
        ad = anndata.AnnData(
            X=X,
            obs=pd.DataFrame(index=[f"c{j}" for j in range(n_obs)]),
            var=pd.DataFrame(index=[f"g{j + 10 * i}" for j in range(n_var)]),
        )
        path = folder / f"w{i}.h5ad"
        ad.write_h5ad(path)
        paths.append(str(path))
    return paths


def test_peak_memory_does_not_grow_with_the_number_of_inputs(tmp_path):
    """Twice as many inputs (more than the open-file cache holds) add far less peak memory
    than the extra stored data: chunks stream through, nothing accumulates. What does grow
    is per input and small: its annotations and HDF5's bookkeeping of one more opened file
    (measured: 40 -> 80 inputs of 1.6 MB add ~30 MB of peak for 68 MB more data)."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("needs Linux /proc to measure peak RSS")
    n = 40
    paths = _write_wide_inputs(tmp_path, 2 * n)
    extra_bytes = sum(Path(p).stat().st_size for p in paths[n:])
    growth = {}
    for count in (n, 2 * n):
        script = tmp_path / "child.py"
        script.write_text(_CHILD)
        out = tmp_path / f"out{count}.h5ad"
        proc = subprocess.run(
            [sys.executable, str(script), str(out), *paths[:count]],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        growth[count] = json.loads(proc.stdout.strip().splitlines()[-1])["peak_growth_kib"] * 1024
    print(
        f"peak RSS growth: {n} inputs {growth[n] / 1e6:.1f} MB, {2 * n} inputs "
        f"{growth[2 * n] / 1e6:.1f} MB; extra stored data {extra_bytes / 1e6:.1f} MB"
    )
    assert growth[2 * n] - growth[n] < 0.5 * extra_bytes
    result = anndata.read_h5ad(tmp_path / f"out{2 * n}.h5ad")
    assert result.shape == (2 * n * 1000, 2000 + 10 * (2 * n - 1))
