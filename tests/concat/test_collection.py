"""``annscale.read_collection``: many stored files as one lazy AnnData.

Compared with ``anndata.concat`` of the same files read into memory; selections must read
only the rows they need and never touch a file that contributes none.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import anndata
import dask.array as da
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from concat_builders import assert_same

import annscale
from annscale.combine.sources import ConcatSource
from annscale.lazy import readers, sources
from annscale.storage.location import Location

CELL_TYPES = {0: ["B", "T"], 1: ["NK", "B"], 2: ["T"], 3: ["NK", "T"], 4: ["B"]}


def _sample(i: int, *, n_obs: int = 40, n_genes: int = 12, dense: bool = False) -> anndata.AnnData:
    """Sample ``i``: shifted gene sets, cell types from CELL_TYPES, layers, obsm, raw, uns."""
    rng = np.random.default_rng(i)
    genes = [f"g{j}" for j in range(i, i + n_genes)]
    rng.shuffle(genes)
    X = sp.random(n_obs, n_genes, density=0.3, format="csr", random_state=i, dtype=np.float32)
    X.data = np.ceil(X.data * 10)
    if dense:
        X = X.toarray()
    kinds = CELL_TYPES[i % len(CELL_TYPES)]
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(rng.choice(kinds, n_obs)),
            "score": rng.normal(size=n_obs).astype(np.float32),
        },
        index=[f"cell{j}" for j in range(n_obs)],
    )
    var = pd.DataFrame({"gene_id": [f"ENSG{g[1:]}" for g in genes]}, index=genes)
    ad = anndata.AnnData(X=X, obs=obs, var=var)
    ad.layers["counts"] = sp.csr_matrix(X) * 2
    ad.obsm["X_pca"] = rng.normal(size=(n_obs, 3))
    ad.varm["loadings"] = np.array([[int(g[1:]), 1.0] for g in genes])
    ad.obsp["distances"] = sp.random(n_obs, n_obs, density=0.1, format="csr", random_state=i)
    ad.uns = {"pipeline": {"version": "1.0", "sample": f"s{i}"}, "shared": 3}
    ad.raw = ad.copy()
    return ad


def _write_samples(folder: Path, n: int, *, fmt: str = "h5ad", **kw) -> list[str]:
    paths = []
    for i in range(n):
        ad = _sample(i, **kw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if fmt == "h5ad":
                path = folder / f"sample{i}.h5ad"
                ad.write_h5ad(path)
            else:
                path = folder / f"sample{i}.zarr"
                ad.write_zarr(path)
        paths.append(str(path))
    return paths


def _read(path: str) -> anndata.AnnData:
    return anndata.read_h5ad(path) if path.endswith(".h5ad") else anndata.read_zarr(path)


def _locations(x: da.Array) -> set[str]:
    """URLs of the stores that the tasks of ``x``'s graph read."""
    found: set[str] = set()

    def walk(v):
        if isinstance(v, (readers.SparseRead, readers.DenseRead)):
            found.add(v.location.url)
        elif isinstance(v, (tuple, list)):
            for w in v:
                walk(w)

    for v in dict(x.__dask_graph__()).values():
        walk(v)
    return found


class _ReadLog:
    """Counts what chunk tasks and ``indptr`` reads touch (per URL, in stored rows)."""

    def __init__(self, monkeypatch):
        self.rows: dict[str, int] = {}
        self.indptr: list[str] = []
        for cls in (readers.SparseRead, readers.DenseRead):
            monkeypatch.setattr(cls, "__call__", self._wrap(cls.__call__))
        original = sources.read_indptr

        def read_indptr(location, element, start, stop):
            self.indptr.append(location.url)
            return original(location, element, start, stop)

        monkeypatch.setattr(sources, "read_indptr", read_indptr)

    def _wrap(self, call):
        log = self

        def wrapped(task):
            n = int(np.sum(task.stops - task.starts))
            log.rows[task.location.url] = log.rows.get(task.location.url, 0) + n
            return call(task)

        return wrapped


