"""Property tests: lazy concatenation of stored files (and subsets of it) equals anndata's.

Random small objects (overlapping, shuffled names, mixed dtypes, dense and sparse, layers,
obsm, varm, obsp, raw, nested uns) are written with anndata, opened lazily by annscale and
concatenated across the whole option grid (axis x join x merge x uns_merge x label x keys x
index_unique x fill_value x pairwise). The result, and random subsets of it (pushed down to
the files), must equal ``anndata.concat`` of the same files read into memory.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import anndata
import numpy as np
from concat_builders import assert_same, random_parts, run_both, to_anndata
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import annscale

_options = st.fixed_dictionaries(
    {
        "axis": st.sampled_from([0, 1]),
        "join": st.sampled_from(["inner", "outer"]),
        "merge": st.sampled_from([None, "same", "unique", "first", "only"]),
        "uns_merge": st.sampled_from([None, "same", "unique", "first", "only"]),
        "label": st.sampled_from([None, "batch"]),
        "index_unique": st.sampled_from([None, "-"]),
        "fill_value": st.sampled_from([None, 0, 7, np.nan]),
        "pairwise": st.booleans(),
    }
)

_SETTINGS = settings(
    max_examples=20,
    deadline=None,
    # each example writes files: shrinking a failure would take minutes, report it as found
    phases=(Phase.explicit, Phase.reuse, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _write(parts: list[dict], folder: Path, fmt: str) -> list[str]:
    """Each part written by anndata as ``s{i}.h5ad`` or ``s{i}.zarr`` (fmt "zarr2"/"zarr3")."""
    paths = []
    for i, p in enumerate(parts):
        ad = to_anndata(p)
        if fmt == "h5ad":
            path = folder / f"s{i}.h5ad"
            ad.write_h5ad(path)
        else:
            path = folder / f"s{i}.zarr"
            with anndata.settings.override(zarr_write_format=int(fmt[-1])):
                ad.write_zarr(path)
        paths.append(str(path))
    return paths


def _read(path: str) -> anndata.AnnData:
    return anndata.read_h5ad(path) if path.endswith(".h5ad") else anndata.read_zarr(path)


def _both(paths: list[str], kwargs: dict, *, default_keys: bool = False):
    """(ours, theirs): annscale's lazy collection and anndata.concat of the loaded files.

    With ``default_keys`` annscale is not given ``keys`` (they default to the file names)
    while anndata is given the file names.
    """
    ours_kwargs = dict(kwargs)
    if default_keys:
        ours_kwargs.pop("keys")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = [_read(p) for p in paths]
    return run_both(
        lambda: anndata.concat(loaded, **kwargs),
        lambda: annscale.read_collection(paths, **ours_kwargs),
    )


def _selection(data: st.DataObject, n: int, label: str) -> np.ndarray | slice:
    kind = data.draw(st.sampled_from(["mask", "sorted", "shuffled", "slice"]), label=label)
    if kind == "slice":
        start = data.draw(st.integers(0, n), label=f"{label} start")
        return slice(start, data.draw(st.integers(start, n), label=f"{label} stop"))
    if kind == "mask":
        mask = data.draw(st.lists(st.booleans(), min_size=n, max_size=n), label=label)
        return np.array(mask, dtype=bool)
    pos = data.draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=n), label=label) if n else []
    pos = np.array(sorted(set(pos)), dtype=int)
    if kind == "shuffled":
        pos = data.draw(st.permutations(pos.tolist()), label=f"{label} order")
    return np.asarray(pos, dtype=int)


def _check_collection(fmt: str, seeds: list[int], options: dict, keys: str) -> None:
    parts = [random_parts(s) for s in seeds]
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write(parts, Path(tmp), fmt)
        names = [f"s{i}" for i in range(len(paths))]  # the files' names without suffix
        key_list = names if keys == "names" else [f"key{i}" for i in range(len(paths))]
        ours, theirs = _both(paths, {**options, "keys": key_list}, default_keys=keys == "names")
        if theirs is not None:
            if fmt != "h5ad":
                _reorder_like(theirs, ours)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                assert_same(ours, theirs)


_seeds = st.lists(st.integers(0, 10**6), min_size=1, max_size=3)
_keys = st.sampled_from(["names", "list"])


@_SETTINGS
@given(seeds=_seeds, options=_options, keys=_keys)
def test_h5ad_collection_matches_anndata_concat(seeds, options, keys):
    _check_collection("h5ad", seeds, options, keys)


# anndata writes zarr stores slowly (many small files): fewer examples, both zarr formats
@settings(_SETTINGS, max_examples=6)
@given(seeds=_seeds, options=_options, keys=_keys, fmt=st.sampled_from(["zarr2", "zarr3"]))
def test_zarr_collection_matches_anndata_concat(seeds, options, keys, fmt):
    _check_collection(fmt, seeds, options, keys)


def _reorder_like(theirs: anndata.AnnData, ours) -> None:
    """anndata's ``read_zarr`` lists ``obsm``/``varm``/``layers`` keys in another order than
    the keys are stored (and than ``read_h5ad`` and annscale's readers list them); the sets
    of keys are compared, the values key by key, in annscale's order."""
    for attr in ("layers", "obsm", "varm", "obsp", "varp"):
        mine, ref = getattr(ours, attr), getattr(theirs, attr)
        if set(mine) == set(ref) and list(mine) != list(ref):
            values = {k: ref[k] for k in mine}
            for k in list(ref):
                del ref[k]
            for k, v in values.items():
                ref[k] = v


@_SETTINGS
@given(
    seeds=st.lists(st.integers(0, 10**6), min_size=1, max_size=3),
    options=_options,
    data=st.data(),
)
def test_subset_of_collection_matches_subset_of_anndata_concat(seeds, options, data):
    parts = [random_parts(s) for s in seeds]
    with tempfile.TemporaryDirectory() as tmp:
        paths = _write(parts, Path(tmp), "h5ad")
        ours, theirs = _both(paths, {**options, "keys": [f"s{i}" for i in range(len(paths))]})
        if theirs is None:
            return
        rows = _selection(data, theirs.n_obs, "rows")
        cols = _selection(data, theirs.n_vars, "cols")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = theirs[rows, cols].copy()  # anndata's view types are not ours
            got = ours[rows, cols]
            assert_same(got, expected)
            # a copy of the view keeps the pushdown and gives the same in-memory object
            assert_same(got.copy().to_memory(), expected)