# ---------------------------------------------------------------------------- results


@pytest.mark.parametrize("join", ["inner", "outer"])
def test_matches_anndata_concat_of_loaded_files(tmp_path, join):
    (tmp_path / "z").mkdir()
    paths = _write_samples(tmp_path, 2) + _write_samples(tmp_path / "z", 1, fmt="zarr")
    kwargs = dict(
        join=join, merge="same", uns_merge="same", label="sample", index_unique="-", pairwise=True
    )
    with pytest.raises(ValueError, match="share the file names"):  # sample0 twice
        annscale.read_collection(paths, **kwargs)
    coll = annscale.read_collection(paths, keys=["a", "b", "c"], **kwargs)
    assert isinstance(coll._X, ConcatSource)  # deferred: nothing read yet
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.concat([_read(p) for p in paths], keys=["a", "b", "c"], **kwargs)
    assert list(coll.obs["sample"].cat.categories) == ["a", "b", "c"]
    assert_same(coll, theirs)
    assert_same(coll.to_memory(), theirs)


def test_keys_default_to_file_names_and_globs_are_sorted(tmp_path):
    paths = _write_samples(tmp_path, 3)
    coll = annscale.read_collection(str(tmp_path / "sample*.h5ad"), label="batch")
    assert list(coll.obs["batch"].cat.categories) == ["sample0", "sample1", "sample2"]
    theirs = anndata.concat(
        [_read(p) for p in paths], label="batch", keys=["sample0", "sample1", "sample2"]
    )
    assert_same(coll, theirs)
    # a mapping names the inputs; Location and Path inputs work too
    coll = annscale.read_collection(
        {"x": Path(paths[0]), "y": Location(paths[1], {})}, label="batch", index_unique="_"
    )
    assert list(coll.obs["batch"].cat.categories) == ["x", "y"]
    assert coll.obs_names[0].endswith("_x")


def test_more_inputs_than_the_open_file_cache_in_threads(tmp_path, monkeypatch):
    """Inputs opened and read in parallel threads while the per-process cache of open files
    evicts: a file another thread is reading must not be closed under it."""
    from annscale.storage import cache

    cache.clear()
    monkeypatch.setitem(cache._state, "capacity", 2)
    paths = _write_samples(tmp_path, 8, n_obs=30)
    coll = annscale.read_collection(paths, join="outer", max_workers=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.concat(
            [_read(p) for p in paths], join="outer", keys=[f"sample{i}" for i in range(8)]
        )
    assert_same(coll, theirs)
    cache.clear()


def test_input_errors(tmp_path):
    paths = _write_samples(tmp_path, 2)
    with pytest.raises(FileNotFoundError, match="no file matches"):
        annscale.read_collection(str(tmp_path / "nothing*.h5ad"))
    with pytest.raises(ValueError, match="2 inputs"):
        annscale.read_collection(paths, keys=["only-one"])
    with pytest.raises(TypeError, match="Only specify this once"):
        annscale.read_collection({"a": paths[0]}, keys=["a"])
    with pytest.raises(annscale.errors.StorageError, match=r"missing\.h5ad"):
        annscale.read_collection([paths[0], str(tmp_path / "missing.h5ad")])


def test_axis_var_and_dense_inputs(tmp_path):
    paths = _write_samples(tmp_path, 3, dense=True, n_obs=10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.concat(
            [_read(p) for p in paths], axis=1, join="outer", keys=["sample0", "sample1", "sample2"]
        )
        coll = annscale.read_collection(paths, axis="var", join="outer")
        assert_same(coll, theirs)


def test_merge_same_compares_stored_varm(tmp_path):
    """Regression: lazily read varm (annscale's stored dask arrays) compared by value."""
    a, b = _sample(0), _sample(0)
    b.obs_names = [f"other{j}" for j in range(b.n_obs)]
    b.varm["loadings"] = b.varm["loadings"] + 1  # differs: dropped by "same"
    b.varm["sparse"] = a.varm["sparse"] = sp.csr_matrix(np.eye(a.n_vars)[:, :2])
    paths = []
    for name, ad in (("a", a), ("b", b)):
        ad.write_h5ad(tmp_path / f"{name}.h5ad")
        paths.append(str(tmp_path / f"{name}.h5ad"))
    coll = annscale.read_collection(paths, merge="same")
    theirs = anndata.concat([_read(p) for p in paths], merge="same", keys=["a", "b"])
    assert list(coll.varm) == ["sparse"]
    assert_same(coll, theirs)


def test_dropped_parts_are_not_read(tmp_path):
    """What the result drops is not read when opening: with merge=None the inputs' varm and
    varp, without pairwise their obsp. Broken there, the files still open; the kept parts
    match anndata, and asking for the parts reads them (and reports the damage)."""
    import h5py

    from annscale.errors import AnnscaleError

    theirs = anndata.concat([_sample(i) for i in range(3)], join="outer", keys=["0", "1", "2"])
    paths = _write_samples(tmp_path, 3)
    for p in paths:
        with h5py.File(p, "a") as f:
            for name in ("varm", "varp", "obsp"):
                f[name].attrs["encoding-type"] = "no-such-encoding"
    coll = annscale.read_collection(paths, join="outer", keys=["0", "1", "2"])
    assert_same(coll, theirs)
    assert dict(coll.varm) == {} and dict(coll.obsp) == {}
    for kwargs in ({"merge": "same"}, {"pairwise": True}):
        with pytest.raises(AnnscaleError, match="no-such-encoding"):
            annscale.read_collection(paths, join="outer", **kwargs)


# ---------------------------------------------------------------------------- selections


def test_selecting_cells_reads_only_contributing_files(tmp_path, monkeypatch):
    paths = _write_samples(tmp_path, 5)  # samples 1 and 3 have NK cells
    coll = annscale.read_collection(paths, join="outer", label="sample")
    log = _ReadLog(monkeypatch)
    nk = coll[coll.obs["cell_type"] == "NK"]
    contributing = {str(Path(paths[i]).resolve()) for i in (1, 3)}
    assert _locations(nk.X) == contributing
    assert _locations(nk.layers["counts"]) == contributing
    assert _locations(nk.raw.X) == contributing
    assert _locations(nk.obsm["X_pca"]) == contributing
    assert set(log.indptr) <= contributing  # graph building read only their indptr
    got = nk.to_memory()
    assert set(log.rows) == contributing  # computing read only those files ...
    for i in (1, 3):
        mask = _read(paths[i]).obs["cell_type"] == "NK"
        first, last = np.flatnonzero(mask)[[0, -1]]
        # ... and within them at most the span of the selected rows, per element
        per_element = last - first + 1
        # X, layers["counts"], obsm["X_pca"], raw.X
        assert log.rows[str(Path(paths[i]).resolve())] <= 4 * per_element
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        full = anndata.concat(
            [_read(p) for p in paths],
            join="outer",
            label="sample",
            keys=[f"sample{i}" for i in range(5)],
        )
    assert_same(got, full[full.obs["cell_type"] == "NK"].copy())


def test_interleaved_and_column_selections(tmp_path):
    paths = _write_samples(tmp_path, 3, n_obs=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.concat(
            [_read(p) for p in paths], join="outer", keys=["sample0", "sample1", "sample2"]
        )
    coll = annscale.read_collection(paths, join="outer")
    rng = np.random.default_rng(0)
    rows = rng.permutation(coll.n_obs)[:15]  # interleaves the inputs, unsorted
    cols = np.array(["g3", "g0", "g13", "g7"])  # g0 only in sample0, g13 only in sample2
    view = coll[rows, cols]
    assert isinstance(view.X, da.Array)
    assert_same(view, theirs[rows, cols].copy())
    # a view of a view composes, and a copy keeps the pushdown (still deferred)
    inner = view[::2, 1:]
    assert_same(inner, theirs[rows, cols][::2, 1:].copy())
    copied = coll[rows].copy()
    assert isinstance(copied._X, ConcatSource)
    assert_same(copied, theirs[rows].copy())


def test_subset_keeps_the_dtype_of_the_whole(tmp_path):
    """An outer join of integer dense data is float (NaN fill); a subset stays float even
    when it selects only values present in one input (as anndata.concat(...)[idx])."""
    for i, genes in enumerate([["a", "b"], ["b", "c"]]):
        ad = anndata.AnnData(
            X=np.arange(6, dtype=np.int32).reshape(3, 2),
            obs=pd.DataFrame(index=[f"c{i}{j}" for j in range(3)]),
            var=pd.DataFrame(index=genes),
        )
        ad.write_h5ad(tmp_path / f"s{i}.h5ad")
    coll = annscale.read_collection(str(tmp_path / "s*.h5ad"), join="outer")
    theirs = anndata.concat(
        [anndata.read_h5ad(tmp_path / f"s{i}.h5ad") for i in range(2)], join="outer"
    )
    sub = coll[:3, ["a", "b"]]
    assert sub.X.dtype == np.float64
    np.testing.assert_array_equal(sub.X.compute(), theirs[:3, ["a", "b"]].X)


def test_empty_selection(tmp_path):
    paths = _write_samples(tmp_path, 2)
    coll = annscale.read_collection(paths)
    empty = coll[coll.obs["cell_type"] == "nothing"]
    assert empty.shape == (0, coll.n_vars)
    assert empty.X.compute().shape == (0, coll.n_vars)


# ---------------------------------------------------------------------------- graph


def _graph_size(paths: list[str], **kw) -> int:
    coll = annscale.read_collection(paths, join="outer", **kw)
    return len(dict(coll.X.__dask_graph__()))


def test_graph_grows_linearly_with_files_and_chunks(tmp_path):
    paths = _write_samples(tmp_path, 16, n_obs=20)
    by_files = [_graph_size(paths[:n], chunks=10) for n in (4, 8, 16)]
    assert by_files[2] - by_files[1] == 2 * (by_files[1] - by_files[0])
    by_chunks = [_graph_size(paths[:4], chunks=c) for c in (20, 10, 5)]  # 1, 2, 4 per file
    assert by_chunks[2] - by_chunks[1] == 2 * (by_chunks[1] - by_chunks[0])


def test_collection_source_pickles(tmp_path):
    paths = _write_samples(tmp_path, 2)
    coll = annscale.read_collection(paths)
    src = coll[coll.obs["cell_type"] == "B"]._view.ref._X
    again = pickle.loads(pickle.dumps(src))
    assert again.shape == src.shape
    np.testing.assert_array_equal(
        again.materialize().compute().toarray(), src.materialize().compute().toarray()
    )


# ---------------------------------------------------------------------------- cloud


def test_s3_glob_collection(tmp_path, s3_store):
    paths = _write_samples(tmp_path, 3, n_obs=12)
    prefix = "collection-test"
    for p in paths:
        s3_store.upload(p, f"{prefix}/{Path(p).name}")
    url = s3_store.url(f"{prefix}/sample*.h5ad")
    coll = annscale.read_collection(
        url, join="outer", label="sample", storage_options=s3_store.storage_options
    )
    assert list(coll.obs["sample"].cat.categories) == ["sample0", "sample1", "sample2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = anndata.concat(
            [_read(p) for p in paths],
            join="outer",
            label="sample",
            keys=["sample0", "sample1", "sample2"],
        )
    nk = coll[coll.obs["cell_type"] == "NK"]
    assert {u.rsplit("/", 1)[-1] for u in _locations(nk.X)} == {"sample1.h5ad"}
    assert_same(nk, theirs[theirs.obs["cell_type"] == "NK"].copy())
    assert_same(coll, theirs)
